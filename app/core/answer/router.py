"""Decide who answers a question: the local model or the frontier model.

The decision follows a user-editable policy (`routing_policy.toml`, read by `policy`): each
topic has example questions, keywords and regular expressions, a minimum score and a route.
A question's score for a topic is the mean cosine similarity of its `top_k` closest
examples, plus a bonus when a keyword or pattern matches; the best topic that reaches its
`min_score` wins, else the default topic. Keywords alone miss "how much will 3 extra seats
cost me?" phrased without "price"; examples alone miss rare jargon; together they are cheap
and explainable.

The retrieval score of the question (best passage similarity) refines the decision: below
`min_relevance` the docs don't cover the question; below `local_confidence` a topic marked
`escalate_when_unsure` goes to the frontier model.

`decide_many` embeds a whole batch at once; pass `vectors` when the caller has already
embedded the questions (e.g. for retrieval) to skip the second embedding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from app.core.answer.policy import DEFAULT_POLICY_PATH, RoutingPolicy, load_policy

# Similarities are computed for this many questions at a time: bounds memory for big batches.
_CHUNK = 2048


@dataclass
class RouteDecision:
    route: str  # "local" | "frontier"
    topic: str  # "pricing" | "api" | "support" | "out_of_scope" (or a topic the user added)
    reason: str  # one readable line: the rule or topic that decided, with its score
    scores: dict[str, float] = field(default_factory=dict)  # topic -> combined score
    answerable: bool = True  # False when the retrieval score is below min_relevance
    rule: str = "topic"  # "topic" | "default" | "low_confidence": which rule set the route
    matched_example: str | None = None  # the closest example of the winning topic
    matched: list[str] = field(default_factory=list)  # the winning topic's keyword/pattern evidence: 'keyword "fee"', 'pattern "got a 401"'

    @property
    def escalated(self) -> bool:
        return self.route == "frontier"

    def to_json(self) -> dict:
        return {
            "route": self.route,
            "topic": self.topic,
            "answerable": self.answerable,
            "rule": self.rule,
            "reason": self.reason,
            "scores": {name: round(score, 4) for name, score in self.scores.items()},
            "matched_example": self.matched_example,
            "matched": list(self.matched),
        }


@dataclass
class TopicEvidence:
    """Per-question, per-topic evidence: what `choose_topics` combines. Arrays are [questions, topics]."""

    similarity: np.ndarray  # mean of the top_k example similarities
    nearest: np.ndarray  # index (into the topic's examples) of the closest example
    nearest_similarity: np.ndarray
    keyword_hits: list[list[list[str]]]  # [question][topic] -> Topic.matches()

    @property
    def has_keyword(self) -> np.ndarray:
        return np.array([[bool(hits) for hits in row] for row in self.keyword_hits], dtype=bool).reshape(self.similarity.shape)


def combined_scores(policy: RoutingPolicy, evidence: TopicEvidence) -> np.ndarray:
    return evidence.similarity + policy.keyword_bonus * evidence.has_keyword


def choose_topics(policy: RoutingPolicy, scores: np.ndarray) -> np.ndarray:
    """Index of the winning topic per question: the best topic reaching its min_score, else the default."""
    names = policy.topic_names
    minimum = np.array([policy.topics[name].min_score for name in names])
    eligible = np.where(scores >= minimum, scores, -np.inf)
    best = eligible.argmax(axis=1)
    default = names.index(policy.default_topic)
    return np.where(np.isfinite(eligible.max(axis=1)), best, default)


class Router:
    def __init__(self, policy: RoutingPolicy, embedder):
        self.policy = policy
        self.embedder = embedder
        self._examples: list[np.ndarray] | None = None

    @classmethod
    def from_settings(cls, settings, embedder) -> "Router":
        configured = settings.routing.policy
        return cls(load_policy(configured or DEFAULT_POLICY_PATH), embedder)

    def warm(self) -> "Router":
        """Embed the policy's examples now (e.g. in a background worker) instead of on the first question."""
        self._example_vectors()
        return self

    def _example_vectors(self) -> list[np.ndarray]:
        if self._examples is None:
            texts = [text for topic in self.policy.topics.values() for text in topic.examples]
            vectors = np.asarray(self.embedder.embed(texts), dtype=np.float32)
            blocks, start = [], 0
            for topic in self.policy.topics.values():
                blocks.append(vectors[start:start + len(topic.examples)])
                start += len(topic.examples)
            self._examples = blocks
        return self._examples

    def evidence(self, questions: Sequence[str], vectors: np.ndarray | None = None) -> TopicEvidence:
        """Example similarity and keyword matches of each question for each topic."""
        questions = list(questions)
        if vectors is None:
            # Logs repeat questions: embed each distinct text once.
            unique = list(dict.fromkeys(questions))
            unique_vectors = self.embedder.embed(unique) if unique else np.zeros((0, 384), dtype=np.float32)
            if len(unique) == len(questions):
                vectors = unique_vectors
            else:
                row = {text: i for i, text in enumerate(unique)}
                vectors = np.asarray(unique_vectors)[[row[text] for text in questions]]
        vectors = np.asarray(vectors, dtype=np.float32)
        if len(vectors) != len(questions):
            raise ValueError(f"{len(questions)} questions but {len(vectors)} vectors")
        blocks = self._example_vectors()
        n, t = len(questions), len(blocks)
        similarity = np.zeros((n, t), dtype=np.float32)
        nearest = np.zeros((n, t), dtype=np.int64)
        nearest_similarity = np.zeros((n, t), dtype=np.float32)
        for start in range(0, n, _CHUNK):
            chunk = vectors[start:start + _CHUNK]
            for j, block in enumerate(blocks):
                sims = chunk @ block.T
                k = min(self.policy.top_k, block.shape[0])
                top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:] if k < sims.shape[1] else sims
                similarity[start:start + len(chunk), j] = top.mean(axis=1)
                nearest[start:start + len(chunk), j] = sims.argmax(axis=1)
                nearest_similarity[start:start + len(chunk), j] = sims.max(axis=1)
        topics = list(self.policy.topics.values())
        hits = [[topic.matches(question) for topic in topics] for question in questions]
        return TopicEvidence(similarity, nearest, nearest_similarity, hits)

    def decide(self, question: str, top_score: float | None = None) -> RouteDecision:
        return self.decide_many([question], [top_score])[0]

    def decide_many(
        self,
        questions: Sequence[str],
        top_scores: Sequence[float | None] | None = None,
        vectors: np.ndarray | None = None,
    ) -> list[RouteDecision]:
        """Route a batch in one embedding pass. `vectors`: the questions' embeddings, if already computed."""
        questions = list(questions)
        if top_scores is None:
            top_scores = [None] * len(questions)
        elif len(top_scores) != len(questions):
            raise ValueError(f"{len(questions)} questions but {len(top_scores)} top_scores")
        if not questions:
            return []
        evidence = self.evidence(questions, vectors)
        scores = combined_scores(self.policy, evidence)
        winners = choose_topics(self.policy, scores)
        return [self._decision(i, evidence, scores, int(winners[i]), top_scores[i]) for i in range(len(questions))]

    def _decision(self, i: int, evidence: TopicEvidence, scores: np.ndarray, winner: int, top_score: float | None) -> RouteDecision:
        policy = self.policy
        names = policy.topic_names
        topic = policy.topics[names[winner]]
        row = {name: float(scores[i, j]) for j, name in enumerate(names)}
        example = topic.examples[int(evidence.nearest[i, winner])]
        matched = evidence.keyword_hits[i][winner]
        detail = f'similarity {evidence.nearest_similarity[i, winner]:.2f} to "{example}"'
        if matched:
            detail += "; " + ", ".join(matched[:3])
        meets = scores[i, winner] >= topic.min_score
        if meets:
            rule = "topic"
            reason = f"topic '{topic.name}' (score {scores[i, winner]:.2f}: {detail})"
        else:
            rule = "default"
            best = int(scores[i].argmax())
            best_topic = policy.topics[names[best]]
            reason = (
                f"default topic '{topic.name}': no topic reached its min_score "
                f"(best '{best_topic.name}' {scores[i, best]:.2f} < {best_topic.min_score:.2f})"
            )
        route = topic.route
        answerable = True
        if top_score is not None:
            top_score = float(top_score)
            if top_score < policy.min_relevance:
                answerable = False
                reason += f"; retrieval score {top_score:.2f} < min_relevance {policy.min_relevance:.2f}: the docs don't cover this question"
                if policy.escalate_unanswerable and route == "local" and topic.escalate_when_unsure:
                    route, rule = "frontier", "low_confidence"
                    reason += ", escalated anyway (escalate_unanswerable = true)"
            elif top_score < policy.local_confidence and route == "local" and topic.escalate_when_unsure:
                route, rule = "frontier", "low_confidence"
                reason += (
                    f"; retrieval score {top_score:.2f} < local_confidence {policy.local_confidence:.2f}: "
                    "escalated because the local model can't answer with confidence"
                )
        return RouteDecision(
            route=route,
            topic=topic.name,
            reason=reason,
            scores=row,
            answerable=answerable,
            rule=rule,
            matched_example=example,
            matched=list(matched),
        )

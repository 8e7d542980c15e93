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

The examples live in one `ExampleIndex`: a single matrix, rows grouped by topic, searched
exactly (a flat inner-product index). 30,000 MiniLM vectors are 46 MB and a question costs
one matrix-vector product, so an approximate index would only blur the top-k means the
thresholds were fitted on. A policy with an `examples_file` (what `router fit` writes) keeps
its examples' vectors beside that file (`*.vectors.npz`, keyed by embedder and text hash),
so an app start embeds only what changed, not 30,000 questions.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.answer.policy import DEFAULT_POLICY_PATH, RoutingPolicy, load_policy
from app.core.text import below

# Similarities are computed for at most this many questions at a time, and for fewer when
# the policy has many examples: a chunk's similarity matrix stays under _BUDGET floats (32 MB).
_CHUNK = 2048
_BUDGET = 2**23


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


@dataclass
class ExampleIndex:
    """Every example's vector in one matrix; topic j owns rows bounds[j]..bounds[j+1]."""

    vectors: np.ndarray  # [examples, dimension], L2-normalised
    bounds: list[int]

    def topic_rows(self, j: int) -> slice:
        return slice(self.bounds[j], self.bounds[j + 1])


def embedder_id(embedder) -> str | None:
    """Names what produced a vector: the model's weights and the token limit (longer texts are cut).

    None for an embedder that doesn't say (a test double): its vectors are never stored."""
    path, limit = getattr(embedder, "model_path", None), getattr(embedder, "max_seq_length", None)
    if path is None or limit is None:
        return None
    weights = sorted(Path(path).glob("*.safetensors")) + sorted(Path(path).glob("*.bin"))
    size = sum(w.stat().st_size for w in weights)  # a changed model file changes the id
    return f"{Path(path).name}:{size}:{limit}"


def text_keys(texts: Sequence[str]) -> np.ndarray:
    # Fixed-width bytes ("S16") drop trailing NULs when read back, the same way on both sides of a lookup.
    return np.array([hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts], dtype="S16")


def vectors_file(policy: RoutingPolicy) -> Path | None:
    """Where a policy's example vectors are kept: beside its examples file (the shipped policy has none)."""
    return policy.examples_file.with_suffix(".vectors.npz") if policy.examples_file else None


def load_vectors(path: Path, model: str) -> dict[bytes, np.ndarray]:
    """Stored vectors by text hash; empty when missing, unreadable or from another embedder (stale)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if str(stored["model"]) != model:
                return {}
            return dict(zip(stored["keys"].tolist(), stored["vectors"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return {}


def save_vectors(path: Path, model: str, keys: np.ndarray, vectors: np.ndarray) -> None:
    """Written to a temporary file and renamed: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, model=np.array(model), keys=keys, vectors=np.asarray(vectors, dtype=np.float32))
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class Router:
    def __init__(self, policy: RoutingPolicy, embedder):
        self.policy = policy
        self.embedder = embedder
        self._index: ExampleIndex | None = None

    @classmethod
    def from_settings(cls, settings, embedder) -> "Router":
        configured = settings.routing.policy
        return cls(load_policy(configured or DEFAULT_POLICY_PATH), embedder)

    def warm(self) -> "Router":
        """Embed the policy's examples now (e.g. in a background worker) instead of on the first question."""
        self._example_index()
        return self

    def _example_index(self) -> ExampleIndex:
        if self._index is None:
            topics = list(self.policy.topics.values())
            texts = [text for topic in topics for text in topic.examples]
            bounds = np.cumsum([0] + [len(topic.examples) for topic in topics]).tolist()
            self._index = ExampleIndex(self._embed_examples(texts), bounds)
        return self._index

    def _embed_examples(self, texts: list[str]) -> np.ndarray:
        """The examples' vectors: from the policy's vector file where it has them, embedding only the rest."""
        path, model = vectors_file(self.policy), embedder_id(self.embedder)
        if path is None or model is None:
            return np.asarray(self.embedder.embed(texts), dtype=np.float32)
        keys = text_keys(texts)
        stored = load_vectors(path, model)
        missing = [i for i, key in enumerate(keys.tolist()) if key not in stored]
        if missing:
            fresh = np.asarray(self.embedder.embed([texts[i] for i in missing]), dtype=np.float32)
            stored.update(zip(keys[missing].tolist(), fresh))
        vectors = np.stack([stored[key] for key in keys.tolist()]) if texts else np.zeros((0, 384), dtype=np.float32)
        if missing:
            try:  # keep only this policy's texts: vectors of deleted examples would pile up
                save_vectors(path, model, keys, vectors)
            except OSError:
                pass  # a read-only folder costs the next start an embedding pass, nothing more
        return np.asarray(vectors, dtype=np.float32)

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
        index = self._example_index()
        n, t = len(questions), len(self.policy.topics)
        similarity = np.zeros((n, t), dtype=np.float32)
        nearest = np.zeros((n, t), dtype=np.int64)
        nearest_similarity = np.zeros((n, t), dtype=np.float32)
        step = max(1, min(_CHUNK, _BUDGET // max(1, len(index.vectors))))
        for start in range(0, n, step):
            rows = slice(start, start + step)
            sims = vectors[rows] @ index.vectors.T  # one product for every topic
            for j in range(t):
                block = sims[:, index.topic_rows(j)]
                k = min(self.policy.top_k, block.shape[1])
                # np.partition, not argpartition: its copy is floats, not 8-byte indices.
                top = np.partition(block, block.shape[1] - k, axis=1)[:, -k:] if k < block.shape[1] else block
                similarity[rows, j] = top.mean(axis=1)
                nearest[rows, j] = block.argmax(axis=1)
                nearest_similarity[rows, j] = top.max(axis=1)
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
                f"(best '{best_topic.name}' {below(float(scores[i, best]), best_topic.min_score)})"
            )
        route = topic.route
        answerable = True
        if top_score is not None:
            top_score = float(top_score)
            if top_score < policy.min_relevance:
                answerable = False
                reason += f"; retrieval score {below(top_score, policy.min_relevance, 'min_relevance')}: the docs don't cover this question"
                if policy.escalate_unanswerable and route == "local" and topic.escalate_when_unsure:
                    route, rule = "frontier", "low_confidence"
                    reason += ", escalated anyway (escalate_unanswerable = true)"
            elif top_score < policy.local_confidence and route == "local" and topic.escalate_when_unsure:
                route, rule = "frontier", "low_confidence"
                reason += (
                    f"; retrieval score {below(top_score, policy.local_confidence, 'local_confidence')}: "
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

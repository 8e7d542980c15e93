"""Decide who answers a question: the local model or the frontier model.

The decision follows a user-editable policy (`routing_policy.toml`): each topic has example
questions, keywords and regular expressions, a minimum score and a route. A question's
score for a topic is the mean cosine similarity of its `top_k` closest examples, plus a
bonus when a keyword or pattern matches; the best topic that reaches its `min_score` wins,
else the default topic. Keywords alone miss "how much will 3 extra seats cost me?" phrased
without "price"; examples alone miss rare jargon; together they are cheap and explainable.

The retrieval score of the question (best passage similarity) refines the decision: below
`min_relevance` the docs don't cover the question; below `local_confidence` a topic marked
`escalate_when_unsure` goes to the frontier model.

`decide_many` embeds a whole batch at once; pass `vectors` when the caller has already
embedded the questions (e.g. for retrieval) to skip the second embedding.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from app.core.errors import ConfigError

DEFAULT_POLICY_PATH = Path(__file__).with_name("routing_policy.toml")
ROUTES = ("local", "frontier")
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
class Topic:
    name: str
    route: str
    examples: list[str]
    keywords: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    min_score: float = 0.0
    escalate_when_unsure: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        self._keyword_regexes = [(keyword, _keyword_regex(keyword)) for keyword in self.keywords]
        self._pattern_regexes = [re.compile(pattern, re.IGNORECASE) for pattern in self.patterns]

    def matches(self, question: str) -> list[str]:
        """Evidence from keywords and patterns: 'keyword "invoice"', 'pattern "getting a 401"' (the matched text)."""
        found = [f'keyword "{keyword}"' for keyword, regex in self._keyword_regexes if regex.search(question)]
        for regex in self._pattern_regexes:
            match = regex.search(question)
            if match:
                label = f'pattern "{match.group(0).strip()}"'
                if label not in found:
                    found.append(label)
        return found


@dataclass
class RoutingPolicy:
    topics: dict[str, Topic]
    default_topic: str = "support"
    min_relevance: float = 0.30
    local_confidence: float = 0.45
    escalate_unanswerable: bool = False
    top_k: int = 3
    keyword_bonus: float = 0.10
    path: Path | None = None

    @property
    def topic_names(self) -> list[str]:
        return list(self.topics)


def _keyword_regex(keyword: str) -> re.Pattern:
    # Whole words, case-insensitive, optional plural; inner spaces match any whitespace.
    body = r"\s+".join(re.escape(part) for part in keyword.split())
    start = r"\b" if keyword[:1].isalnum() else ""
    end = r"(?:s|es)?\b" if keyword[-1:].isalnum() else ""
    return re.compile(start + body + end, re.IGNORECASE)


# ---------------------------------------------------------------------------- loading


_TOP_KEYS = {"version", "default_topic", "thresholds", "scoring", "topics"}
_THRESHOLD_KEYS = {"min_relevance", "local_confidence", "escalate_unanswerable"}
_SCORING_KEYS = {"top_k", "keyword_bonus"}
_TOPIC_KEYS = {"description", "route", "min_score", "escalate_when_unsure", "keywords", "patterns", "examples"}


class _Locator:
    """Finds the line a policy value is on, so an error can point at it (tomllib gives no positions)."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.lines = text.splitlines()

    def _header(self, table: str) -> int | None:
        pattern = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(re.escape(p) for p in table.split(".")) + r"\s*\]")
        for number, line in enumerate(self.lines, 1):
            if pattern.match(line):
                return number
        return None

    def line(self, table: str | None, key: str | None = None, needle: str | None = None) -> int | None:
        start = (self._header(table) or 1) if table else 1
        end = len(self.lines)
        for number in range(start + 1, len(self.lines) + 1):
            if self.lines[number - 1].lstrip().startswith("["):
                end = number - 1
                break
        if needle is not None:
            for number in range(start, end + 1):
                if needle in self.lines[number - 1]:
                    return number
        if key is not None:
            key_pattern = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
            for number in range(1 if table is None else start, end + 1):
                if key_pattern.match(self.lines[number - 1]):
                    return number
            if table is None:
                return None
        return start if table else None

    def error(self, message: str, line: int | None, fix: str) -> ConfigError:
        where = f"{self.path}, line {line}" if line else str(self.path)
        return ConfigError(f"Routing policy {where}: {message}", fix)


_FIX = "Fix the value it names (the shipped app/core/answer/routing_policy.toml documents every field), or unset `routing.policy`."


def load_policy(path: str | Path) -> RoutingPolicy:
    """Read and validate a routing policy TOML file; ConfigError names the file and line."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"Routing policy not found: {path}",
            "Fix the `routing.policy` setting, or unset it to use the shipped policy.",
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Cannot read routing policy {path}: {error}", "Check the file's permissions and encoding.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's message ends with "(at line N, column M)".
        raise ConfigError(
            f"Routing policy {path} is not valid TOML: {error}",
            "Fix the line it names (check quotes, commas and brackets), or unset `routing.policy`.",
        ) from None
    return _parse_policy(data, _Locator(path, text), path)


def _parse_policy(data: dict[str, Any], loc: _Locator, path: Path) -> RoutingPolicy:
    for key in data:
        if key not in _TOP_KEYS:
            raise loc.error(f"unknown key '{key}'", loc.line(None, key=key) or loc.line(key), f"Known keys: {', '.join(sorted(_TOP_KEYS))}.")

    def table(name: str, allowed: set[str]) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise loc.error(f"'{name}' must be a table ([{name}])", loc.line(None, key=name), _FIX)
        for key in value:
            if key not in allowed:
                raise loc.error(f"unknown key '{key}' in [{name}]", loc.line(name, key=key), f"Known keys: {', '.join(sorted(allowed))}.")
        return value

    def number(tbl: str, values: dict, key: str, default: float, low: float, high: float) -> float:
        raw = values.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise loc.error(f"'{key}' must be a number, got {raw!r}", loc.line(tbl, key=key), _FIX)
        if not low <= raw <= high:
            raise loc.error(f"'{key}' must be between {low} and {high}, got {raw}", loc.line(tbl, key=key), _FIX)
        return float(raw)

    def boolean(tbl: str, values: dict, key: str, default: bool) -> bool:
        raw = values.get(key, default)
        if not isinstance(raw, bool):
            raise loc.error(f"'{key}' must be true or false, got {raw!r}", loc.line(tbl, key=key), _FIX)
        return raw

    thresholds = table("thresholds", _THRESHOLD_KEYS)
    scoring = table("scoring", _SCORING_KEYS)
    top_k = scoring.get("top_k", 3)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise loc.error(f"'top_k' must be a whole number of at least 1, got {top_k!r}", loc.line("scoring", key="top_k"), _FIX)

    raw_topics = data.get("topics")
    if not isinstance(raw_topics, dict) or not raw_topics:
        raise loc.error("no topics defined", loc.line(None, key="topics"), "Add at least one [topics.NAME] table with a route and examples.")
    topics: dict[str, Topic] = {}
    for name, spec in raw_topics.items():
        table_name = f"topics.{name}"
        if not isinstance(spec, dict):
            raise loc.error(f"topic '{name}' must be a table ([{table_name}])", loc.line("topics", key=name), _FIX)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
            raise loc.error(f"topic name '{name}' must be letters, digits, '_' or '-'", loc.line(table_name), _FIX)
        for key in spec:
            if key not in _TOPIC_KEYS:
                raise loc.error(
                    f"unknown key '{key}' in topic '{name}'", loc.line(table_name, key=key), f"Known keys: {', '.join(sorted(_TOPIC_KEYS))}."
                )
        route = spec.get("route")
        if route not in ROUTES:
            raise loc.error(
                f"topic '{name}': route must be \"local\" or \"frontier\", got {route!r}", loc.line(table_name, key="route"), _FIX
            )
        lists: dict[str, list[str]] = {}
        for key in ("examples", "keywords", "patterns"):
            raw = spec.get(key, [])
            if not isinstance(raw, list) or not all(isinstance(item, str) and item.strip() for item in raw):
                raise loc.error(
                    f"topic '{name}': '{key}' must be a list of non-empty strings", loc.line(table_name, key=key), _FIX
                )
            lists[key] = [item.strip() for item in raw]
        if not lists["examples"]:
            raise loc.error(
                f"topic '{name}' has no examples", loc.line(table_name, key="examples"),
                "Add a few example questions (examples = [\"...\", ...]): the router compares questions with them.",
            )
        for pattern in lists["patterns"]:
            try:
                re.compile(pattern)
            except re.error as error:
                raise loc.error(
                    f"topic '{name}': pattern '{pattern}' is not a valid regular expression ({error})",
                    loc.line(table_name, needle=pattern) or loc.line(table_name, key="patterns"),
                    "Fix the pattern (Python regex syntax; write it in 'single quotes' so backslashes stay literal).",
                ) from None
        description = spec.get("description", "")
        if not isinstance(description, str):
            raise loc.error(f"topic '{name}': 'description' must be a string", loc.line(table_name, key="description"), _FIX)
        topics[name] = Topic(
            name=name,
            route=route,
            examples=lists["examples"],
            keywords=lists["keywords"],
            patterns=lists["patterns"],
            min_score=number(table_name, spec, "min_score", 0.0, -1.0, 2.0),
            escalate_when_unsure=boolean(table_name, spec, "escalate_when_unsure", False),
            description=description,
        )

    default_topic = data.get("default_topic", "support")
    if default_topic not in topics:
        raise loc.error(
            f"default_topic {default_topic!r} is not one of the topics ({', '.join(topics)})",
            loc.line(None, key="default_topic"), _FIX,
        )
    return RoutingPolicy(
        topics=topics,
        default_topic=default_topic,
        min_relevance=number("thresholds", thresholds, "min_relevance", 0.30, 0.0, 1.0),
        local_confidence=number("thresholds", thresholds, "local_confidence", 0.45, 0.0, 1.0),
        escalate_unanswerable=boolean("thresholds", thresholds, "escalate_unanswerable", False),
        top_k=top_k,
        keyword_bonus=number("scoring", scoring, "keyword_bonus", 0.10, 0.0, 1.0),
        path=path,
    )


# ---------------------------------------------------------------------------- routing


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
        configured = settings["routing.policy"]
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

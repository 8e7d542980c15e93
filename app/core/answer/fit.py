"""Fitting the routing policy to labelled questions: `frontdesk router fit` (`router_fit.py`) and bench/routing_eval.py.

How a policy is fitted (`fit_policy`):

1. Every labelled question becomes an example of its topic. A row labelled only with a route
   (`local` or `frontier`) becomes an example of the topic with that route that the starting
   policy scores highest for it: the label says where such questions must go, the policy's
   own examples and keywords say which of its topics the question is like. Rows without a
   label (`ambiguous`) are never examples; they count towards the frontier share only.
2. The escalation topics' `min_score` and `keyword_bonus` are chosen on a grid, on an inner
   split: a quarter of the rows is scored against the other three quarters as examples, so
   the thresholds are chosen on questions that are not their own examples, as a customer's
   next question isn't. Of the settings that meet the target (escalation recall at least R,
   frontier share at most S), the one with the best escalation F1 wins (among equals, the one
   that moves the starting values least); when none meets it, the closest one, and the caller
   says so.
3. The fitted policy is the starting one with those thresholds and every row as an example.

`router_fit.fit_router` wraps that for the command.
"""
from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.answer.policy import ROUTES, RoutingPolicy
from app.core.answer.router import Router, choose_topics
from app.core.errors import FrontdeskError
from app.core.labelled import LabelledQuestion

BONUS_GRID = (0.0, 0.05, 0.10, 0.15, 0.20)
MIN_SCORE_GRID = tuple(round(x, 3) for x in np.arange(0.10, 0.751, 0.025))
HELD_OUT_FOLDS = 5  # one fifth of the file is held out for the before/after figures
INNER_FOLDS = 4  # one quarter of the rest tunes the thresholds against the other three as examples
MIN_PER_ROUTE = 10  # per route, so that every part of the splits has some of each
NO_LABEL = "no label"


class FitError(FrontdeskError):
    pass


@dataclass(frozen=True)
class Row:
    text: str
    route: str | None  # "local" | "frontier": where it should go; None: unlabelled
    topic: str | None  # the topic it is an example of; None: not an example (yet)
    label: str  # as the file said, for the per-label figures: a topic, "local", "frontier" or "no label"
    source: str | None = None


@dataclass(frozen=True)
class FitTarget:
    min_recall: float | None = None
    max_frontier_share: float | None = None

    def shortfall(self, recall: float, share: float) -> float:
        """How far a result is from the target (0 = met)."""
        missing = max(0.0, self.min_recall - recall) if self.min_recall is not None else 0.0
        return missing + (max(0.0, share - self.max_frontier_share) if self.max_frontier_share is not None else 0.0)

    def describe(self) -> str:
        parts: list[str] = []
        if self.min_recall is not None:
            parts.append(f"escalation recall ≥ {self.min_recall:g}")
        if self.max_frontier_share is not None:
            parts.append(f"frontier share ≤ {self.max_frontier_share:.1%}")
        return " and ".join(parts) + ", then the best F1" if parts else "the best escalation F1"


@dataclass(frozen=True)
class LabelStats:
    n: int
    escalated: float  # share of these rows sent to the frontier
    precision: float | None = None  # topic labels only: of the rows decided as the topic, the share labelled with it
    recall: float | None = None  # ... of the rows labelled with it, the share decided as it


@dataclass(frozen=True)
class Metrics:
    """Escalation (frontier = positive) over labelled rows; the frontier share over all rows."""

    n: int
    labelled: int
    precision: float
    recall: float
    f1: float
    frontier_share: float
    by_label: dict[str, LabelStats] = field(default_factory=dict)

    def meets(self, target: FitTarget) -> bool:
        return target.shortfall(self.recall, self.frontier_share) == 0


@dataclass(frozen=True)
class Tuning:
    keyword_bonus: float
    min_scores: dict[str, float]  # escalation topic -> min_score
    metrics: Metrics  # on the tuning rows
    met: bool

    def apply(self, policy: RoutingPolicy) -> RoutingPolicy:
        return _with(policy, self.keyword_bonus, self.min_scores)


@dataclass(frozen=True)
class Fitted:
    policy: RoutingPolicy  # thresholds tuned, every row with a topic an example
    tuning: Tuning


# ---------------------------------------------------------------------------- building blocks


class CachedEmbedder:
    """Serves vectors already computed for the labelled rows; embeds only what it hasn't seen (the policy's own examples)."""

    def __init__(self, embedder, texts: Sequence[str], vectors: np.ndarray):
        self.embedder = embedder
        self.index = {text: vectors[i] for i, text in enumerate(texts)}

    def __getattr__(self, name: str):  # model_path, max_seq_length: the router keys stored vectors by them
        return getattr(self.embedder, name)

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.index]
        if missing:
            self.index.update(zip(missing, self.embedder.embed(missing)))
        return np.stack([self.index[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


def split_folds(rows: Sequence[Row], k: int, seed: int) -> np.ndarray:
    """A fold per row, stratified by label; identical texts share a fold, so no question is scored against itself."""
    rng = random.Random(seed)
    fold_of_text: dict[str, int] = {}
    counters: Counter = Counter()
    order = list(range(len(rows)))
    rng.shuffle(order)
    folds = np.zeros(len(rows), dtype=np.int64)
    for i in order:
        text = rows[i].text.strip().lower()
        if text not in fold_of_text:
            fold_of_text[text] = counters[rows[i].label] % k
            counters[rows[i].label] += 1
        folds[i] = fold_of_text[text]
    return folds


def decide(policy: RoutingPolicy, similarity: np.ndarray, has_keyword: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(winning topic index, sent to the frontier) per question, as `Router.decide_many` decides without a retrieval score."""
    winners = choose_topics(policy, similarity + policy.keyword_bonus * has_keyword)
    frontier = np.array([policy.topics[name].route == "frontier" for name in policy.topic_names])[winners]
    return winners, frontier


def metrics(policy: RoutingPolicy, rows: Sequence[Row], winners: np.ndarray, frontier: np.ndarray) -> Metrics:
    route = np.array([row.route or "" for row in rows])
    labels = np.array([row.label for row in rows])
    labelled = route != ""
    positive = route == "frontier"
    tp = int((frontier & positive).sum())
    fp = int((frontier & labelled & ~positive).sum())
    fn = int((~frontier & positive).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    decided = np.array(policy.topic_names, dtype=object)[winners] if len(rows) else np.array([], dtype=object)
    by_label: dict[str, LabelStats] = {}
    for label in dict.fromkeys(labels.tolist()):
        mine = labels == label
        stats = LabelStats(int(mine.sum()), float(frontier[mine].mean()))
        if label in policy.topics:
            as_topic = (decided == label) & labelled
            hits = int((as_topic & mine).sum())
            stats = replace(stats, precision=float(hits / as_topic.sum()) if as_topic.any() else 0.0, recall=float(hits / mine.sum()))
        by_label[label] = stats
    return Metrics(
        n=len(rows), labelled=int(labelled.sum()), precision=precision, recall=recall,
        f1=2 * tp / (2 * tp + fp + fn) if tp else 0.0,
        frontier_share=float(frontier.mean()) if len(rows) else 0.0, by_label=by_label,
    )


def decisions(policy: RoutingPolicy, embedder, rows: Sequence[Row], vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    evidence = Router(policy, embedder).evidence([row.text for row in rows], vectors)
    return decide(policy, evidence.similarity, evidence.has_keyword)


def evaluate(policy: RoutingPolicy, embedder, rows: Sequence[Row], vectors: np.ndarray) -> Metrics:
    return metrics(policy, rows, *decisions(policy, embedder, rows, vectors))


def tune(policy: RoutingPolicy, rows: Sequence[Row], similarity: np.ndarray, has_keyword: np.ndarray,
         target: FitTarget = FitTarget()) -> Tuning:
    """Grid-search keyword_bonus and the escalation topics' min_score: best F1 among the settings that meet the target."""
    escalation = [name for name, topic in policy.topics.items() if topic.route == "frontier"]
    best: tuple[tuple[float, float, float], RoutingPolicy, Metrics] | None = None

    def moved(candidate: RoutingPolicy) -> float:
        return abs(candidate.keyword_bonus - policy.keyword_bonus) + sum(
            abs(candidate.topics[name].min_score - policy.topics[name].min_score) for name in escalation)

    def consider(candidate: RoutingPolicy) -> None:
        nonlocal best
        result = metrics(candidate, rows, *decide(candidate, similarity, has_keyword))
        # Many settings tie on a few hundred rows: then the one that moves the starting values least,
        # since the rows give no reason to move them further.
        key = (-round(target.shortfall(result.recall, result.frontier_share), 9), round(result.f1, 9), -moved(candidate))
        if best is None or key > best[0]:
            best = (key, candidate, result)

    for bonus in BONUS_GRID:
        for floor in MIN_SCORE_GRID:  # one floor for every escalation topic first, then each topic around it
            consider(_with(policy, bonus, {name: floor for name in escalation}))
    for name in escalation:
        for floor in MIN_SCORE_GRID:
            consider(_with(best[1], best[1].keyword_bonus, {name: floor}))
    _, chosen, result = best
    return Tuning(chosen.keyword_bonus, {name: chosen.topics[name].min_score for name in escalation}, result, result.meets(target))


def _with(policy: RoutingPolicy, bonus: float, floors: dict[str, float]) -> RoutingPolicy:
    topics = {name: (replace(topic, min_score=floors[name]) if name in floors else topic) for name, topic in policy.topics.items()}
    return replace(policy, topics=topics, keyword_bonus=bonus)


def with_examples(policy: RoutingPolicy, rows: Sequence[Row]) -> RoutingPolicy:
    """The policy with the rows that have a topic added to that topic's examples."""
    extra: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.topic is not None:
            extra[row.topic].append(row.text)
    topics = {name: replace(topic, examples=list(dict.fromkeys(topic.examples + extra.get(name, []))))
              for name, topic in policy.topics.items()}
    return replace(policy, topics=topics)


def assign_topics(policy: RoutingPolicy, embedder, rows: list[Row], vectors: np.ndarray) -> list[Row]:
    """Route-only rows get the topic of their route that the policy scores highest (see the module's note)."""
    todo = [i for i, row in enumerate(rows) if row.topic is None and row.route is not None]
    if not todo:
        return rows
    evidence = Router(policy, embedder).evidence([rows[i].text for i in todo], vectors[todo])
    scores = evidence.similarity + policy.keyword_bonus * evidence.has_keyword
    routes = np.array([topic.route for topic in policy.topics.values()])
    rows = list(rows)
    for j, i in enumerate(todo):
        same_route = np.where(routes == rows[i].route, scores[j], -np.inf)
        if np.isfinite(same_route.max()):  # a policy may have no topic with that route: then it only counts in the figures
            rows[i] = replace(rows[i], topic=policy.topic_names[int(same_route.argmax())])
    return rows


def fit_policy(base: RoutingPolicy, rows: list[Row], vectors: np.ndarray, embedder, target: FitTarget = FitTarget(),
               seed: int = 13) -> Fitted:
    """Tune on an inner split of `rows`, then add every row as an example (the module's steps 2 and 3)."""
    cached = CachedEmbedder(embedder, [row.text for row in rows], vectors)
    inner = split_folds(rows, INNER_FOLDS, seed) == 0
    tune_idx, example_idx = np.flatnonzero(inner), np.flatnonzero(~inner)
    inner_policy = with_examples(base, [rows[i] for i in example_idx])
    tune_rows = [rows[i] for i in tune_idx]
    evidence = Router(inner_policy, cached).evidence([row.text for row in tune_rows], vectors[tune_idx])
    tuning = tune(inner_policy, tune_rows, evidence.similarity, evidence.has_keyword, target)
    return Fitted(with_examples(tuning.apply(base), rows), tuning)


@dataclass(frozen=True)
class SourceCheck:
    """A fit on every other source's rows, tested on this source's rows."""

    source: str
    rows: np.ndarray  # indices of this source's rows
    tuning: Tuning
    before: Metrics  # the policy in use on these rows
    after: Metrics
    decided: tuple[np.ndarray, np.ndarray]  # the fit's (winners, frontier) on these rows, for pooling


def by_source(base: RoutingPolicy, current: RoutingPolicy, rows: list[Row], vectors: np.ndarray, embedder,
              target: FitTarget = FitTarget(), seed: int = 13) -> list[SourceCheck]:
    """Does a fit help on data it was not fitted on? Fit on all sources but one, test on that one, for each."""
    sources = sorted({row.source for row in rows if row.source})
    checks: list[SourceCheck] = []
    for source in sources if len(sources) > 1 else []:
        test = np.flatnonzero([row.source == source for row in rows])
        train = np.flatnonzero([row.source != source for row in rows])
        train_rows, test_rows = [rows[i] for i in train], [rows[i] for i in test]
        counts = Counter(row.route for row in train_rows)
        if any(counts[route] < MIN_PER_ROUTE for route in ROUTES):
            continue  # the other sources alone are too few to fit on
        fitted = fit_policy(base, train_rows, vectors[train], embedder, target, seed)
        decided = decisions(fitted.policy, embedder, test_rows, vectors[test])
        before = evaluate(current, embedder, test_rows, vectors[test])
        checks.append(SourceCheck(source, test, fitted.tuning, before, metrics(fitted.policy, test_rows, *decided), decided))
    return checks


def rows_from_questions(questions: Sequence[LabelledQuestion], policy: RoutingPolicy, path: Path) -> list[Row]:
    """Rows with their route and topic, checked against the policy; FitError for unknown topics or too few labels."""
    unknown: dict[str, list[int]] = defaultdict(list)
    rows = []
    for q in questions:
        topic = q.topic
        if topic is not None and topic not in policy.topics:
            unknown[topic].append(q.line)
            continue
        route = q.route or (policy.topics[topic].route if topic else None)
        if topic is not None and policy.topics[topic].route != route:
            topic = None  # "topic: pricing, route: local": the explicit route wins, the row is handled as route-only
        rows.append(Row(q.question, route, topic, topic or route or NO_LABEL, q.source))
    if unknown:
        listed = "; ".join(f"'{name}' (line {', '.join(map(str, lines[:3]))}{', …' if len(lines) > 3 else ''})"
                           for name, lines in unknown.items())
        raise FitError(
            f"{path}: labels the routing policy has no topic for: {listed}",
            f"Relabel those rows with a topic of {policy.path or 'the policy'} ({', '.join(policy.topics)}) or with "
            "local/frontier, or add the topics to a copy of the policy and point routing.policy at it first.",
        )
    counts = Counter(row.route for row in rows if row.route)
    if any(counts[route] < MIN_PER_ROUTE for route in ROUTES):
        raise FitError(
            f"{path}: too few labelled questions to fit on: {counts['frontier']} for the frontier and {counts['local']} "
            f"local ({len(rows) - sum(counts.values())} without a label)",
            f"Label at least {MIN_PER_ROUTE} of each (route: a topic such as pricing or support, or local/frontier); "
            "a fifth is held out to check the fit and a quarter of the rest tunes the thresholds.",
        )
    return rows

"""Evaluate the router on labelled customer questions (../shared/datasets/routing/train.jsonl).

    .venv/bin/python bench/routing_eval.py            # full run (~31k questions)
    .venv/bin/python bench/routing_eval.py --limit 3000  # quick run on a stratified sample

Labels: `route` is pricing | api | simple | out_of_scope | ambiguous. Escalation is the
positive class: pricing and api should go to the frontier model, simple and out_of_scope
should stay local; ambiguous questions are reported apart (share escalated).

Three rows, all through `Router.decide_many`:
  1. shipped policy: app/core/answer/routing_policy.toml as is. Nothing fitted to this data by the
     script (its examples and thresholds were written by hand, with this data set in view).
  2. shipped examples, thresholds tuned: min_score of the escalation topics and the keyword
     bonus chosen on 4 folds (max escalation F1), evaluated on the held-out fifth; 5-fold CV.
  3. + labelled examples: the training folds' questions added to the topics' examples
     (pricing/api/simple->support/out_of_scope), thresholds tuned on an inner split of the
     training folds, evaluated on the held-out fold; 5-fold CV. This is what a user gets by
     pasting their own labelled history into the policy.

Prints Markdown tables ready for the README. Embeddings can be cached with --cache-dir.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from app.core.answer.policy import DEFAULT_POLICY_PATH, RoutingPolicy, Topic, load_policy  # noqa: E402
from app.core.answer.router import Router, choose_topics  # noqa: E402
from app.core.docs.embeddings import Embedder  # noqa: E402

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "datasets" / "routing" / "train.jsonl"
LABELS = ("pricing", "api", "simple", "out_of_scope", "ambiguous")
ESCALATE = {"pricing", "api"}
LABEL_TO_TOPIC = {"pricing": "pricing", "api": "api", "simple": "support", "out_of_scope": "out_of_scope"}
BONUS_GRID = (0.0, 0.05, 0.10, 0.15, 0.20)
MIN_SCORE_GRID = tuple(round(x, 3) for x in np.arange(0.10, 0.751, 0.025))


# ---------------------------------------------------------------------------- data


def load_rows(path: Path, limit: int | None, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
    if limit and limit < len(rows):
        # Stratified by label so a quick run still sees every label.
        rng = random.Random(seed)
        by_label: dict[str, list[dict]] = defaultdict(list)
        for row in rows:
            by_label[row["route"]].append(row)
        sample: list[dict] = []
        for label, group in sorted(by_label.items()):
            take = max(1, round(limit * len(group) / len(rows)))
            sample += rng.sample(group, min(take, len(group)))
        rows = sample
    return rows


def folds_for(rows: list[dict], k: int, seed: int) -> np.ndarray:
    """Stratified fold index per row; identical texts share a fold so no question is scored against itself."""
    rng = random.Random(seed)
    fold_of_text: dict[str, int] = {}
    counters: Counter = Counter()
    order = list(range(len(rows)))
    rng.shuffle(order)
    folds = np.zeros(len(rows), dtype=np.int64)
    for i in order:
        text = rows[i]["text"].strip().lower()
        if text not in fold_of_text:
            label = rows[i]["route"]
            fold_of_text[text] = counters[label] % k
            counters[label] += 1
        folds[i] = fold_of_text[text]
    return folds


class CachedEmbedder:
    """Serves precomputed vectors by text, embedding only what it hasn't seen (the policy's examples)."""

    def __init__(self, embedder: Embedder, texts: list[str], vectors: np.ndarray):
        self.embedder = embedder
        self.index = {text: vectors[i] for i, text in enumerate(texts)}

    def embed(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.index]
        if missing:
            for text, vector in zip(missing, self.embedder.embed(missing)):
                self.index[text] = vector
        return np.stack([self.index[t] for t in texts]) if texts else np.zeros((0, 384), dtype=np.float32)


def embed_all(embedder: Embedder, texts: list[str], cache_dir: Path | None) -> tuple[np.ndarray, float]:
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    cached = cache_dir / f"routing-eval-{key}.npy" if cache_dir else None
    if cached and cached.is_file():
        return np.load(cached), float("nan")
    start = time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - start
    if cached:
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(cached, vectors)
    return vectors, seconds


# ---------------------------------------------------------------------------- metrics


def metrics(labels: list[str], topics: list[str], escalated: list[bool]) -> dict:
    tp = sum(1 for lab, esc in zip(labels, escalated) if lab in ESCALATE and esc)
    fp = sum(1 for lab, esc in zip(labels, escalated) if lab in ("simple", "out_of_scope") and esc)
    fn = sum(1 for lab, esc in zip(labels, escalated) if lab in ESCALATE and not esc)
    oos_tp = sum(1 for lab, top in zip(labels, topics) if lab == "out_of_scope" and top == "out_of_scope")
    oos_pred = sum(1 for lab, top in zip(labels, topics) if top == "out_of_scope" and lab != "ambiguous")
    oos_true = sum(1 for lab in labels if lab == "out_of_scope")
    ambiguous = [esc for lab, esc in zip(labels, escalated) if lab == "ambiguous"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "oos_precision": oos_tp / oos_pred if oos_pred else 0.0,
        "oos_recall": oos_tp / oos_true if oos_true else 0.0,
        "ambiguous_escalated": sum(ambiguous) / len(ambiguous) if ambiguous else float("nan"),
        "escalated_share": sum(escalated) / len(escalated) if escalated else 0.0,
    }


def escalation_f1(policy: RoutingPolicy, similarity: np.ndarray, has_keyword: np.ndarray, positive: np.ndarray) -> float:
    names = policy.topic_names
    scores = similarity + policy.keyword_bonus * has_keyword
    winners = choose_topics(policy, scores)
    frontier = np.array([policy.topics[n].route == "frontier" for n in names])[winners]
    tp = int((frontier & positive).sum())
    fp = int((frontier & ~positive).sum())
    fn = int((~frontier & positive).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def tune(policy: RoutingPolicy, router: Router, texts: list[str], vectors: np.ndarray, labels: list[str]) -> RoutingPolicy:
    """Grid-search keyword_bonus and the escalation topics' min_score for escalation F1 (ambiguous rows excluded)."""
    keep = [i for i, lab in enumerate(labels) if lab != "ambiguous"]
    evidence = router.evidence([texts[i] for i in keep], vectors[keep])
    positive = np.array([labels[i] in ESCALATE for i in keep])
    similarity, has_keyword = evidence.similarity, evidence.has_keyword
    escalation = [n for n, t in policy.topics.items() if t.route == "frontier"]
    best = (-1.0, policy)
    for bonus in BONUS_GRID:
        for floor in MIN_SCORE_GRID:
            # One floor for every escalation topic first, then each topic around it.
            candidate = _with(policy, bonus, {n: floor for n in escalation})
            score = escalation_f1(candidate, similarity, has_keyword, positive)
            if score > best[0]:
                best = (score, candidate)
    for name in escalation:
        for floor in MIN_SCORE_GRID:
            candidate = _with(best[1], best[1].keyword_bonus, {name: floor})
            score = escalation_f1(candidate, similarity, has_keyword, positive)
            if score > best[0]:
                best = (score, candidate)
    return best[1]


def _with(policy: RoutingPolicy, bonus: float, floors: dict[str, float]) -> RoutingPolicy:
    topics = {n: (replace(t, min_score=floors[n]) if n in floors else t) for n, t in policy.topics.items()}
    return replace(policy, topics=topics, keyword_bonus=bonus)


def with_examples(policy: RoutingPolicy, texts: list[str], labels: list[str]) -> RoutingPolicy:
    extra: dict[str, list[str]] = defaultdict(list)
    for text, label in zip(texts, labels):
        if label in LABEL_TO_TOPIC:
            extra[LABEL_TO_TOPIC[label]].append(text)
    topics: dict[str, Topic] = {}
    for name, topic in policy.topics.items():
        merged = list(dict.fromkeys(topic.examples + extra.get(name, [])))
        topics[name] = replace(topic, examples=merged)
    return replace(policy, topics=topics)


def decide(router: Router, texts: list[str], vectors: np.ndarray) -> tuple[list[str], list[bool]]:
    decisions = router.decide_many(texts, vectors=vectors)
    return [d.topic for d in decisions], [d.route == "frontier" for d in decisions]


# ---------------------------------------------------------------------------- report


def fmt(x: float) -> str:
    return "n/a" if x != x else f"{x:.3f}"


def confusion_table(labels: list[str], topics: list[str], escalated: list[bool], topic_names: list[str]) -> str:
    lines = ["| label | n | " + " | ".join(topic_names) + " | escalated |", "|---|---:|" + "---:|" * (len(topic_names) + 1)]
    for label in LABELS:
        idx = [i for i, lab in enumerate(labels) if lab == label]
        if not idx:
            continue
        counts = Counter(topics[i] for i in idx)
        share = sum(escalated[i] for i in idx) / len(idx)
        cells = " | ".join(str(counts.get(name, 0)) for name in topic_names)
        lines.append(f"| {label} | {len(idx)} | {cells} | {share:.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled JSONL (text, route)")
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY_PATH, help="routing policy TOML")
    parser.add_argument("--limit", type=int, default=None, help="evaluate a stratified sample of N questions")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--no-cv", action="store_true", help="only the shipped policy (no tuning rows)")
    parser.add_argument("--throughput-sample", type=int, default=2000, help="questions timed end to end through decide_many")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache question embeddings here (outside the project)")
    args = parser.parse_args(argv)

    rows = load_rows(args.data, args.limit, args.seed)
    texts = [r["text"] for r in rows]
    labels = [r["route"] for r in rows]
    policy = load_policy(args.policy)
    embedder = Embedder()
    start = time.perf_counter()
    embedder.load()
    load_seconds = time.perf_counter() - start
    print(f"{len(rows)} questions from {args.data.name}: {dict(sorted(Counter(labels).items()))}", file=sys.stderr)

    # Throughput, end to end: embedding + scoring + keywords + RouteDecision objects.
    router = Router(policy, embedder)
    router.decide("warm up")  # embeds the policy's examples once
    sample = random.Random(args.seed).sample(texts, min(args.throughput_sample, len(texts)))
    start, cpu = time.perf_counter(), time.process_time()
    router.decide_many(sample)
    e2e_rate = len(sample) / (time.perf_counter() - start)
    e2e_cpu_rate = len(sample) / (time.process_time() - cpu)

    vectors, embed_seconds = embed_all(embedder, texts, args.cache_dir)
    start = time.perf_counter()
    topics, escalated = decide(router, texts, vectors)
    route_seconds = time.perf_counter() - start
    results = {"shipped policy (as is, no CV)": metrics(labels, topics, escalated)}
    shipped = (topics, escalated)
    print("shipped policy done", file=sys.stderr)

    tuned_params: list[str] = []
    if not args.no_cv:
        folds = folds_for(rows, args.folds, args.seed)
        rows_b = {"topics": [""] * len(rows), "escalated": [False] * len(rows)}
        rows_c = {"topics": [""] * len(rows), "escalated": [False] * len(rows)}
        cached = CachedEmbedder(embedder, texts, vectors)
        for fold in range(args.folds):
            train = np.flatnonzero(folds != fold)
            test = np.flatnonzero(folds == fold)
            train_texts, train_labels = [texts[i] for i in train], [labels[i] for i in train]
            test_texts = [texts[i] for i in test]

            # Row 2: thresholds tuned on the training folds, shipped examples.
            tuned = tune(policy, Router(policy, cached), train_texts, vectors[train], train_labels)
            topics_b, escalated_b = decide(Router(tuned, cached), test_texts, vectors[test])

            # Row 3: training folds' questions become examples; tune on an inner split.
            inner = folds[train] == (fold + 1) % args.folds
            ex_idx, tune_idx = train[~inner], train[inner]
            inner_policy = with_examples(policy, [texts[i] for i in ex_idx], [labels[i] for i in ex_idx])
            tuned_c = tune(inner_policy, Router(inner_policy, cached), [texts[i] for i in tune_idx], vectors[tune_idx], [labels[i] for i in tune_idx])
            full_policy = with_examples(tuned_c, train_texts, train_labels)
            topics_c, escalated_c = decide(Router(full_policy, cached), test_texts, vectors[test])

            for j, i in enumerate(test):
                rows_b["topics"][i], rows_b["escalated"][i] = topics_b[j], escalated_b[j]
                rows_c["topics"][i], rows_c["escalated"][i] = topics_c[j], escalated_c[j]
            floors = lambda p: ", ".join(f"{n} {t.min_score:.3f}" for n, t in p.topics.items() if t.route == "frontier")  # noqa: E731
            tuned_params.append(
                f"fold {fold + 1}: row 2 bonus {tuned.keyword_bonus:.2f}, min_score {floors(tuned)}; "
                f"row 3 bonus {tuned_c.keyword_bonus:.2f}, min_score {floors(tuned_c)}"
            )
            print(f"fold {fold + 1}/{args.folds} done", file=sys.stderr)
        results[f"shipped examples, thresholds tuned ({args.folds}-fold CV)"] = metrics(labels, rows_b["topics"], rows_b["escalated"])
        results[f"+ labelled examples from train folds ({args.folds}-fold CV)"] = metrics(labels, rows_c["topics"], rows_c["escalated"])

    n = len(rows)
    print(f"## Routing evaluation\n")
    print(f"Data: `{args.data.name}`, {n} questions{' (stratified sample)' if args.limit else ''}: "
          + ", ".join(f"{lab} {c}" for lab, c in sorted(Counter(labels).items()))
          + f". Policy: `{args.policy.name}`. Escalate = pricing or api; not escalate = simple or out_of_scope.\n")
    print("| policy | escalation precision | escalation recall | F1 | escalated overall | ambiguous escalated | out_of_scope P | out_of_scope R |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, m in results.items():
        print(f"| {name} | {fmt(m['precision'])} | {fmt(m['recall'])} | {fmt(m['f1'])} | {m['escalated_share']:.1%} | "
              f"{fmt(m['ambiguous_escalated'])} | {fmt(m['oos_precision'])} | {fmt(m['oos_recall'])} |")
    print("\nPer-label decisions, shipped policy (rows: label; columns: decided topic):\n")
    print(confusion_table(labels, shipped[0], shipped[1], policy.topic_names))
    if not args.no_cv:
        print(f"\nPer-label decisions, + labelled examples ({args.folds}-fold CV):\n")
        print(confusion_table(labels, rows_c["topics"], rows_c["escalated"], policy.topic_names))
    intents = [r.get("intent", "") for r in rows]
    flagged = Counter(intents[i] for i, (lab, top) in enumerate(zip(labels, shipped[0])) if lab == "simple" and top == "out_of_scope")
    if flagged:
        print(
            "\nout_of_scope precision is measured against the data's labels, where chit-chat intents (weather, jokes, "
            "greetings, small talk: out of scope for a help desk) are labelled `simple`. Most frequent `simple` intents "
            "the shipped policy declines as out_of_scope: " + ", ".join(f"{name} {count}" for name, count in flagged.most_common(12)) + "."
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nThroughput (`Router.decide_many`, batched, {os.cpu_count()} cores shared with other jobs, load average {load:.1f}):\n")
    print("| measure | questions/s (wall clock) |")
    print("|---|---:|")
    print(f"| end to end (embed + route), {len(sample)} questions | {e2e_rate:.0f} |")
    print(f"| end to end, per CPU-second used by this process | {e2e_cpu_rate:.0f} |")
    if embed_seconds == embed_seconds:
        print(f"| embedding only, {n} questions | {n / embed_seconds:.0f} |")
    print(f"| routing given vectors (`vectors=`), {n} questions | {n / route_seconds:.0f} |")
    print(f"\nEmbedder load: {load_seconds:.1f} s (once per process).")
    if tuned_params:
        print("\nTuned per fold (min_score of the escalation topics, keyword bonus; grid search for escalation F1):\n")
        for line in tuned_params:
            print(f"- {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Evaluate the router on labelled customer questions (../shared/datasets/routing/train.jsonl).

    .venv/bin/python bench/routing_eval.py            # full run (~31k questions)
    .venv/bin/python bench/routing_eval.py --limit 3000  # quick run on a stratified sample
    .venv/bin/python bench/routing_eval.py --by-source   # + fitted on two sources, tested on the third

Labels: `route` is pricing | api | simple | out_of_scope | ambiguous. Escalation is the
positive class: pricing and api should go to the frontier model, simple and out_of_scope
should stay local; ambiguous questions are reported apart (share escalated).

Rows, all scored by the router's own code (`Router.decide_many`, or `Router.evidence` and
`choose_topics` through app/core/answer/fit.py, which `frontdesk router fit` uses too):
  1. shipped policy: app/core/answer/routing_policy.toml as is. Nothing fitted to this data by the
     script (its examples and thresholds were written by hand, with this data set in view).
  2. shipped examples, thresholds tuned: min_score of the escalation topics and the keyword
     bonus chosen on 4 folds (max escalation F1), evaluated on the held-out fifth; 5-fold CV.
  3. + labelled examples: `fit_policy` (what `frontdesk router fit` does) on the 4 training
     folds, evaluated on the held-out fold; 5-fold CV. In-domain: an upper bound.
  --by-source: `fit_policy` on two of the data's sources (banking77, clinc150, rasa-sara),
     evaluated on the third, for each source: does a fit help on data it was not fitted on?

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
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from app.core.answer.fit import (  # noqa: E402
    CachedEmbedder, FitTarget, Metrics, Row, by_source, decisions, fit_policy, metrics, split_folds, tune,
)
from app.core.answer.policy import DEFAULT_POLICY_PATH, RoutingPolicy, load_policy  # noqa: E402
from app.core.answer.router import Router  # noqa: E402
from app.core.docs.embeddings import Embedder  # noqa: E402

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "datasets" / "routing" / "train.jsonl"
LABELS = ("pricing", "api", "simple", "out_of_scope", "ambiguous")
ESCALATE = {"pricing", "api"}
LABEL_TO_TOPIC = {"pricing": "pricing", "api": "api", "simple": "support", "out_of_scope": "out_of_scope"}


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


def fit_row(row: dict) -> Row:
    """The data set's labels as `fit` reads them (the label kept as written, for the per-label tables)."""
    label = row["route"]
    topic = LABEL_TO_TOPIC.get(label)
    route = ("frontier" if label in ESCALATE else "local") if topic else None
    return Row(row["text"], route, topic, label, row.get("source"))


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


# ---------------------------------------------------------------------------- report


def fmt(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{x:.3f}"


def result_row(name: str, m: Metrics) -> str:
    ambiguous = m.by_label.get("ambiguous")
    oos = m.by_label.get("out_of_scope")
    return (f"| {name} | {fmt(m.precision)} | {fmt(m.recall)} | {fmt(m.f1)} | {m.frontier_share:.1%} | "
            f"{fmt(ambiguous.escalated if ambiguous else None)} | {fmt(oos.precision if oos else None)} | {fmt(oos.recall if oos else None)} |")


RESULT_HEADER = ("| policy | escalation precision | escalation recall | F1 | escalated overall | ambiguous escalated | out_of_scope P | out_of_scope R |\n"
                 "|---|---:|---:|---:|---:|---:|---:|---:|")


def confusion_table(labels: list[str], topics: list[str], escalated: np.ndarray, topic_names: list[str]) -> str:
    lines = ["| label | n | " + " | ".join(topic_names) + " | escalated |", "|---|---:|" + "---:|" * (len(topic_names) + 1)]
    for label in LABELS:
        idx = [i for i, lab in enumerate(labels) if lab == label]
        if not idx:
            continue
        counts = Counter(topics[i] for i in idx)
        share = sum(bool(escalated[i]) for i in idx) / len(idx)
        cells = " | ".join(str(counts.get(name, 0)) for name in topic_names)
        lines.append(f"| {label} | {len(idx)} | {cells} | {share:.1%} |")
    return "\n".join(lines)


def floors(tuning) -> str:
    return ", ".join(f"{name} {floor:.3f}" for name, floor in tuning.min_scores.items())


def by_source_table(policy: RoutingPolicy, rows: list[Row], vectors: np.ndarray, cached: CachedEmbedder,
                    target: FitTarget, seed: int) -> list[str]:
    """`fit.by_source` (what `router fit` prints too): the shipped policy and the fit that never saw the source, side by side."""
    winners = np.zeros(len(rows), dtype=np.int64)
    frontier = np.zeros(len(rows), dtype=bool)
    lines = [f"\n## Held out by source: fitted on the other sources, tested on one (target: {target.describe()})\n", RESULT_HEADER]
    checks = by_source(policy, policy, rows, vectors, cached, target, seed)
    for check in checks:
        winners[check.rows], frontier[check.rows] = check.decided
        counts = ", ".join(f"{label} {n}" for label, n in sorted(Counter(rows[i].label for i in check.rows).items()))
        others = " + ".join(sorted({row.source for row in rows if row.source} - {check.source}))
        lines.append(result_row(f"{check.source} ({counts}): shipped policy", check.before))
        lines.append(result_row(f"{check.source}: fitted on {others} (bonus {check.tuning.keyword_bonus:.2f}; "
                                f"min_score {floors(check.tuning)})", check.after))
    tested = np.concatenate([check.rows for check in checks])
    pooled = [rows[i] for i in tested]
    lines.append(result_row("all sources, shipped policy", metrics(policy, pooled, *decisions(policy, cached, pooled, vectors[tested]))))
    lines.append(result_row("all sources, each scored by the fit that never saw it", metrics(policy, pooled, winners[tested], frontier[tested])))
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled JSONL (text, route, source)")
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY_PATH, help="routing policy TOML")
    parser.add_argument("--limit", type=int, default=None, help="evaluate a stratified sample of N questions")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--no-cv", action="store_true", help="no 5-fold rows (only the shipped policy, and --by-source if given)")
    parser.add_argument("--by-source", action="store_true", help="also fit on two sources and test on the third, for each")
    parser.add_argument("--min-recall", type=float, default=None, help="--by-source: the fit's target, as `router fit --min-recall`")
    parser.add_argument("--max-frontier-share", type=float, default=None, help="--by-source: as `router fit --max-frontier-share`")
    parser.add_argument("--throughput-sample", type=int, default=2000, help="questions timed end to end through decide_many")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache question embeddings here (outside the project)")
    args = parser.parse_args(argv)

    raw = load_rows(args.data, args.limit, args.seed)
    rows = [fit_row(r) for r in raw]
    texts = [row.text for row in rows]
    labels = [row.label for row in rows]
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
    routed = router.decide_many(texts, vectors=vectors)
    route_seconds = time.perf_counter() - start
    names = policy.topic_names
    shipped_winners = np.array([names.index(d.topic) for d in routed])
    shipped_frontier = np.array([d.route == "frontier" for d in routed])
    results = {"shipped policy (as is, no CV)": metrics(policy, rows, shipped_winners, shipped_frontier)}
    print("shipped policy done", file=sys.stderr)
    cached = CachedEmbedder(embedder, texts, vectors)

    tuned_params: list[str] = []
    if not args.no_cv:
        folds = split_folds(rows, args.folds, args.seed)
        tuned_w, tuned_f = np.zeros(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=bool)
        fitted_w, fitted_f = np.zeros(len(rows), dtype=np.int64), np.zeros(len(rows), dtype=bool)
        for fold in range(args.folds):
            train, test = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
            train_rows, test_rows = [rows[i] for i in train], [rows[i] for i in test]

            # Row 2: thresholds tuned on the training folds, shipped examples.
            evidence = Router(policy, cached).evidence([r.text for r in train_rows], vectors[train])
            tuning = tune(policy, train_rows, evidence.similarity, evidence.has_keyword)
            tuned_w[test], tuned_f[test] = decisions(tuning.apply(policy), cached, test_rows, vectors[test])

            # Row 3: what `frontdesk router fit` does, on the training folds.
            fitted = fit_policy(policy, train_rows, vectors[train], cached, seed=args.seed)
            fitted_w[test], fitted_f[test] = decisions(fitted.policy, cached, test_rows, vectors[test])
            tuned_params.append(
                f"fold {fold + 1}: row 2 bonus {tuning.keyword_bonus:.2f}, min_score {floors(tuning)}; "
                f"row 3 bonus {fitted.tuning.keyword_bonus:.2f}, min_score {floors(fitted.tuning)}"
            )
            print(f"fold {fold + 1}/{args.folds} done", file=sys.stderr)
        results[f"shipped examples, thresholds tuned ({args.folds}-fold CV)"] = metrics(policy, rows, tuned_w, tuned_f)
        results[f"+ labelled examples from train folds ({args.folds}-fold CV)"] = metrics(policy, rows, fitted_w, fitted_f)

    n = len(rows)
    print("## Routing evaluation\n")
    print(f"Data: `{args.data.name}`, {n} questions{' (stratified sample)' if args.limit else ''}: "
          + ", ".join(f"{lab} {c}" for lab, c in sorted(Counter(labels).items()))
          + f". Policy: `{args.policy.name}`. Escalate = pricing or api; not escalate = simple or out_of_scope.\n")
    print(RESULT_HEADER)
    for name, m in results.items():
        print(result_row(name, m))
    print("\nPer-label decisions, shipped policy (rows: label; columns: decided topic):\n")
    print(confusion_table(labels, [names[w] for w in shipped_winners], shipped_frontier, names))
    if not args.no_cv:
        print(f"\nPer-label decisions, + labelled examples ({args.folds}-fold CV):\n")
        print(confusion_table(labels, [names[w] for w in fitted_w], fitted_f, names))
    intents = [r.get("intent", "") for r in raw]
    flagged = Counter(intents[i] for i, (lab, w) in enumerate(zip(labels, shipped_winners)) if lab == "simple" and names[w] == "out_of_scope")
    if flagged:
        print(
            "\nout_of_scope precision is measured against the data's labels, where chit-chat intents (weather, jokes, "
            "greetings, small talk: out of scope for a help desk) are labelled `simple`. Most frequent `simple` intents "
            "the shipped policy declines as out_of_scope: " + ", ".join(f"{name} {count}" for name, count in flagged.most_common(12)) + "."
        )
    if args.by_source:
        target = FitTarget(args.min_recall, args.max_frontier_share)
        start = time.perf_counter()
        print("\n".join(by_source_table(policy, rows, vectors, cached, target, args.seed)))
        print(f"\n(--by-source: {time.perf_counter() - start:.0f} s for the three fits and their evaluation, embeddings given.)")
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

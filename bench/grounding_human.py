"""How often the grounding check agrees with people on real answers (IBM MTRAG).

Runs `check_grounding` (with the bundled embedder) over every response in
../shared/datasets/grounding/mtrag_faithfulness_dev.jsonl against its passages and compares
the verdict with the human label `human_faithful`. Printed, overall and by source:

  balanced acc   mean of the pass rate on faithful rows and the rejection rate on unfaithful rows
  faithful pass  share of human-faithful answers the check passes (1 - that: good answers rejected)
  bad let through share of unfaithful answers the check passes
  reference rej. share of the human-written reference answers the check rejects

The rows are split into two halves by conversation (bit 1 of sha256 of the task id before
`<::>`; the upstream split already used bit 0), so turns sharing passages stay together.
`--sweep` calibrates the meaning constants (NOVELTY_WEIGHT, SENTENCE_FLOOR,
ANSWER_SUPPORT_THRESHOLD) on half A only (best balanced accuracy with at least --min-faithful
of faithful answers passing) and reports both halves; without it the module's current
constants are measured, and the bench asserts its verdicts are `check_grounding`'s own.

    .venv/bin/python bench/grounding_human.py [--sweep] [--show 5]
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import pickle
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.docs.embeddings import Embedder  # noqa: E402
from app.core.passage import Passage  # noqa: E402
from app.core.text import prose_text, word_count  # noqa: E402
from app.core.trust import attribution, grounding  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "grounding" / "mtrag_faithfulness_dev.jsonl"


class CachedEmbedder:
    """The real embedder, remembering each text's vector: passages repeat across a task's responses."""

    def __init__(self, embedder: Embedder, path: Path | None = None):
        self.embedder, self.vectors, self.path = embedder, {}, path
        if path and path.exists():  # vectors of an earlier run: same model, same texts
            self.vectors = pickle.loads(path.read_bytes())

    def save(self) -> None:
        if self.path:
            self.path.write_bytes(pickle.dumps(self.vectors))

    def embed(self, texts):
        import numpy as np

        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.vectors.update(zip(missing, self.embedder.embed(missing)))
        return np.stack([self.vectors[t] for t in texts]) if texts else self.embedder.embed([])


def half(row: dict) -> str:
    conversation = row["task_id"].split("<::>")[0]
    return "AB"[(int(hashlib.sha256(conversation.encode()).hexdigest(), 16) >> 1) & 1]


def passages_of(row: dict) -> list[Passage]:
    return [Passage(f"{row['task_id']}#{i}", text, f"doc{i}", "", 1.0) for i, text in enumerate(row["passages"], start=1)]


def rates(rows: list[dict], verdicts: dict[int, bool]) -> dict:
    good = [verdicts[r["i"]] for r in rows if r["human_faithful"]]
    bad = [verdicts[r["i"]] for r in rows if not r["human_faithful"]]
    ref = [verdicts[r["i"]] for r in rows if r["source"] == "reference"]
    good_pass = sum(good) / len(good) if good else float("nan")
    bad_pass = sum(bad) / len(bad) if bad else float("nan")
    balanced = (good_pass + (1 - bad_pass)) / 2 if good and bad else float("nan")
    return {"n": len(rows), "balanced": balanced, "good_pass": good_pass, "bad_pass": bad_pass,
            "ref_reject": 1 - sum(ref) / len(ref) if ref else float("nan")}


def report(title: str, rows: list[dict], verdicts: dict[int, bool]) -> None:
    print(f"\n{title}")
    print(f"  {'rows':22s} {'n':>4} {'balanced':>9} {'faithful pass':>14} {'good rejected':>14} {'bad let through':>16} {'reference rej.':>15}")
    groups = [("all", rows)] + [(source, [r for r in rows if r["source"] == source])
                                for source in sorted({r["source"] for r in rows})]
    for name, group in groups:
        m = rates(group, verdicts)
        print(f"  {name:22s} {m['n']:4d} {m['balanced']:9.3f} {m['good_pass']:14.1%} {1 - m['good_pass']:14.1%} "
              f"{m['bad_pass']:16.1%} {m['ref_reject']:15.1%}")


def run(rows: list[dict], embedder) -> tuple[dict[int, float], dict[int, float], dict[int, bool], dict[int, object]]:
    """Per row: the answer's support (inf when nothing is judged by meaning), its weakest judged
    sentence (inf when none), whether everything not set by a threshold held (facts, citations,
    the no-passage rules), and the result.

    The check runs with its meaning thresholds off, so every score is read off the result and
    the thresholds are applied here (`verdicts_at`), as `check_grounding` applies them.
    """
    support, weakest, facts_ok, results = {}, {}, {}, {}
    for row in rows:
        result = grounding.check_grounding(row["response"], passages_of(row), embedder, sentence_threshold=-1.0,
                                           answer_threshold=float("-inf"), sentence_floor=float("-inf"))
        judged = [s.score for s in result.sentences
                  if word_count(prose_text(row["response"][s.start:s.end])) >= attribution.MIN_CLAIM_WORDS]
        support[row["i"]] = float("inf") if result.support is None else result.support
        weakest[row["i"]] = min(judged or [s.score for s in result.sentences] or [float("inf")])
        facts_ok[row["i"]] = result.passed
        results[row["i"]] = result
    return support, weakest, facts_ok, results


def verdicts_at(support, weakest, facts_ok, threshold: float, floor: float) -> dict[int, bool]:
    return {i: facts_ok[i] and support[i] >= threshold and weakest[i] >= floor for i in support}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="calibrate the constants on half A")
    parser.add_argument("--min-faithful", type=float, default=0.85, help="sweep: least pass rate on faithful answers in half A")
    parser.add_argument("--cache", type=Path, help="keep embeddings in this file between runs (e.g. /tmp/mtrag.pkl)")
    parser.add_argument("--show", type=int, default=0, help="print N disagreements of each kind with their reasons")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    for i, row in enumerate(rows):
        row["i"] = i
    halves = {name: [r for r in rows if half(r) == name] for name in "AB"}
    embedder = CachedEmbedder(Embedder(), args.cache)

    if args.sweep:
        best = None
        for novelty, floor in itertools.product([0.0, 0.25, 0.5, 0.75, 1.0], [float("-inf"), 0.0, 0.1, 0.2, 0.3]):
            grounding.NOVELTY_WEIGHT = novelty
            support, weakest, facts_ok, _ = run(halves["A"], embedder)
            for threshold in [round(0.30 + 0.002 * k, 3) for k in range(301)]:
                m = rates(halves["A"], verdicts_at(support, weakest, facts_ok, threshold, floor))
                # Ties go to the simpler point (less novelty weight), then to the stricter floor.
                key = (m["good_pass"] >= args.min_faithful, round(m["balanced"], 6), -novelty, floor)
                if best is None or key > best[0]:
                    best = (key, novelty, floor, threshold, m)
            print(f"  novelty {novelty:.2f} floor {floor}: best so far (novelty, floor, threshold) {best[1:4]} "
                  f"balanced {best[4]['balanced']:.3f}", flush=True)
        _, novelty, floor, threshold, _ = best
        print(f"\ncalibrated on half A: NOVELTY_WEIGHT={novelty} SENTENCE_FLOOR={floor} ANSWER_SUPPORT_THRESHOLD={threshold}")
        grounding.NOVELTY_WEIGHT = novelty
    else:
        threshold, floor = grounding.ANSWER_SUPPORT_THRESHOLD, grounding.SENTENCE_FLOOR
    print(f"constants: ANSWER_SUPPORT_THRESHOLD={threshold} NOVELTY_WEIGHT={grounding.NOVELTY_WEIGHT} SENTENCE_FLOOR={floor} "
          f"COVERAGE_BASE={attribution.COVERAGE_BASE} COVERAGE_WEIGHT={attribution.COVERAGE_WEIGHT} WINDOW={attribution.WINDOW}")

    support, weakest, facts_ok, results = run(rows, embedder)
    embedder.save()
    verdicts = verdicts_at(support, weakest, facts_ok, threshold, floor)
    if not args.sweep:  # the verdicts read off the scores are the check's own
        disagree = [r["task_id"] for r in rows if grounding.check_grounding(r["response"], passages_of(r), embedder).passed != verdicts[r["i"]]]
        assert not disagree, f"bench and check_grounding disagree on {disagree}"
    report("half A (calibration: ibmcloud + part of clapnq)", halves["A"], verdicts)
    report("half B (held out: govt, fiqa + part of clapnq)", halves["B"], verdicts)
    report("both halves", rows, verdicts)
    fact_failures = [i for i in facts_ok if not facts_ok[i]]
    print(f"\nrows failing on a fact, a citation or the no-passage rules: {len(fact_failures)} "
          f"(human-faithful among them: {sum(rows[i]['human_faithful'] for i in fact_failures)})")
    if args.show:
        for label, wanted in (("faithful but rejected", True), ("unfaithful but passed", False)):
            picked = [r for r in rows if r["human_faithful"] == wanted and verdicts[r["i"]] != wanted][:args.show]
            print(f"\n--- {label} ({sum(1 for r in rows if r['human_faithful'] == wanted and verdicts[r['i']] != wanted)}) ---")
            for row in picked:
                result = results[row["i"]]
                print(f"[{row['source']}] {row['task_id']} support {support[row['i']]:.3f} weakest {weakest[row['i']]:.3f}")
                for span in result.unsupported:
                    print(f"   {span.kind}: {span.text[:100]!r} ({span.reason})")
                for s in result.sentences:
                    if s.score < grounding.SENTENCE_SUPPORT_THRESHOLD:
                        print(f"   low {s.score:.3f} {row['response'][s.start:s.end][:140]!r}")
    print(f"\ntook {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Calibrate the relevance floor (`thresholds.min_relevance` in the routing policy).

Below the floor the desk says it doesn't know and offers a handoff. This measures the best
retrieval score of labelled answerable and unanswerable questions over real docs, then
sweeps the floor: handoffs on unanswerable questions (wanted) against handoffs on
answerable ones (lost answers).

    .venv/bin/python bench/calibrate_relevance.py --home DIR_WITH_RAILWAY --home-knowledge DIR_WITH_KNOWLEDGE

Each --home is a data dir where that set's docs are ingested (`frontdesk ingest`); a set
whose --home is missing is ingested into a temporary dir first.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.desk import Desk  # noqa: E402
from app.core.settings import load_settings  # noqa: E402

SETS = {
    "railway": (ROOT / "bench" / "data" / "railway_questions.jsonl", ROOT.parent / "shared" / "datasets" / "railway-docs"),
    "knowledge": (ROOT / "tests" / "data" / "knowledge_questions.jsonl", ROOT / "knowledge"),
}


def top_scores(name: str, home: Path | None) -> tuple[list[float], list[float]]:
    questions_path, docs = SETS[name]
    items = [json.loads(line) for line in questions_path.read_text().splitlines() if line.strip()]
    items = [i for i in items if i.get("route") != "out_of_scope"]
    services = Desk(load_settings(environ={"FRONTDESK_HOME": str(home or tempfile.mkdtemp())}))
    if home is None:
        for _ in services.ingest(docs):
            pass
    hits = services.retriever.search_many([i["question"] for i in items], k=1)
    answerable = [h[0].score for i, h in zip(items, hits) if i.get("answerable")]
    unanswerable = [h[0].score for i, h in zip(items, hits) if not i.get("answerable")]
    return answerable, unanswerable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="data dir with railway-docs ingested")
    parser.add_argument("--home-knowledge", type=Path, help="data dir with knowledge/ ingested")
    parser.add_argument("--max-lost", type=float, default=0.02,
                        help="largest share of answerable questions handed off (a lost answer costs more than a quoted one)")
    args = parser.parse_args()

    answerable, unanswerable = [], []
    for name, home in (("railway", args.home), ("knowledge", args.home_knowledge)):
        a, u = top_scores(name, home)
        print(f"{name}: {len(a)} answerable (top score median {sorted(a)[len(a) // 2]:.3f}), "
              f"{len(u)} unanswerable (median {sorted(u)[len(u) // 2]:.3f})")
        answerable += a
        unanswerable += u

    print("\n| floor | unanswerable handed off | answerable handed off (lost) |\n|---|---|---|")
    best = None
    for step in range(20, 61):
        floor = step / 100
        caught = sum(s < floor for s in unanswerable) / len(unanswerable)
        lost = sum(s < floor for s in answerable) / len(answerable)
        if step % 2 == 0:
            print(f"| {floor:.2f} | {caught:.0%} | {lost:.1%} |")
        if lost <= args.max_lost:
            best = (floor, caught, lost)
    floor, caught, lost = best
    print(f"\nChosen floor {floor:.2f}: the highest that hands off at most {args.max_lost:.0%} of answerable "
          f"questions ({lost:.1%}); it hands off {caught:.0%} of unanswerable ones. The rest of those are caught "
          "by the grounding check and the prompt's instruction to say \"I don't know\".")


if __name__ == "__main__":
    main()

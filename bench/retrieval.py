"""Retrieval quality: does the right page (and the right section) come back?

    .venv/bin/python bench/retrieval.py [--homes DIR] [--variants dense,hybrid] [--misses]

Ingests the Railway docs (../shared/datasets/railway-docs) and the sample docs (knowledge/)
into data dirs under --homes (default: a temporary folder, removed afterwards; with --homes
the stores are kept and a re-run only re-syncs them), then asks every labelled answerable
question of each set through each retrieval variant and prints, as a Markdown table:

- file level: hit@1, hit@5 and MRR@10 of the first passage from a labelled file;
- file+heading level: the same for the first passage from a labelled file whose heading
  path contains the labelled heading (case-insensitive; a row labelled "" counts any
  section of the file); only for sets whose rows carry a heading;
- fact words@5: the share of the labelled facts' content words found in the top 5 passages'
  text (a rough "is the answer in what the model is shown" measure, where facts exist);
- how many questions the router's relevance floor (min_relevance) and local-confidence bar
  would treat as weakly supported, judged by the first passage's cosine and by the best among
  the top 5. What the router is given, `Found.best_scores`, is the best cosine of the dense
  candidates, so for every variant it equals the "dense" rows: these columns show what reading
  the fused first passage's score instead would do. For unanswerable questions (labelled
  answerable: false, out-of-scope ones left out) falling below the floor is what is wanted.

Variants: "dense" is retrieval as it was (one Chroma query); "+ bm25" and "+ bm25 + page
evidence" add the hybrid ranking's parts one at a time; "hybrid" is what search, route
--docs and the pipeline use now (app/core/docs/retrieval.py), procedures completed included.

Sets: railway_eval (bench/data/railway_eval.jsonl: section-labelled, customer wording),
railway_questions (bench/data/railway_questions.jsonl: file-labelled), knowledge
(tests/data/knowledge_questions.jsonl) and sample_eval (tests/data/sample_eval.jsonl, when
it exists), the last two over knowledge/.
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.desk import Desk  # noqa: E402
from app.core.docs.ingest import IngestFinished  # noqa: E402
from app.core.docs import retrieval  # noqa: E402
from app.core.docs.retrieval import Retriever  # noqa: E402
from app.core.labelled import LabelledQuestion, load_questions  # noqa: E402
from app.core.passage import Passage  # noqa: E402
from app.core.settings import load_settings  # noqa: E402

RAILWAY = ROOT.parent / "shared" / "datasets" / "railway-docs"
KNOWLEDGE = ROOT / "knowledge"
SETS = {  # name -> (questions, docs folder, data dir name)
    "railway_eval": (ROOT / "bench" / "data" / "railway_eval.jsonl", RAILWAY, "railway"),
    "railway_questions": (ROOT / "bench" / "data" / "railway_questions.jsonl", RAILWAY, "railway"),
    "knowledge": (ROOT / "tests" / "data" / "knowledge_questions.jsonl", KNOWLEDGE, "knowledge"),
    "sample_eval": (ROOT / "tests" / "data" / "sample_eval.jsonl", KNOWLEDGE, "knowledge"),
}
DEPTH = 10  # passages retrieved per question; MRR is over these
_WORD = re.compile(r"[a-z0-9$][a-z0-9$.,/_-]*[a-z0-9]|[a-z0-9]")
_STOP = set("the a an and or of to in on for is are be by with from at as it its this that no not per".split())


def _variant_retrievers(desk: Desk) -> dict[str, Callable[[list[str], int], list[list[Passage]]]]:
    """Each variant: questions, k -> passages per question. All share the desk's store and embedder.

    "dense" is the retrieval before this work (one Chroma query); the two middle rows take the
    hybrid ranking's parts away one at a time; "hybrid" is what search, route --docs and the
    pipeline use (desk.retriever), procedures completed included."""
    dense = Retriever(desk.store, desk.embedder, hybrid=False, neighbours=False)
    return {
        "dense": dense.search_many,
        "+ bm25": _with(desk.retriever.search_many, PAGE_WEIGHT=0.0, MAX_PER_FILE=10**6),
        "+ bm25 + page evidence": _with(desk.retriever.search_many, MAX_PER_FILE=10**6),
        "hybrid": desk.retriever.search_many,
    }


def _with(search: Callable, **constants) -> Callable:
    """`search` with some of app.core.docs.retrieval's ranking constants changed while it runs."""
    def run(questions: list[str], k: int) -> list[list[Passage]]:
        saved = {name: getattr(retrieval, name) for name in constants}
        vars(retrieval).update(constants)
        try:
            return search(questions, k)
        finally:
            vars(retrieval).update(saved)
    return run


@dataclass
class Scores:
    n: int = 0
    hit1: int = 0
    hit5: int = 0
    rr: float = 0.0

    def add(self, rank: int | None) -> None:
        self.n += 1
        self.hit1 += rank == 1
        self.hit5 += rank is not None and rank <= 5
        self.rr += 1 / rank if rank else 0.0

    def cells(self) -> list[str]:
        return [f"{self.hit1 / self.n:.3f}", f"{self.hit5 / self.n:.3f}", f"{self.rr / self.n:.3f}"] if self.n else ["", "", ""]


def first_rank(passages: list[Passage], question: LabelledQuestion, with_heading: bool) -> int | None:
    heading = (question.heading or "").lower()
    for rank, passage in enumerate(passages, 1):
        if passage.file in question.files and (not with_heading or heading in passage.heading.lower()):
            return rank
    return None


def fact_words(question: LabelledQuestion) -> set[str]:
    return {w for fact in question.facts for w in _WORD.findall(fact.lower()) if w not in _STOP}


def ingest(desk: Desk, docs: Path) -> str:
    started = time.perf_counter()
    summary = next(e.summary for e in desk.ingest(docs) if isinstance(e, IngestFinished))
    return f"{docs.name}: {summary.chunks_total} chunks ({summary.chunks_embedded} embedded) in {time.perf_counter() - started:.0f} s"


def below(passages: list[Passage], floor: float) -> tuple[bool, bool]:
    """Is the first passage's cosine below `floor`; is the best of them below it?"""
    first = passages[0].score if passages else 0.0
    return first < floor, max((p.score for p in passages[:5]), default=0.0) < floor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--homes", type=Path, help="keep the data dirs here and reuse them on the next run")
    parser.add_argument("--variants", help="comma-separated subset of the variants (default: all)")
    parser.add_argument("--sets", help="comma-separated subset of: " + ", ".join(SETS))
    parser.add_argument("--misses", action="store_true", help="also list the questions each variant misses at file level in the top 5")
    args = parser.parse_args()

    homes = args.homes or Path(tempfile.mkdtemp(prefix="frontdesk-retrieval-"))
    chosen_sets = args.sets.split(",") if args.sets else list(SETS)
    desks: dict[str, Desk] = {}
    rows: list[str] = []
    thresholds: list[str] = []
    misses: list[str] = []
    try:
        for name in chosen_sets:
            questions_path, docs, home_name = SETS[name]
            if not questions_path.exists():
                print(f"({name}: {questions_path.relative_to(ROOT)} does not exist yet; skipped)", file=sys.stderr)
                continue
            if home_name not in desks:
                desks[home_name] = Desk(load_settings(environ={"FRONTDESK_HOME": str(homes / home_name)}))
                print(ingest(desks[home_name], docs), file=sys.stderr)
            desk = desks[home_name]
            policy = desk.router.policy
            labelled = [q for q in load_questions(questions_path) if q.topic != "out_of_scope"]
            answerable = [q for q in labelled if q.answerable and q.files]
            unanswerable = [q for q in labelled if q.answerable is False]
            with_headings = any(q.heading is not None for q in answerable)
            variants = _variant_retrievers(desk)
            for variant in args.variants.split(",") if args.variants else variants:
                results = variants[variant]([q.question for q in answerable + unanswerable], DEPTH)
                by_file, by_heading = Scores(), Scores()
                found_words = total_words = 0
                for question, passages in zip(answerable, results):
                    by_file.add(first_rank(passages, question, with_heading=False))
                    if with_headings:
                        by_heading.add(first_rank(passages, question, with_heading=True))
                    wanted = fact_words(question)
                    shown = " ".join(p.text.lower() for p in passages[:5])
                    total_words += len(wanted)
                    found_words += sum(1 for w in wanted if w in shown)
                    if args.misses and not any(p.file in question.files for p in passages[:5]):
                        misses.append(f"- {name}/{variant}: {question.question!r} (want {question.files[0]}; "
                                      f"got {', '.join(p.file for p in passages[:3])})")
                rows.append(" | ".join([name, variant, str(len(answerable)), *by_file.cells(), *by_heading.cells(),
                                        f"{found_words / total_words:.3f}" if total_words else ""]))
                floor = [below(p, policy.min_relevance) for p in results]
                local = [below(p, policy.local_confidence) for p in results[:len(answerable)]]
                cells = [sum(f[0] for f in floor[:len(answerable)]), sum(f[1] for f in floor[:len(answerable)]),
                         sum(f[0] for f in local), sum(f[1] for f in local)]
                if unanswerable:
                    cells += [sum(f[0] for f in floor[len(answerable):]), sum(f[1] for f in floor[len(answerable):])]
                thresholds.append(" | ".join([name, variant, *(f"{c}/{len(answerable)}" for c in cells[:4]),
                                              *(f"{c}/{len(unanswerable)}" for c in cells[4:])] + [""] * (2 - len(cells[4:]))))
    finally:
        if args.homes is None:
            shutil.rmtree(homes, ignore_errors=True)

    print("| set | variant | questions | file hit@1 | file hit@5 | file MRR@10 | section hit@1 | section hit@5 | section MRR@10 | fact words@5 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(f"| {row} |" for row in rows))
    print(f"\nCosine below the router's thresholds (min_relevance {policy.min_relevance}, local_confidence "
          f"{policy.local_confidence}), judged by the first passage's score or by the best of the top 5 (the router "
          "is given the dense candidates' best, as in the dense rows):\n")
    print("| set | variant | answerable < floor, first | best | answerable < local, first | best "
          "| unanswerable < floor, first | best |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(f"| {row} |" for row in thresholds))
    if misses:
        print("\nFile-level misses in the top 5:\n" + "\n".join(misses))


if __name__ == "__main__":
    main()

"""Calibrate the local tier's two judgements (`app/core/trust/relevance.py`) on labelled questions.

1. Is a docs quote confident enough to answer without the frontier? For every labelled
   question that clears the relevance floor, the pipeline's own quote (`Assistant.docs_quote`)
   is labelled good when the question is answerable, the quote states the labelled fact
   (bench/labels.py: every number, most content words) and it cites the labelled file;
   wrong otherwise (an unanswerable question has no good quote).
2. Does a draft answer the question asked? Small models copy passage sentences, so drafts
   are simulated as one or two consecutive sentences of each passage the local model is
   given (the first LOCAL_PASSAGES). A draft is good when it states the labelled fact;
   wrong when it comes from a passage with nothing of the fact (a true passage about
   something else: changing a password for a question about resetting one), or when the
   question is unanswerable. Drafts in between (part of the fact) are left out.

For each, a grid of (similarity, coverage) thresholds is swept and both error rates are
printed: good ones rejected (money: an escalation, or a lost local answer) and wrong ones
let through (a wrong answer shown), with the pair that makes the fewest errors of both kinds
together (Youden's J) and the one with the fewest good rejected among those letting through
at most --max-wrong of the wrong ones.

    .venv/bin/python bench/calibrate_local_tier.py --home /tmp/rw     # railway docs ingested there
    (the sample docs are ingested into a temporary dir; --home-knowledge DIR to reuse one)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from app.core.answer.prompts import LOCAL_PASSAGES  # noqa: E402
from app.core.text import clean_sentence, split_sentences, word_count  # noqa: E402
from app.core.trust.relevance import (DRAFT_MIN_COVERAGE, DRAFT_MIN_SIMILARITY, QUOTE_MIN_COVERAGE,  # noqa: E402
                                QUOTE_MIN_SIMILARITY, draft_features, quote_relevance)
from app.core.desk import Desk  # noqa: E402
from app.core.settings import load_settings  # noqa: E402
from labels import cited_files, fact_match  # noqa: E402

SETS = {
    "knowledge": (ROOT / "tests" / "data" / "knowledge_questions.jsonl", ROOT / "knowledge"),
    "railway": (ROOT / "bench" / "data" / "railway_questions.jsonl", ROOT.parent / "shared" / "datasets" / "railway-docs"),
}
SIMILARITIES = [round(0.30 + 0.05 * i, 2) for i in range(10)]
COVERAGES = [0.0, 0.25, 0.34, 0.4, 0.5, 0.6, 0.67, 0.75, 0.8, 1.0]


def samples(name: str, home: Path | None) -> tuple[list[dict], list[dict]]:
    questions_path, docs = SETS[name]
    items = [json.loads(line) for line in questions_path.read_text().splitlines() if line.strip()]
    items = [i for i in items if i.get("route") != "out_of_scope"]
    services = Desk(load_settings(environ={"FRONTDESK_HOME": str(home or tempfile.mkdtemp(prefix="calib-"))}))
    if home is None:
        for _ in services.ingest(docs):
            pass
    assistant, embedder = services.assistant, services.embedder
    quotes, drafts = [], []
    for item in items:
        question = item["question"]
        passages, _, vector, _ = assistant.retrieve(question, services.settings.general.top_k)
        top = passages[0].score if passages else 0.0
        decision = services.router.decide_many([question], [top], vectors=vector)[0]
        if not passages or not decision.answerable:
            continue  # handed off before any quote or draft
        answerable = bool(item.get("answerable"))
        quote, verdict = assistant.docs_quote(question, passages)
        good = answerable and fact_match(item["fact"], quote.text).ok and \
            item.get("file") in cited_files(quote.text, [p.to_json() for p in quote.passages])
        quotes.append({"set": name, "question": question, "route": decision.route, "good": good,
                       "similarity": verdict.similarity, "coverage": verdict.coverage})
        for rank, passage in enumerate(passages[:LOCAL_PASSAGES]):
            nothing_of_it = not answerable or fact_match(item["fact"], passage.heading + "\n" + passage.text).none
            sentences = [clean_sentence(passage.text[s:e]) for s, e in split_sentences(passage.text)]
            sentences = [s for s in sentences if word_count(s) >= 4]
            for i in range(len(sentences)):
                draft = " ".join(sentences[i:i + 2])
                if answerable and fact_match(item["fact"], draft).ok:
                    good = True
                elif nothing_of_it:
                    good = False
                else:
                    continue  # part of the fact: neither clearly right nor about something else
                similarity, covered = draft_features(question, draft, [passage], embedder)
                drafts.append({"set": name, "question": question, "route": decision.route, "good": good, "rank": rank,
                               "similarity": similarity, "coverage": covered, "draft": draft[:100]})
    return quotes, drafts


def sweep(rows: list[dict], what: str, max_wrong: float, current: tuple[float, float]) -> tuple[float, float]:
    good = [r for r in rows if r["good"]]
    wrong = [r for r in rows if not r["good"]]
    print(f"\n{what}: {len(good)} good, {len(wrong)} wrong")
    print("| similarity ≥ | coverage ≥ | good rejected | wrong let through |\n|---|---|---|---|")
    best = balanced = None
    for s in SIMILARITIES:
        for c in COVERAGES:
            rejected = sum(not (r["similarity"] >= s and r["coverage"] >= c) for r in good) / max(1, len(good))
            through = sum(r["similarity"] >= s and r["coverage"] >= c for r in wrong) / max(1, len(wrong))
            if c in (0.0, 0.5, 0.67) or (s, c) == current:
                print(f"| {s:.2f} | {c:.2f} | {rejected:.1%} | {through:.1%} |")
            if through <= max_wrong and (best is None or (rejected, through) < best[2:]):
                best = (s, c, rejected, through)
            if balanced is None or rejected + through < balanced[2] + balanced[3]:
                balanced = (s, c, rejected, through)
    print(f"fewest errors of both kinds: similarity ≥ {balanced[0]:.2f}, coverage ≥ {balanced[1]:.2f}: "
          f"{balanced[2]:.1%} of good rejected, {balanced[3]:.1%} of wrong let through")
    s, c, rejected, through = best
    print(f"best with wrong let through ≤ {max_wrong:.0%}: similarity ≥ {s:.2f}, coverage ≥ {c:.2f}: "
          f"{rejected:.1%} of good rejected, {through:.1%} of wrong let through")
    cs, cc = current
    rejected = sum(not (r["similarity"] >= cs and r["coverage"] >= cc) for r in good) / max(1, len(good))
    through = sum(r["similarity"] >= cs and r["coverage"] >= cc for r in wrong) / max(1, len(wrong))
    print(f"in use: similarity ≥ {cs:.2f}, coverage ≥ {cc:.2f}: {rejected:.1%} of good rejected, {through:.1%} of wrong let through")
    for name in SETS:
        g = [r for r in good if r["set"] == name]
        w = [r for r in wrong if r["set"] == name]
        if g or w:
            rj = sum(not (r["similarity"] >= cs and r["coverage"] >= cc) for r in g)
            th = sum(r["similarity"] >= cs and r["coverage"] >= cc for r in w)
            print(f"  {name}: good rejected {rj}/{len(g)}, wrong let through {th}/{len(w)}")
    return s, c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="data dir with railway-docs ingested (skipped when missing)")
    parser.add_argument("--home-knowledge", type=Path, help="data dir with knowledge/ ingested")
    parser.add_argument("--max-wrong", type=float, default=0.10, help="largest share of wrong quotes/drafts let through")
    parser.add_argument("--dump", type=Path, help="write every sample as JSON lines here")
    args = parser.parse_args()

    quotes, drafts = [], []
    for name, home in (("knowledge", args.home_knowledge), ("railway", args.home)):
        if name == "railway" and home is None:
            print("railway: no --home given, skipped", file=sys.stderr)
            continue
        q, d = samples(name, home)
        quotes += q
        drafts += d
    if args.dump:
        with args.dump.open("w") as out:
            for row in quotes:
                out.write(json.dumps({"kind": "quote", **row}) + "\n")
            for row in drafts:
                out.write(json.dumps({"kind": "draft", **row}) + "\n")
    sweep(quotes, "Docs quotes (is the quote confident?)", args.max_wrong, (QUOTE_MIN_SIMILARITY, QUOTE_MIN_COVERAGE))
    local = [r for r in quotes if r["route"] == "local"]
    print(f"...local-routed questions only: {sum(r['good'] for r in local)} good, {sum(not r['good'] for r in local)} wrong")
    sweep(drafts, "Simulated drafts (does the draft answer the question?)", args.max_wrong,
          (DRAFT_MIN_SIMILARITY, DRAFT_MIN_COVERAGE))
    wrong_top = [r for r in drafts if not r["good"] and r["rank"] == 0]
    print(f"wrong drafts from the best-ranked passage: {len(wrong_top)} of {sum(not r['good'] for r in drafts)}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()

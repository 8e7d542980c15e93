"""Calibrate the local tier's three judgements (`app/core/trust/relevance.py`) on labelled questions.

1. Is a docs quote confident enough to answer without the frontier? For every labelled
   question that clears the relevance floor, the pipeline's own quote (`Reading.docs_quote`)
   is labelled good when the question is answerable, the quote states every labelled fact
   (app/core/evaluation/facts.py: every number, most content words) and it cites the labelled file;
   wrong otherwise (an unanswerable question has no good quote).
2. Does a draft answer the question asked? Small models copy passage sentences, so drafts
   are simulated as one or two consecutive sentences of each passage the local model is
   given (the first LOCAL_PASSAGES). A draft is good when it states the labelled fact;
   wrong when it comes from a passage with nothing of the fact (a true passage about
   something else: changing a password for a question about resetting one), or when the
   question is unanswerable. Drafts in between (part of the fact) are left out.
3. Are the quote's lines worth adding beneath a kept draft? Quotes from the passages the
   draft reads (as the pipeline's lines are), labelled good when they hold any part of the
   labelled facts, wrong when they hold none of them or the question is unanswerable.

For each, a grid of (similarity, coverage) thresholds is fitted on the labelled questions of
tests/data/knowledge_questions.jsonl, bench/data/railway_questions.jsonl and
bench/data/railway_eval.jsonl, and both error rates are printed there and on the held-out
tests/data/sample_eval.jsonl (long, chatty customer questions): good ones rejected (money:
an escalation, or a lost local answer) and wrong ones let through (a wrong answer shown).
Both judgements also apply one rule: a question asking for a quantity ("how long", "how
many") is answered only by a text that states one; per set, it prints what the rule rejects.
It also prints how often quotes of 3, 5 and 8 sentences hold the whole labelled fact, and
how often the passages the draft and the quote read hold it at all.

    .venv/bin/python bench/calibrate_local_tier.py --home /tmp/rw     # railway docs ingested there
    (the sample docs are ingested into a temporary dir; --home-knowledge DIR to reuse one)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.answer.prompts import LOCAL_PASSAGES  # noqa: E402
from app.core.text import clean_sentence, split_sentences, word_count  # noqa: E402
from app.core.answer.extractive import QUOTE_PASSAGES, QUOTE_SENTENCES, extractive_quote  # noqa: E402
from app.core.trust.relevance import (DRAFT_MIN_COVERAGE, DRAFT_MIN_SIMILARITY, LINES_MIN_COVERAGE,  # noqa: E402
                                      LINES_MIN_SIMILARITY, QUOTE_MIN_COVERAGE, QUOTE_MIN_SIMILARITY,
                                      asked_quantity_missing, clears, draft_features,
                                      heading_leaf)
from app.core.desk import Desk  # noqa: E402
from app.core.settings import load_settings  # noqa: E402
from app.core.evaluation.facts import cited_files, fact_match  # noqa: E402
from app.core.labelled import LabelledQuestion, load_questions  # noqa: E402

KNOWLEDGE, RAILWAY = ROOT / "knowledge", ROOT.parent / "shared" / "datasets" / "railway-docs"
# (questions, docs, fitted on?) The sample eval is held out: its long, chatty customer
# questions test the thresholds fitted on the other three sets.
SETS = {
    "knowledge": (ROOT / "tests" / "data" / "knowledge_questions.jsonl", KNOWLEDGE, True),
    "railway": (ROOT / "bench" / "data" / "railway_questions.jsonl", RAILWAY, True),
    "railway-eval": (ROOT / "bench" / "data" / "railway_eval.jsonl", RAILWAY, True),
    "sample-eval": (ROOT / "tests" / "data" / "sample_eval.jsonl", KNOWLEDGE, False),
}


def states_facts(item: LabelledQuestion, text: str) -> bool:
    return bool(item.facts) and all(fact_match(f, text).ok for f in item.facts)


def nothing_of_facts(item: LabelledQuestion, text: str) -> bool:
    return all(fact_match(f, text).none for f in item.facts)


def in_scope(path: Path) -> list[LabelledQuestion]:
    """The set's questions, read as `frontdesk eval` reads them, less the out-of-scope ones."""
    return [item for item in load_questions(path) if item.topic != "out_of_scope"]


SIMILARITIES = [round(0.30 + 0.05 * i, 2) for i in range(10)]
COVERAGES = [0.0, 1 / 4, 1 / 3, 2 / 5, 1 / 2, 3 / 5, 2 / 3, 3 / 4, 4 / 5, 1.0]  # questions have a few words
TOLERANCE = 0.03  # pairs this close to the fewest errors count as equally good (see sweep)


def samples(name: str, home: Path) -> tuple[list[dict], list[dict], list[dict]]:
    """Quote, lines and draft samples of one set, from a data dir that holds its docs."""
    questions_path = SETS[name][0]
    services = Desk(load_settings(environ={"FRONTDESK_HOME": str(home)}))
    assistant, embedder = services.assistant, services.embedder
    quotes, lines, drafts = [], [], []
    for item in in_scope(questions_path):
        question = item.question
        passages, _, vector, best = assistant.retrieve(question, services.settings.general.top_k)
        decision = services.router.decide_many([question], [best], vectors=vector)[0]
        if not passages or not decision.answerable:
            continue  # handed off before any quote or draft
        answerable = bool(item.answerable)
        used = assistant.reading.local_passages(passages)
        quote, verdict = assistant.reading.quote_from(question, assistant.reading.quote_passages(passages, used))
        good = answerable and states_facts(item, quote.text) and \
            bool(set(item.files) & cited_files(quote.text, [p.to_json() for p in quote.passages]))
        quotes.append({"set": name, "question": question, "route": decision.route, "good": good,
                       "similarity": verdict.similarity, "coverage": verdict.coverage,
                       "quantity_missing": bool(asked_quantity_missing(question, quote.sentences_text)),
                       "quoted": quote.sentences_text, "quoted_leaves": [heading_leaf(quote.passages[n - 1]) for n in quote.numbers],
                       "passages": [heading_leaf(p) + "\n" + p.text for p in quote.passages]})
        # The lines beneath a kept draft are quoted from the passages the draft read, and add
        # something when they hold any of the facts.
        beneath, beneath_verdict = assistant.reading.quote_from(question, used, as_lines=True)
        lines.append({"set": name, "question": question, "route": decision.route,
                      "good": answerable and bool(item.facts) and not nothing_of_facts(item, beneath.sentences_text),
                      "similarity": beneath_verdict.similarity, "coverage": beneath_verdict.coverage,
                      "quantity_missing": bool(asked_quantity_missing(question, beneath.sentences_text)),
                      "quoted": beneath.sentences_text})
        for rank, passage in enumerate(used):
            nothing_of_it = not answerable or nothing_of_facts(item, passage.heading + "\n" + passage.text)
            sentences = [clean_sentence(passage.text[s:e]) for s, e in split_sentences(passage.text)]
            sentences = [s for s in sentences if word_count(s) >= 4]
            for i in range(len(sentences)):
                draft = " ".join(sentences[i:i + 2])
                if answerable and states_facts(item, draft):
                    good = True
                elif nothing_of_it:
                    good = False
                else:
                    continue  # part of the fact: neither clearly right nor about something else
                similarity, covered = draft_features(question, draft, [passage], embedder)
                drafts.append({"set": name, "question": question, "route": decision.route, "good": good, "rank": rank,
                               "similarity": similarity, "coverage": covered, "draft": draft,
                               "quantity_missing": bool(asked_quantity_missing(question, draft)),
                               "leaf": heading_leaf(passage)})
    return quotes, lines, drafts


def rates(rows: list[dict], min_similarity: float, min_coverage: float) -> tuple[float, float]:
    """(share of good ones rejected, share of wrong ones let through) at these thresholds."""
    good = [r for r in rows if r["good"]]
    wrong = [r for r in rows if not r["good"]]
    rejected = sum(not clears(r["similarity"], r["coverage"], min_similarity, min_coverage, r["quantity_missing"]) for r in good)
    through = sum(clears(r["similarity"], r["coverage"], min_similarity, min_coverage, r["quantity_missing"]) for r in wrong)
    return rejected / max(1, len(good)), through / max(1, len(wrong))


def quantity_rule(rows: list[dict]) -> str:
    """What the quantity rule alone rejects: good ones (its error) and wrong ones."""
    good = sum(r["quantity_missing"] for r in rows if r["good"])
    wrong = sum(r["quantity_missing"] for r in rows if not r["good"])
    return (f"the quantity rule alone rejects {good} of {sum(r['good'] for r in rows)} good and "
            f"{wrong} of {sum(not r['good'] for r in rows)} wrong")


def sweep(rows: list[dict], what: str, current: tuple[float, float], cheaper_error: str | None = None) -> None:
    """Fit the thresholds on the fitted sets; report them on those and on the held-out set.

    The fewest errors of both kinds together (Youden's J) decides. With `cheaper_error`
    ("through": a wrong one let through costs less than a good one rejected), the pair making
    the fewest of the costlier error among those within TOLERANCE of the fewest is preferred:
    the signals separate good from wrong only roughly, so many pairs are about as good.
    """
    fit = [r for r in rows if SETS[r["set"]][2]]
    held = [r for r in rows if not SETS[r["set"]][2]]
    counts = lambda rs: f"{sum(r['good'] for r in rs)} good, {sum(not r['good'] for r in rs)} wrong"  # noqa: E731
    print(f"\n{what}\nfitted on {counts(fit)}; held out ({', '.join(n for n, v in SETS.items() if not v[2])}): {counts(held)}")
    grid = {(s, c): rates(fit, s, c) for s in SIMILARITIES for c in COVERAGES}
    fewest = min(sum(errors) for errors in grid.values())
    near = [pair for pair, errors in grid.items() if sum(errors) <= fewest + TOLERANCE]
    youden = min(grid, key=lambda pair: sum(grid[pair]))
    chosen = youden
    if cheaper_error:
        costlier = 0 if cheaper_error == "through" else 1
        chosen = min(near, key=lambda pair: (grid[pair][costlier], grid[pair][1 - costlier]))
    print("| thresholds (similarity, coverage) | fitted: good rejected | wrong let through | held out: good rejected | wrong let through |")
    print("|---|---|---|---|---|")
    for label, pair in (("fewest errors", youden), ("chosen", chosen), ("in use", current)):
        (fr, ft), (hr, ht) = rates(fit, *pair), rates(held, *pair)
        print(f"| {label}: ≥ {pair[0]:.2f}, ≥ {pair[1]:.2f} | {fr:.1%} | {ft:.1%} | {hr:.1%} | {ht:.1%} |")
    for name in SETS:
        part = [r for r in rows if r["set"] == name]
        if part:
            rejected, through = rates(part, *chosen)
            print(f"  chosen, {name}: good rejected {rejected:.1%}, wrong let through {through:.1%} ({counts(part)}); "
                  + quantity_rule(part))


def quote_lengths(homes: dict[Path, Path]) -> None:
    """How often a quote holds the whole labelled fact, by its length in sentences and the
    passages it reads, and how often those passages hold it at all."""
    held: Counter = Counter()
    total = 0
    for name, (path, docs, _) in SETS.items():
        if homes.get(docs) is None:
            continue
        services = Desk(load_settings(environ={"FRONTDESK_HOME": str(homes[docs])}))
        assistant = services.assistant
        for item in in_scope(path):
            if not item.answerable:
                continue
            passages, _, vector, best = assistant.retrieve(item.question, services.settings.general.top_k)
            if not passages or not services.router.decide_many([item.question], [best], vectors=vector)[0].answerable:
                continue
            used = assistant.reading.local_passages(passages)
            quoted_from = assistant.reading.quote_passages(passages, used)
            total += 1
            # The ceilings: what the draft and the quote read at all (neither can hold more).
            for reader, read in (("draft", used), ("quote", quoted_from)):
                held[reader] += states_facts(item, "\n".join(p.text for p in read)) and \
                    bool(set(item.files) & {p.file for p in read})
            for length in (3, 5, 8):
                text = extractive_quote(item.question, quoted_from, services.embedder, length).text
                held[length] += states_facts(item, text) and \
                    bool(set(item.files) & cited_files(text, [p.to_json() for p in quoted_from]))
            narrow = extractive_quote(item.question, used, services.embedder).text
            held["3 passages"] += states_facts(item, narrow) and \
                bool(set(item.files) & cited_files(narrow, [p.to_json() for p in used]))
    print("\nQuotes holding the whole labelled fact (answerable questions past the floor, all sets): "
          + ", ".join(f"{n} sentences {held[n]}/{total}" for n in (3, 5, 8)) + f" (in use: {QUOTE_SENTENCES}) from "
          f"{QUOTE_PASSAGES} passages; {QUOTE_SENTENCES} sentences from the draft's {LOCAL_PASSAGES}: {held['3 passages']}/{total}. "
          f"The {LOCAL_PASSAGES} passages the draft reads hold it for {held['draft']}/{total}, "
          f"the {QUOTE_PASSAGES} the quote reads for {held['quote']}/{total}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", type=Path, help="data dir with railway-docs ingested (skipped when missing)")
    parser.add_argument("--home-knowledge", type=Path, help="data dir with knowledge/ ingested")
    parser.add_argument("--dump", type=Path, help="write every sample as JSON lines here")
    args = parser.parse_args()

    homes = {KNOWLEDGE: args.home_knowledge, RAILWAY: args.home}
    if homes[KNOWLEDGE] is None:
        homes[KNOWLEDGE] = Path(tempfile.mkdtemp(prefix="calib-"))
        for _ in Desk(load_settings(environ={"FRONTDESK_HOME": str(homes[KNOWLEDGE])})).ingest(KNOWLEDGE):
            pass
    quotes, lines, drafts = [], [], []
    for name, (_, docs, _) in SETS.items():
        if homes[docs] is None:
            print(f"{name}: no --home given, skipped", file=sys.stderr)
            continue
        q, l, d = samples(name, homes[docs])
        quotes += q
        lines += l
        drafts += d
    if args.dump:
        with args.dump.open("w") as out:
            for row in quotes:
                out.write(json.dumps({"kind": "quote", **row}) + "\n")
            for row in lines:
                out.write(json.dumps({"kind": "lines", **row}) + "\n")
            for row in drafts:
                out.write(json.dumps({"kind": "draft", **row}) + "\n")
    quote_lengths(homes)
    # A wrong quote let through is verbatim docs that answer part of the question (or none
    # of it), never a false statement; a good one rejected is a frontier call.
    sweep(quotes, "Docs quotes (is the quote confident?)", (QUOTE_MIN_SIMILARITY, QUOTE_MIN_COVERAGE), cheaper_error="through")
    # Beneath a kept draft a quote only adds the lines the draft leaves out: good when it holds
    # any of the facts, wrong when none. A wrong one let through is cited docs beneath an
    # answer that already answers; a good one rejected leaves the draft's partial answer alone.
    sweep(lines, "Docs lines beneath a kept draft (does the quote add any of the facts?)",
          (LINES_MIN_SIMILARITY, LINES_MIN_COVERAGE), cheaper_error="through")
    # A wrong draft let through is the model's answer to another question; a good one rejected
    # still gets the docs quote before the frontier, which may be wrong too: no error is cheaper.
    sweep(drafts, "Simulated drafts (does the draft answer the question?)", (DRAFT_MIN_SIMILARITY, DRAFT_MIN_COVERAGE))


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()

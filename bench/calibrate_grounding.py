"""Calibrate the grounding check's sentence-support threshold on real docs.

The docs are the Railway help centre in ../shared/datasets/railway-docs (read in place),
loaded and chunked exactly as ingestion does. Scores are what `check_sentences` computes:
the best cosine between an answer sentence and the passage's evidence sentences.

  positives  a sampled doc sentence, lightly paraphrased the way a model restates it
             (words dropped, clauses reordered, merged with the next sentence; numbers
             kept), scored against the passage it came from
  negatives  the original sentence scored against the 5 passages from OTHER files that
             are most similar to it (hard negatives: same product, different facts)

--rule f1 (default) picks the threshold with the best F1; --rule false-accept picks the
best F1 among thresholds whose false-accept rate (negatives scoring at or above it) is at
most --max-false-accept. Both are printed. The default is F1 because the negatives are
noisy in one direction: docs restate the same fact on several pages (the hardest
negatives printed by --show are mostly such restatements), so the measured false-accept
rate is an upper bound, and the exact facts are the fact check's job anyway.

    .venv/bin/python bench/calibrate_grounding.py [--sentences 300] [--files 160] [--seed 7]
"""
from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.chunking import chunk_document  # noqa: E402
from app.core.documents import UnreadableFile, load_document  # noqa: E402
from app.core.embeddings import Embedder, Tokenizer  # noqa: E402
from app.core.extractive import word_count  # noqa: E402
from app.core.grounding import claim_sentences, evidence_sentences  # noqa: E402
from app.core.passage import Passage  # noqa: E402

DOCS = ROOT.parent / "shared" / "datasets" / "railway-docs" / "content"
HARD_NEGATIVES = 5
# A negative whose passage repeats the sentence (docs copy boilerplate across pages) is a
# true support, not a false accept: drop it rather than count it against the threshold.
DUPLICATE_COSINE = 0.97
_CODEISH = re.compile(r"[|<>{}=`]|://|\$\w")


def load_passages(files: list[Path]) -> list[Passage]:
    tokenizer = Tokenizer()
    passages = []
    for path in files:
        try:
            document = load_document(path, path.read_bytes())
        except UnreadableFile:
            continue
        relative = str(path.relative_to(DOCS))
        for chunk in chunk_document(relative, document.text, tokenizer.count_many):
            passages.append(Passage(chunk.id, chunk.text, relative, chunk.heading, 0.0, start=chunk.start, end=chunk.end))
    return passages


def sample_sentences(passages: list[Passage], count: int, rng: random.Random) -> list[tuple[str, int, str | None]]:
    """(sentence, passage index, next sentence in that passage) for prose sentences, <= 2 per file."""
    by_file: dict[str, list[tuple[str, int, str | None]]] = {}
    for index, passage in enumerate(passages):
        prose = [text for _, _, text in claim_sentences(passage.text)]
        for position, sentence in enumerate(prose):
            letters = sum(ch.isalpha() for ch in sentence)
            # Prose only: tables, code and MDX components are not what an answer sentence looks like.
            if 6 <= word_count(sentence) <= 40 and not _CODEISH.search(sentence) and letters > 0.7 * len(sentence):
                following = prose[position + 1] if position + 1 < len(prose) else None
                by_file.setdefault(passage.file, []).append((sentence, index, following))
    pool = [item for items in by_file.values() for item in rng.sample(items, min(2, len(items)))]
    return rng.sample(pool, min(count, len(pool)))


def _keep(word: str) -> bool:
    return any(ch.isdigit() for ch in word)  # numbers are facts: a paraphrase keeps them


def drop_words(sentence: str, rng: random.Random, share: float = 0.2) -> str:
    words = sentence.split()
    droppable = [i for i in range(1, len(words)) if not _keep(words[i])]
    gone = set(rng.sample(droppable, min(len(droppable), max(1, round(share * len(words))))))
    return " ".join(w for i, w in enumerate(words) if i not in gone)


def reorder(sentence: str, rng: random.Random) -> str:
    body = sentence.rstrip(".!?")
    if ", " in body:  # "To deploy, run X" -> "Run X to deploy"
        head, _, tail = body.partition(", ")
        return f"{tail[:1].upper()}{tail[1:]}, {head[:1].lower()}{head[1:]}."
    words = body.split()
    for _ in range(2):
        if len(words) > 3:
            i = rng.randrange(1, len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words) + "."


def merge(sentence: str, following: str, rng: random.Random) -> str:
    return drop_words(f"{sentence.rstrip('.!?')}, and {following[:1].lower()}{following[1:]}", rng, share=0.15)


def sweep(positives: np.ndarray, negatives: np.ndarray, max_false_accept: float):
    rows = []
    for threshold in np.round(np.arange(0.30, 0.96, 0.01), 2):
        true_accepts = int((positives >= threshold).sum())
        false_accepts = int((negatives >= threshold).sum())
        recall = true_accepts / len(positives)
        precision = true_accepts / (true_accepts + false_accepts) if true_accepts + false_accepts else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((float(threshold), precision, recall, false_accepts / len(negatives), f1))
    allowed = [row for row in rows if row[3] <= max_false_accept]
    best_f1 = max(rows, key=lambda row: row[4])
    capped = max(allowed, key=lambda row: row[4]) if allowed else rows[-1]
    return rows, best_f1, capped


def percentiles(values: np.ndarray) -> str:
    p = np.percentile(values, [5, 25, 50, 75, 95])
    return f"n={len(values):5d}  p5={p[0]:.3f} p25={p[1]:.3f} p50={p[2]:.3f} p75={p[3]:.3f} p95={p[4]:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=300, help="sampled doc sentences")
    parser.add_argument("--files", type=int, default=160, help="random subset of doc files (0 = all)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rule", choices=["f1", "false-accept"], default="f1")
    parser.add_argument("--max-false-accept", type=float, default=0.05)
    parser.add_argument("--show", type=int, default=5, help="print the N hardest negatives and weakest positives")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    started = time.perf_counter()

    files = sorted(DOCS.rglob("*.md"))
    if args.files:
        files = sorted(rng.sample(files, min(args.files, len(files))))
    passages = load_passages(files)
    samples = sample_sentences(passages, args.sentences, rng)
    print(f"{len(files)} files, {len(passages)} passages, {len(samples)} sampled sentences")

    embedder = Embedder()
    passage_vectors = embedder.embed([f"{p.heading}\n{p.text}" if p.heading else p.text for p in passages])
    sentence_vectors = embedder.embed([sentence for sentence, _, _ in samples])
    files_of = np.array([p.file for p in passages])
    similarity = sentence_vectors @ passage_vectors.T

    # Every text to score goes through one embedding cache: evidence sentences repeat a lot.
    pairs: list[tuple[str, str, int]] = []  # (kind, answer sentence, passage index)
    for (sentence, index, following), scores in zip(samples, similarity):
        scores = np.where(files_of == passages[index].file, -1.0, scores)
        for other in np.argsort(-scores, kind="stable")[:HARD_NEGATIVES]:
            pairs.append(("negative", sentence, int(other)))
        pairs.append(("identity", sentence, index))
        pairs.append(("drop", drop_words(sentence, rng), index))
        pairs.append(("reorder", reorder(sentence, rng), index))
        pairs.append(("drop+reorder", reorder(drop_words(sentence, rng), rng), index))
        if following:
            pairs.append(("merge", merge(sentence, following, rng), index))
    evidence = {i: evidence_sentences([passages[i]]) for i in {index for _, _, index in pairs}}
    texts = list(dict.fromkeys([text for _, text, _ in pairs] + [s for items in evidence.values() for s in items]))
    print(f"embedding {len(texts)} sentences ...", flush=True)
    vectors = dict(zip(texts, embedder.embed(texts)))

    scores: dict[str, list[float]] = {}
    examples: list[tuple[str, float, str, str]] = []  # (kind, score, answer sentence, best evidence)
    duplicates = 0
    for kind, text, index in pairs:
        if not evidence[index]:
            continue
        score, best = max((float(vectors[text] @ vectors[e]), e) for e in evidence[index])
        if kind == "negative" and score >= DUPLICATE_COSINE:
            duplicates += 1
            continue
        scores.setdefault(kind, []).append(score)
        examples.append((kind, score, text, best))

    print(f"\ncosine of the best evidence sentence (duplicated-across-files negatives dropped: {duplicates})")
    for kind, values in scores.items():
        print(f"  {kind:13s} {percentiles(np.array(values))}")
    positives = np.array([v for kind in ("drop", "reorder", "drop+reorder", "merge") for v in scores.get(kind, [])])
    negatives = np.array(scores["negative"])
    rows, best_f1, capped = sweep(positives, negatives, args.max_false_accept)
    choice = best_f1 if args.rule == "f1" else capped

    print(f"\npositives: {len(positives)} paraphrases; negatives: {len(negatives)} hard negatives "
          "(identity pairs are shown above but not counted: they score 1.0 by construction)")
    print(f"{'threshold':>9} {'precision':>9} {'recall':>7} {'false-acc':>9} {'F1':>6}")
    for row in rows:
        if round(row[0] * 100) % 5 == 0 or row in (best_f1, capped):
            marks = [label for label, r in (("best F1", best_f1), (f"best F1 at false-accept <= {args.max_false_accept:.0%}", capped)) if r == row]
            mark = f"  <- {', '.join(marks)}" if marks else ""
            print(f"{row[0]:9.2f} {row[1]:9.3f} {row[2]:7.3f} {row[3]:9.3f} {row[4]:6.3f}{mark}")
    if args.show:
        negatives_first = sorted((e for e in examples if e[0] == "negative"), key=lambda e: -e[1])[:args.show]
        positives_last = sorted((e for e in examples if e[0] not in ("negative", "identity")), key=lambda e: e[1])[:args.show]
        for title, rows_ in (("hardest negatives", negatives_first), ("weakest positives", positives_last)):
            print(f"\n{title}:")
            for kind, score, text, best in rows_:
                print(f"  {score:.3f} {kind:12s} {text[:110]!r}\n{'':20s}vs {best[:110]!r}")
    print()
    for label, row in (("best F1", best_f1), (f"best F1 at false-accept <= {args.max_false_accept:.0%}", capped)):
        print(f"{label}: threshold {row[0]:.2f}, precision {row[1]:.3f}, recall {row[2]:.3f}, "
              f"false-accept {row[3]:.3f}, F1 {row[4]:.3f}")
    print(f"chosen (--rule {args.rule}): {choice[0]:.2f}")
    print("accepted at the chosen threshold: " + ", ".join(
        f"{kind} {np.mean(np.array(values) >= choice[0]):.1%}" for kind, values in scores.items()))
    print(f"took {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

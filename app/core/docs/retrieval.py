"""Question -> its vector and ranked passages: the one retrieval path (search, route --docs
and the pipeline all come through here).

Hybrid ranking, in one embedding call, one Chroma query and one keyword lookup per batch:

- dense candidates: the CANDIDATES chunks nearest the question's vector (cosine);
- keyword candidates: the CANDIDATES best bm25 matches (`keyword.KeywordIndex`), which find
  the exact terms vectors blur (an env var, a CLI flag, an error message);
- each candidate scores cosine + KEYWORD_WEIGHT × its bm25 relative to the question's best
  (weighted score fusion, as GPT4All's LocalDocs does); a keyword-only candidate, which
  Chroma didn't rank, counts with the lowest dense candidate's cosine, the most it can have;
- a page with a second strong candidate gets PAGE_WEIGHT × that score added to each of its
  candidates: several passages of one page matching is evidence the page is the one;
- at most MAX_PER_FILE passages of one page come before other pages' passages (the rest
  follow in order): of the usual five, one place always goes to a second page, in case the
  first is a long guide that mentions the topic in every section rather than the page that
  answers it. A tighter cap found more right pages but showed fewer of the facts asked for.

The candidates are ranked from ids alone (Chroma's cosine; each chunk's page from the keyword
index), and only the k passages returned are read, from the keyword index when it mirrors a
settled store (it holds their text, offsets and vectors): the hybrid step adds a few
milliseconds to a search, most of it the bm25 lookup.

Only the order is fused. Every passage's `score` stays its cosine similarity to the question,
the number the router's thresholds and the relevance checks were calibrated on (a
keyword-only passage gets its exact cosine from its stored vector). `Found.best_scores` is
the best cosine among the dense candidates, what "how relevant is the best passage" meant
before fusion: the first passage of the fused order may score lower than that.

A passage whose last line is a numbered step, followed in its section by a chunk that
starts with the next step, comes back with that chunk appended: a procedure the chunker
cut comes back whole (the pipeline adds the steps before a passage that opens mid-way).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace

import numpy as np

from app.core.docs.embeddings import Embedder
from app.core.docs.keyword import Hit, KeywordIndex
from app.core.docs.store import Store
from app.core.passage import Passage

# Measured with bench/retrieval.py on the Railway and sample question sets (see its docstring).
CANDIDATES = 30  # per side; more dense candidates cost Chroma almost nothing
KEYWORD_WEIGHT = 0.15  # bm25 ÷ the question's best bm25, on the cosine scale
PAGE_WEIGHT = 0.1  # × the page's second-best candidate score
MAX_PER_FILE = 4
_STEP = re.compile(r"^\s*(\d+)[.)]\s")


@dataclass(frozen=True)
class Found:
    vectors: np.ndarray  # one row per question, for the router to reuse (it embeds nothing twice)
    passages: list[list[Passage]]  # per question, best first
    best_scores: list[float]  # per question: the best cosine similarity of any passage (0 if none)


class Retriever:
    def __init__(self, store: Store, embedder: Embedder, top_k: int = 5, *, hybrid: bool = True, neighbours: bool = True):
        """`hybrid=False`: Chroma's dense ranking alone; `neighbours=False`: procedures are not completed."""
        self.store = store
        self.embedder = embedder
        self.top_k = top_k
        self.hybrid = hybrid
        self.neighbours = neighbours
        # The keyword index also knows where each chunk sits in its file (for `neighbours`).
        self.keywords = KeywordIndex(store) if hybrid or neighbours else None

    def find(self, questions: list[str], k: int | None = None) -> Found:
        k = k or self.top_k
        if not questions:
            return Found(self.embedder.embed([]), [], [])
        # Full-width and other compatibility forms ("ｒｅｓｅｔ") read as the words they are.
        questions = [unicodedata.normalize("NFKC", q) for q in questions]
        if not self.hybrid:
            vectors = self.embedder.embed(questions)
            passages = self.store.query(vectors, k)
            best = [hits[0].score if hits else 0.0 for hits in passages]
            if self.neighbours:
                self.keywords.sync()
        else:
            vectors = self.embedder.embed(questions)
            try:
                passages, best = self._hybrid(questions, vectors, k)
            except Exception as error:
                # Another process's ingest can leave Chroma's index listing chunks this process
                # can't read yet ("Error finding id") for as long as that ingest writes: answer
                # from the dense ranking alone meanwhile rather than fail the question.
                if "Error finding id" not in str(error):
                    raise
                passages = self.store.query(vectors, k)
                return Found(vectors, passages, [hits[0].score if hits else 0.0 for hits in passages])
        if self.neighbours:
            passages = self._complete_procedures(passages)
        return Found(vectors, passages, best)

    def _hybrid(self, questions: list[str], vectors: np.ndarray, k: int) -> tuple[list[list[Passage]], list[float]]:
        keyword = self.keywords.search_many(questions, CANDIDATES)  # syncs the index with the store first
        nearest = self.store.nearest(vectors, max(k, CANDIDATES))
        pages = self.keywords.pages({chunk_id for hits in nearest for chunk_id, _ in hits})
        orders = [_fused_order(n, h, pages)[:k] for n, h in zip(nearest, keyword)]
        return self._passages(orders, nearest, vectors), [hits[0][1] if hits else 0.0 for hits in nearest]

    def search(self, question: str, k: int | None = None) -> list[Passage]:
        return self.find([question], k).passages[0]

    def search_many(self, questions: list[str], k: int | None = None) -> list[list[Passage]]:
        return self.find(questions, k).passages

    def _passages(self, orders: list[list[str]], nearest: list[list[tuple[str, float]]], vectors: np.ndarray) -> list[list[Passage]]:
        """The fused orders as passages: from the keyword index when it mirrors a settled store
        (it holds their text, offsets and vectors), else from the store, in one call."""
        wanted = sorted({i for order in orders for i in order})
        found = self.keywords.passages(wanted) if self.keywords.exact else {}
        missing = [i for i in wanted if i not in found]
        found.update((p.id, (p, v)) for p, v in self.store.get_with_vectors(missing))
        results = []
        for order, hits, vector in zip(orders, nearest, vectors):
            cosine = dict(hits)
            ranked = []
            for chunk_id in (i for i in order if i in found):  # else: deleted a moment ago
                passage, stored = found[chunk_id]
                # Chroma's own cosine when it ranked the chunk; else the same from the stored vector
                # (vectors are L2-normalised: the dot product is the cosine).
                score = cosine[chunk_id] if chunk_id in cosine else float(np.dot(stored, vector))
                ranked.append(replace(passage, score=score))
            results.append(ranked)
        return results

    def _complete_procedures(self, results: list[list[Passage]]) -> list[list[Passage]]:
        cut = {p.id: step for hits in results for p in hits if (step := _ends_with_step(p.text)) is not None}
        if not cut or not self.keywords.exact:  # mid-write, the index may not know where chunks sit
            return results
        following = self.keywords.following(sorted(cut))
        completed = {}
        for passage in (p for hits in results for p in hits if p.id in following):
            after = following[passage.id]
            if after.heading == passage.heading and _first_step(after.text) == cut[passage.id] + 1:
                completed[passage.id] = replace(passage, text=passage.text + "\n" + after.text, end=after.end)
        return [[completed.get(p.id, p) for p in hits] for hits in results]


def _fused_order(dense: list[tuple[str, float]], keyword: list[Hit], pages: dict[str, str]) -> list[str]:
    """Chunk ids of one question's candidates, best first (see the module doc). `dense`: (id,
    cosine) pairs, best first; `pages`: chunk id -> page, for the dense ones."""
    floor = dense[-1][1] if dense else 0.0
    best_bm25 = max((h.score for h in keyword), default=0.0) or 1.0
    score = dict(dense)
    page = {chunk_id: pages.get(chunk_id, chunk_id) for chunk_id, _ in dense}  # unknown: a page of its own
    for hit in keyword:
        score[hit.id] = score.get(hit.id, floor) + KEYWORD_WEIGHT * hit.score / best_bm25
        page[hit.id] = hit.page
    by_page: dict[str, list[float]] = {}
    for chunk_id, value in score.items():
        by_page.setdefault(page[chunk_id], []).append(value)
    second = {p: sorted(values)[-2] if len(values) > 1 else 0.0 for p, values in by_page.items()}
    # sorted() is stable: equal scores keep Chroma's order, then the keyword order.
    ranked = sorted(score, key=lambda i: score[i] + PAGE_WEIGHT * second[page[i]], reverse=True)
    first, rest, taken = [], [], {}
    for chunk_id in ranked:
        taken[page[chunk_id]] = taken.get(page[chunk_id], 0) + 1
        (first if taken[page[chunk_id]] <= MAX_PER_FILE else rest).append(chunk_id)
    return first + rest


def _ends_with_step(text: str) -> int | None:
    """The number of the step a passage ends with ("3. Click Save", maybe with indented lines
    of its own after it), if it ends with one."""
    outer = [line for line in text.splitlines() if line.strip() and not line[0].isspace()]
    match = _STEP.match(outer[-1]) if outer else None
    return int(match.group(1)) if match else None


def _first_step(text: str) -> int | None:
    match = _STEP.match(text.lstrip("\n"))
    return int(match.group(1)) if match else None

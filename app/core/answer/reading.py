"""Which passages each writer of a local-routed answer reads, and the docs quote from them.

The local model reads the first prompts.LOCAL_PASSAGES retrieved passages (its time to first
token grows with every one); the docs quote, which costs no model time, reads further, up to
extractive.QUOTE_PASSAGES. A passage that opens mid-procedure ("4. Click …") is read from
step 1, so neither a draft nor a quote can start at step 4 for want of the steps before it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from app.core.answer.extractive import QUOTE_PASSAGES, Quote, extractive_quote, opens_mid_procedure
from app.core.answer.prompts import LOCAL_PASSAGES
from app.core.passage import Passage
from app.core.trust.relevance import (LINES_MIN_COVERAGE, LINES_MIN_SIMILARITY, QUOTE_MIN_COVERAGE, QUOTE_MIN_SIMILARITY,
                                      Relevance, quote_relevance)

if TYPE_CHECKING:  # both pull in heavy libraries (torch, chromadb); only their types are needed here
    from app.core.docs.embeddings import Embedder
    from app.core.docs.store import Store


class Reading:
    def __init__(self, store: Store, embedder: Embedder):
        self.store = store
        self.embedder = embedder

    def local_passages(self, passages: list[Passage]) -> list[Passage]:
        """The passages the local model reads: the first LOCAL_PASSAGES, each from step 1 of its
        procedure (a draft can't copy what it isn't shown, nor a quote start at step 4)."""
        return [self.with_procedure_start(p) for p in passages[:LOCAL_PASSAGES]]

    def quote_passages(self, passages: list[Passage], used: list[Passage]) -> list[Passage]:
        """The passages a docs quote reads: `used` (what the local draft read, so its [n] marks
        keep their numbers), then the next retrieved ones up to QUOTE_PASSAGES."""
        return used + [self.with_procedure_start(p) for p in passages[len(used):QUOTE_PASSAGES]]

    def docs_quote(self, question: str, passages: list[Passage]) -> tuple[Quote, Relevance]:
        """The docs quote for a question and whether it is confident enough to be the answer."""
        return self.quote_from(question, self.quote_passages(passages, self.local_passages(passages)))

    def quote_from(self, question: str, quoted_from: list[Passage], as_lines: bool = False) -> tuple[Quote, Relevance]:
        """`docs_quote` from passages already chosen (`quote_passages`); with `as_lines`, judged as
        lines beneath a kept draft (a gate of its own: see relevance.LINES_MIN_SIMILARITY)."""
        quote = replace(extractive_quote(question, quoted_from, self.embedder), passages=tuple(quoted_from))
        quoted = [quoted_from[n - 1] for n in quote.numbers]
        thresholds = (LINES_MIN_SIMILARITY, LINES_MIN_COVERAGE) if as_lines else (QUOTE_MIN_SIMILARITY, QUOTE_MIN_COVERAGE)
        return quote, quote_relevance(question, quote.best_score, quote.sentences_text, quoted, *thresholds)

    def with_procedure_start(self, passage: Passage) -> Passage:
        """A passage that opens mid-procedure ("4. Click …") gets the steps before it from the
        previous chunk of its file, so a quoted answer can start at step 1."""
        if not opens_mid_procedure(passage.text):
            return passage
        previous = self.store.preceding(passage)
        if previous is None or previous.heading != passage.heading:
            return passage
        return replace(passage, text=previous.text + "\n" + passage.text, start=previous.start)

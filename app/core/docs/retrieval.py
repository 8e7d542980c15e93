"""Question -> its vector and ranked passages: the one retrieval path (search, route --docs
and the pipeline all come through here). Thin on purpose: its latency is embed + one Chroma query."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np

from app.core.docs.embeddings import Embedder
from app.core.docs.store import Store
from app.core.passage import Passage


@dataclass(frozen=True)
class Found:
    vectors: np.ndarray  # one row per question, for the router to reuse (it embeds nothing twice)
    passages: list[list[Passage]]  # per question, best first


class Retriever:
    def __init__(self, store: Store, embedder: Embedder, top_k: int = 5):
        self.store = store
        self.embedder = embedder
        self.top_k = top_k

    def find(self, questions: list[str], k: int | None = None) -> Found:
        """One embedding call and one Chroma query for a whole batch of questions."""
        if not questions:
            return Found(self.embedder.embed([]), [])
        # Full-width and other compatibility forms ("ｒｅｓｅｔ") read as the words they are.
        vectors = self.embedder.embed([unicodedata.normalize("NFKC", q) for q in questions])
        return Found(vectors, self.store.query(vectors, k or self.top_k))

    def search(self, question: str, k: int | None = None) -> list[Passage]:
        return self.find([question], k).passages[0]

    def search_many(self, questions: list[str], k: int | None = None) -> list[list[Passage]]:
        return self.find(questions, k).passages

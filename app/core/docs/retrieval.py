"""Question -> ranked passages. Thin on purpose: its latency is embed + one Chroma query."""
from __future__ import annotations

from app.core.docs.embeddings import Embedder
from app.core.passage import Passage
from app.core.docs.store import Store


class Retriever:
    def __init__(self, store: Store, embedder: Embedder, top_k: int = 5):
        self.store = store
        self.embedder = embedder
        self.top_k = top_k

    def search(self, question: str, k: int | None = None) -> list[Passage]:
        return self.search_many([question], k)[0]

    def search_many(self, questions: list[str], k: int | None = None) -> list[list[Passage]]:
        """One embedding call and one Chroma query for a whole batch of questions."""
        if not questions:
            return []
        return self.store.query(self.embedder.embed(questions), k or self.top_k)

"""The one factory the CLI, the TUI and the tests use to build the core's services.

Everything heavy (torch, Chroma, llama.cpp) is built on first use, so constructing
`Services` is instant and a front end can show its first frame before any model loads.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Iterator

from app.core.docs.embeddings import Embedder, Tokenizer
from app.core.docs.ingest import IngestEvent, ingest_folder
from app.core.docs.retrieval import Retriever
from app.core.docs.store import Store
from app.core.settings import Settings


class Services:
    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def store(self) -> Store:
        return Store(self.settings)

    @cached_property
    def embedder(self) -> Embedder:
        return Embedder(max_seq_length=self.settings["chunk_tokens"], batch_size=self.settings["embed_batch"])

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer()

    @cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.store, self.embedder, self.settings["top_k"])

    @cached_property
    def router(self):
        from app.core.answer.router import Router

        return Router.from_settings(self.settings, self.embedder)

    @cached_property
    def local(self):
        from app.core.providers.local import LocalProvider

        return LocalProvider(self.settings)

    @cached_property
    def frontier(self):
        from app.core.providers.anthropic import AnthropicProvider

        return AnthropicProvider(self.settings)

    @cached_property
    def ledger(self):
        from app.core.ledger.turns import Ledger

        return Ledger(self.settings.ledger_path)

    @cached_property
    def assistant(self):
        from app.core.answer.pipeline import Assistant

        return Assistant(self.settings, self.store, self.embedder, self.router, self.local, self.frontier, self.ledger)

    def warm_up(self) -> None:
        """Load the embedder, the store and the local model now (a front end calls this in the background).

        The local model loads in its worker process while this one loads the embedder.
        """
        self.local.start()
        self.embedder.load()
        self.store.count()
        self.router.decide("warm up")
        self.local.load()

    def ingest(self, root: Path | None = None) -> Iterator[IngestEvent]:
        return ingest_folder(
            root or self.settings.docs, self.store, self.embedder, self.tokenizer,
            chunk_tokens=self.settings["chunk_tokens"], max_file_bytes=int(self.settings["max_file_mb"] * 2**20),
        )

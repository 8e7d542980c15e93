"""The one factory the CLI, the TUI and the tests use to build the core's services.

Everything heavy (torch, Chroma, llama.cpp) is built on first use, so constructing
`Services` is instant and a front end can show its first frame before any model loads.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Iterator

from app.core.embeddings import Embedder, Tokenizer
from app.core.ingest import IngestEvent, ingest_folder
from app.core.retrieval import Retriever
from app.core.store import Store
from app.settings import Settings


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

    def ingest(self, root: Path | None = None) -> Iterator[IngestEvent]:
        return ingest_folder(
            root or self.settings.docs, self.store, self.embedder, self.tokenizer,
            chunk_tokens=self.settings["chunk_tokens"], max_file_bytes=int(self.settings["max_file_mb"] * 2**20),
        )

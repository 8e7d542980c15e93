"""Messages that workers post to the UI thread.

Workers never touch widgets: each one iterates a core generator, turns every core event
into one of these messages and posts it; only the handlers update the screen. The core's
event types are imported inside the workers, so this module (and the first frame) stays
free of the core's heavy imports.
"""
from __future__ import annotations

from typing import Any

from textual.message import Message


class Failed(Message):
    """A worker hit an error. Bubbles to the app, which shows it as a notification."""

    def __init__(self, title: str, fix: str, context: str = "") -> None:
        super().__init__()
        self.title, self.fix, self.context = title, fix, context


# --- warm-up -------------------------------------------------------------------------------

class ModelsReady(Message):
    """The embedder, store and local model are loaded (or failed: see `problem`)."""

    def __init__(self, chunks: int | None, local_model: str, problem: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.chunks, self.local_model, self.problem = chunks, local_model, problem


# --- answering -----------------------------------------------------------------------------

class AnswerMessage(Message):
    """Base: every answer message names the view (one turn on screen) it belongs to."""

    def __init__(self, view: Any) -> None:
        super().__init__()
        self.view = view


class PassagesFound(AnswerMessage):
    def __init__(self, view: Any, count: int, best_score: float) -> None:
        super().__init__(view)
        self.count, self.best_score = count, best_score


class RouteChosen(AnswerMessage):
    def __init__(self, view: Any, route: str, reason: str) -> None:
        super().__init__(view)
        self.route, self.reason = route, reason


class DraftStarted(AnswerMessage):
    def __init__(self, view: Any, model: str, kind: str) -> None:
        super().__init__(view)
        self.model, self.kind = model, kind


class TokenArrived(AnswerMessage):
    def __init__(self, view: Any, text: str) -> None:
        super().__init__(view)
        self.text = text


class DraftWithdrawn(AnswerMessage):
    """`streamed` is False when the model failed before its first token: nothing to take back."""

    def __init__(self, view: Any, reason: str, streamed: bool = True) -> None:
        super().__init__(view)
        self.reason, self.streamed = reason, streamed


class NoticeShown(AnswerMessage):
    """`kind` is the core Notice's: frontier-unavailable, frontier-failed, local-only, extractive, info."""

    def __init__(self, view: Any, text: str, kind: str = "info") -> None:
        super().__init__(view)
        self.text, self.kind = text, kind


class AnswerFinished(AnswerMessage):
    """The pipeline's final event: `turn` is the row the ledger stored (None if the worker failed)."""

    def __init__(self, view: Any, turn: Any | None) -> None:
        super().__init__(view)
        self.turn = turn


# --- loading docs --------------------------------------------------------------------------

class IngestBegan(Message):
    def __init__(self, root: str, total_files: int) -> None:
        super().__init__()
        self.root, self.total_files = root, total_files


class FileLoaded(Message):
    def __init__(self, file: str, status: str, chunks: int, reason: str) -> None:
        super().__init__()
        self.file, self.status, self.chunks, self.reason = file, status, chunks, reason


class IngestEnded(Message):
    """`summary` is the core's IngestSummary as JSON, or None when the ingest failed."""

    def __init__(self, summary: dict | None, problem: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.summary, self.problem = summary, problem


class StoreCounted(Message):
    """Settings screen: what the store holds (counted off the UI thread: Chroma is slow to open)."""

    def __init__(self, chunks: int | None, roots: dict[str, int], local_model: str, local_path: str,
                 problem: str = "") -> None:
        super().__init__()
        self.chunks, self.roots, self.local_model, self.local_path, self.problem = chunks, roots, local_model, local_path, problem

"""Messages that workers post to the UI thread.

Workers never touch widgets: each one iterates a core generator and posts every core event
wrapped in one of these messages; only the handlers (on the UI thread) update the screen,
each dispatching the core event with the core's own `dispatch`.
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


class PipelineEvent(AnswerMessage):
    """One event of the core's pipeline (Retrieved … Answered), for the chat to dispatch."""

    def __init__(self, view: Any, event: Any) -> None:
        super().__init__(view)
        self.event = event


class AnswerAbandoned(AnswerMessage):
    """The worker itself failed before the pipeline's Answered: no turn to show."""


class BudgetChecked(Message):
    """Spend against each frontier cap that is set (`BudgetUse`s), after an answer."""

    def __init__(self, budget: list) -> None:
        super().__init__()
        self.budget = budget


class HandedOver(Message):
    """The chat handed a turn to a human: `turn` as the ledger stores it now (its ticket open)."""

    def __init__(self, turn: Any) -> None:
        super().__init__()
        self.turn = turn


class IngestEvent(Message):
    """One event of the core's folder sync (IngestStarted, FileIngested, IngestFinished)."""

    def __init__(self, event: Any) -> None:
        super().__init__()
        self.event = event


class IngestFailed(Message):
    def __init__(self, title: str, fix: str) -> None:
        super().__init__()
        self.title, self.fix = title, fix


class StoreCounted(Message):
    """Settings screen: what the store holds (counted off the UI thread: Chroma is slow to open)."""

    def __init__(self, chunks: int | None, roots: dict[str, int], local_model: str, local_path: str,
                 problem: str = "") -> None:
        super().__init__()
        self.chunks, self.roots, self.local_model, self.local_path, self.problem = chunks, roots, local_model, local_path, problem

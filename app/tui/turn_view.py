"""One question and its answer in the conversation: progress, streamed draft, final answer, sources."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from app.tui.format import answer_content, source_label, turn_meta


class SourceList(OptionList):
    """The cited passages of one answer; choosing one opens its text."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sources: list[dict] = []

    def show(self, sources: list[dict]) -> None:
        self.sources = list(sources)
        self.clear_options()
        self.add_options(Option(Content(source_label(n, s))) for n, s in enumerate(self.sources, 1))
        self.display = bool(self.sources)


class TurnView(Vertical):
    """Renders the pipeline's events for one question as they arrive, then the recorded turn.

    State lives in attributes and is drawn by `_draw_*`; a method called before the widget
    has composed (a fast worker can beat the mount) only records state, which `on_mount` draws.
    """

    def __init__(self, question: str, turn: Any | None = None, progress: str = "") -> None:
        super().__init__(classes="turn")
        self.question = question
        self.turn = turn
        self.progress = progress
        self.draft = ""
        self.notes: list[tuple[str, str]] = []  # (text, style)
        self.token_updates = 0  # how many streamed tokens reached the screen (tests read it)
        self._composed = False

    def compose(self) -> ComposeResult:
        yield Static(Content.assemble(("You ", "bold $accent"), self.question), classes="question")
        yield Static("", classes="progress")
        yield Static("", classes="answer")
        yield Static("", classes="notes")
        yield Static("", classes="meta")
        yield SourceList(classes="sources")

    def on_mount(self) -> None:
        self._composed = True
        self._draw_progress()
        self._draw_answer()
        self._draw_notes()
        self._draw_turn()

    @property
    def finished(self) -> bool:
        return self.turn is not None

    # --- while the pipeline runs ----------------------------------------------------------

    def show_progress(self, text: str) -> None:
        self.progress = text
        self._draw_progress()

    def begin_draft(self, model: str, kind: str) -> None:
        self.draft = ""
        where = "Claude" if kind == "frontier" else "local model"
        self.show_progress(f"Drafting with the {where} {model}… (Esc stops)")

    def add_token(self, text: str) -> None:
        self.draft += text
        self.token_updates += 1
        self._draw_answer()

    def withdraw_draft(self, reason: str) -> None:
        self.draft = ""
        self._draw_answer()
        self.add_note(f"Draft withdrawn: {reason}", "$warning")

    def add_note(self, text: str, style: str = "$text-muted") -> None:
        self.notes.append((text, style))
        self._draw_notes()

    def finish(self, turn: Any | None) -> None:
        """Show the turn as recorded (its answer may differ from the streamed draft)."""
        self.progress = ""
        self._draw_progress()
        if turn is None:  # the worker itself failed; the notification says why
            self.add_note("No answer: see the notification for what went wrong.", "$error")
            return
        self.turn = turn
        if turn.error and not any(turn.error in text for text, _ in self.notes):
            self.notes.append((turn.error, "$error" if turn.outcome == "failed" else "$warning"))
            self._draw_notes()
        self._draw_answer()
        self._draw_turn()

    # --- drawing ---------------------------------------------------------------------------

    def _draw_progress(self) -> None:
        if self._composed:
            progress = self.query_one(".progress", Static)
            progress.update(Content.styled(self.progress, "$text-muted italic"))
            progress.display = bool(self.progress)

    def _draw_answer(self) -> None:
        if not self._composed:
            return
        answer = self.query_one(".answer", Static)
        if self.turn is not None and self.turn.outcome == "stopped":
            # What streamed before the stop is an unchecked partial draft: it stays dim.
            answer.update(Content.assemble((self.turn.answer, "dim"), ("  [stopped]", "$warning")))
            answer.display = bool(self.turn.answer)
        elif self.turn is not None:
            answer.update(answer_content(self.turn.answer))
            answer.display = bool(self.turn.answer)
        else:
            # Dim: a draft is not an answer until the grounding check has passed.
            answer.update(Content.styled(self.draft, "dim"))
            answer.display = bool(self.draft)

    def _draw_notes(self) -> None:
        if self._composed:
            notes = self.query_one(".notes", Static)
            notes.update(Content("\n").join(Content.styled("• " + text, style) for text, style in self.notes))
            notes.display = bool(self.notes)

    def _draw_turn(self) -> None:
        if not self._composed:
            return
        meta = self.query_one(".meta", Static)
        meta.display = self.turn is not None
        if self.turn is not None:
            meta.update(turn_meta(self.turn))
            self.query_one(SourceList).show(self.turn.sources)
        else:
            self.query_one(SourceList).display = False

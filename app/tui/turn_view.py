"""One question and its answer in the conversation: progress, streamed draft, final answer, sources."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from app.tui.facts import Facts
from app.tui.format import note_key, printable, source_label, turn_meta, turn_notes
from app.tui.markdown_text import MarkdownText


# Notes that the recorded turn says again (turn_notes); any other kind of note is kept as it was.
REBUILT_FROM_TURN = {"frontier-unavailable", "frontier-failed", "local-only", "extractive", "withdrawn", "turn"}


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
        self.draft_kind = ""  # "local" or "frontier" while a draft streams
        # (text, style, kind): kind is the core Notice's kind, "withdrawn", or "tui" for the app's own
        self.notes: list[tuple[str, str, str]] = [(*n, "turn") for n in turn_notes(turn)] if turn is not None else []
        self.frontier_notice: tuple[str, str] | None = None  # (kind, text) when Claude was unavailable or failed
        self.token_updates = 0  # how many streamed tokens reached the screen (tests read it)
        self._composed = False

    def compose(self) -> ComposeResult:
        yield Static(Content.assemble(("You ", "bold $text-accent"), printable(self.question)), classes="question")
        yield Static("", classes="progress")
        yield Static("", classes="answer")  # the streaming draft (dim), or a stopped one
        yield MarkdownText(classes="final")  # the checked answer, Markdown rendered
        yield Facts(gap=1, classes="notes")  # bulleted: a wrapped note stays under its text
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
        self.draft, self.draft_kind = "", kind
        where = "Claude" if kind == "frontier" else "local model"
        self.show_progress(f"Drafting with the {where} {model}… (Esc stops)")

    def add_token(self, text: str) -> None:
        self.draft += text
        self.token_updates += 1
        self._draw_answer()

    def withdraw_draft(self, note: str, streamed: bool = True) -> None:
        """Take the streamed draft back. A model that failed before its first token left no
        draft: then only the placeholder goes, and the reason arrives as a notice."""
        had_draft = bool(self.draft.strip())
        self.draft = ""
        self._draw_answer()
        if streamed and had_draft:
            self.add_note(note, "$text-warning", "withdrawn")

    def add_note(self, text: str, style: str = "$text-muted", kind: str = "info") -> None:
        """A note under the answer; one that says what an earlier note said is not repeated."""
        if self._keep_note(text, style, kind):
            self._draw_notes()

    def _keep_note(self, text: str, style: str, kind: str) -> bool:
        if any(note_key(text) == note_key(shown) for shown, _, _ in self.notes):
            return False
        self.notes.append((text, style, kind))
        return True

    def finish(self, turn: Any | None) -> None:
        """Show the turn as recorded (its answer may differ from the streamed draft).

        The notes are rebuilt from the recorded turn, so a live answer reads exactly like the
        same turn reopened from the ledger; only the app's own notes (and notices of a kind
        the ledger row can't express) are kept from the live run.
        """
        self.progress = ""
        self._draw_progress()
        if turn is None:  # the worker itself failed; the notification says why
            self.add_note("No answer: see the notification for what went wrong.", "$text-error", "tui")
            return
        self.turn = turn
        kept = [n for n in self.notes if n[2] not in REBUILT_FROM_TURN]
        self.notes = []
        for text, style, kind in [*kept, *((*n, "turn") for n in turn_notes(turn))]:
            self._keep_note(text, style, kind)
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
        final = self.query_one(".final", MarkdownText)
        final.display = False
        if self.turn is not None and self.turn.outcome == "stopped":
            # What streamed before the stop is an unchecked partial draft: it stays dim.
            answer.update(Content.assemble((self.turn.answer, "dim"), ("  [stopped]", "$text-warning bold")))
            answer.display = bool(self.turn.answer)
        elif self.turn is not None:
            answer.display = False
            final.set_text(self.turn.answer)
            final.display = bool(self.turn.answer)
        else:
            # Dim: a draft is not an answer until the grounding check has passed.
            answer.update(Content.styled(self.draft, "dim"))
            answer.display = bool(self.draft)

    def _draw_notes(self) -> None:
        if self._composed:
            notes = self.query_one(".notes", Facts)
            notes.set_rows(("•", Content.styled(text, style)) for text, style, _ in self.notes)
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

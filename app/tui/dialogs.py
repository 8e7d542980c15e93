"""Small modal dialogs: the empty-store offer, reopening a conversation, a passage, export."""
from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from app.tui.format import clip
from app.tui.markdown_text import MarkdownText


class OfferDocsScreen(ModalScreen[str]):
    """The store is empty: offer the sample docs or a folder. Dismisses with "sample", "folder" or ""."""

    BINDINGS = [
        Binding("s", "dismiss('sample')", "Sample docs"),
        Binding("f", "dismiss('folder')", "Pick a folder"),
        Binding("escape", "dismiss('')", "Not now"),
    ]

    def __init__(self, sample_docs: Path) -> None:
        super().__init__()
        self.sample_docs = sample_docs

    def compose(self) -> ComposeResult:
        missing = "" if self.sample_docs.is_dir() else "  (not found)"
        with Vertical(classes="dialog"):
            yield Label(Content.styled("Your docs store is empty", "bold"), classes="dialog-title")
            yield Static(Content(
                "Answers come only from documents you load. Load the sample docs of a fictional company "
                f"to try Frontdesk, or pick your own folder.\n\nSample docs: {self.sample_docs}{missing}"
            ))
            with Horizontal(classes="dialog-buttons"):
                yield Button("Load sample docs (s)", id="sample", variant="primary")
                yield Button("Pick a folder (f)", id="folder")
                yield Button("Not now (Esc)", id="later")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"sample": "sample", "folder": "folder"}.get(event.button.id or "", ""))


class ConversationsScreen(ModalScreen[str]):
    """Earlier conversations from the ledger, newest first. Dismisses with a conversation id or ""."""

    BINDINGS = [Binding("escape", "dismiss('')", "Close")]

    def __init__(self, conversations: list[tuple[str, str, str, int]]) -> None:
        super().__init__()
        self.conversations = conversations

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(Content.styled("Reopen a conversation", "bold"), classes="dialog-title")
            if not self.conversations:
                yield Static("No conversations yet: ask a question first.")
            options = [
                Option(Content(f"{started[:16].replace('T', ' ')}  {count:>2} turn{'s' if count != 1 else ' '}  {clip(question, 60)}"), id=cid)
                for cid, started, question, count in self.conversations
            ]
            yield OptionList(*options, id="conversation-list")
            yield Static(Content.styled("Enter opens · Esc closes", "$text-muted"))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id or "")


class PassageScreen(ModalScreen[None]):
    """The full text of one cited passage."""

    BINDINGS = [Binding("escape", "dismiss", "Close")]

    def __init__(self, number: int, source: dict) -> None:
        super().__init__()
        self.number, self.source = number, source

    def compose(self) -> ComposeResult:
        heading = self.source.get("heading") or "(no heading)"
        with Vertical(classes="dialog wide tall", id="passage"):
            yield Label(Content.styled(f"[{self.number}] {self.source.get('file', '?')}", "bold"), classes="dialog-title")
            yield Static(Content.styled(f"§ {heading}", "$text-accent"))
            with VerticalScroll(classes="passage-text"):
                yield MarkdownText(self.source.get("text") or "(passage text not recorded)", marks=False, id="passage-text")
            yield Static(Content.styled(f"passage id {self.source.get('id', '?')} · Esc closes", "$text-muted"))


class ExportScreen(ModalScreen[str]):
    """Ask where to write the export. Dismisses with the typed path or ""."""

    BINDINGS = [Binding("escape", "dismiss('')", "Cancel")]

    def __init__(self, path: str, folder: Path, count: int, problem: str = "") -> None:
        super().__init__()
        self.path, self.folder, self.count, self.problem = path, folder, count, problem

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Content.styled(f"Export {self.count} turn(s)", "bold"), classes="dialog-title")
            yield Static(Content(f"A file name ending in .json writes JSON, anything else CSV. "
                                 f"Relative paths are under {self.folder}."))
            if self.problem:
                yield Static(Content.styled(self.problem, "$text-error"), id="export-problem")
            yield Input(self.path, id="export-path")
            yield Static(Content.styled("Enter exports · Esc cancels", "$text-muted"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

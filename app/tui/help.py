"""The help screen: every key, read from the screens' own BINDINGS so it can't drift from them."""
from __future__ import annotations

from typing import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

MOUSE = (
    "Mouse: click a source to read its passage, a column header in Logs to sort by it, "
    "a row to select it; scroll anywhere. Ctrl+P opens the command palette: every action is there too."
)


def binding_lines(app, groups: Iterable[tuple[str, list]]) -> Content:
    lines: list[Content] = []
    for title, bindings in groups:
        lines.append(Content.styled(title, "bold $text-accent"))
        for binding in bindings:
            if not isinstance(binding, Binding) or not binding.description:
                continue
            key = binding.key_display or ", ".join(app.get_key_display(Binding(k, "")) for k in binding.key.split(","))
            detail = (f"  {binding.tooltip}", "$text-muted") if binding.tooltip else ""
            lines.append(Content.assemble((f"  {key:<7}", "bold"), (f"{binding.description:<13}", "$text-accent"), detail))
        lines.append(Content(""))
    return Content("\n").join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("f1", "dismiss", "Close", show=False)]

    def __init__(self, groups: list[tuple[str, list]]) -> None:
        super().__init__()
        self.groups = groups

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide tall", id="help"):
            yield Static(Content.styled("Frontdesk keys", "bold"), classes="dialog-title")
            with VerticalScroll():
                yield Static(binding_lines(self.app, self.groups), id="help-keys")
                yield Static(Content.styled(MOUSE, "$text-muted"))
            yield Static(Content.styled("Esc closes", "$text-muted"))

"""Label/value rows in two columns: a value that wraps stays in its column, under itself.

Used by the settings screen and the turn detail, whose values (paths, reasons, lists of
folders, grounding spans) are often longer than a line at 80 columns.
"""
from __future__ import annotations

from typing import Iterable, Union

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Static

Value = Union[str, Content]


class Facts(Vertical):
    """Rows of (label, value); labels share one width, values take the rest and wrap."""

    DEFAULT_CSS = """
    Facts { height: auto; }
    Facts > .fact-row { height: auto; width: 1fr; }
    Facts .fact-label { height: auto; color: $text-muted; }
    Facts .fact-value { height: auto; width: 1fr; }
    """

    def __init__(self, rows: Iterable[tuple[str, Value]] = (), gap: int = 2, label_width: int = 0, **kwargs) -> None:
        """`label_width` lines several Facts up on one screen; by default the widest label sets it."""
        super().__init__(**kwargs)
        self.rows = list(rows)
        self.gap, self.label_width = gap, label_width

    def compose(self) -> ComposeResult:
        width = max([self.label_width, *(len(label) for label, _ in self.rows)]) + self.gap
        for label, value in self.rows:
            with Horizontal(classes="fact-row"):
                label_widget = Static(Content(label), classes="fact-label")
                label_widget.styles.width = width
                yield label_widget
                yield Static(value if isinstance(value, Content) else Content(value), classes="fact-value")

    def set_rows(self, rows: Iterable[tuple[str, Value]]) -> None:
        self.rows = list(rows)
        self.refresh(recompose=True)

    @property
    def text(self) -> str:
        """Everything shown, as plain text (tests read it)."""
        return "\n".join(f"{label}  {value.plain if isinstance(value, Content) else value}" for label, value in self.rows)


def bullets(items: Iterable[Value], **kwargs) -> Facts:
    """A bulleted list whose wrapped lines stay indented under their text."""
    return Facts((("•", item) for item in items), gap=1, **kwargs)

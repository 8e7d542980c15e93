"""Answers and passages with their Markdown rendered, and hanging indents that survive wrapping.

A light renderer (format.markdown_blocks) rather than Textual's Markdown widget: it keeps the
`⟦unverified: …⟧` marks in the warning colour and never interprets document text as markup.
Paragraphs are one Static each; a quote is a Static with a bar down its left edge; list
items are two-column rows, so a wrapped item stays indented under its text.
"""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from app.tui.facts import Facts
from app.tui.format import markdown_blocks, markdown_content


class MarkdownText(Vertical):
    DEFAULT_CSS = """
    MarkdownText { height: auto; }
    MarkdownText > Static { height: auto; }
    MarkdownText > .md-quote { border-left: outer $foreground 30%; padding: 0 0 0 1; }
    MarkdownText > .md-code { background: $boost; padding: 0 1; }
    """

    def __init__(self, text: str = "", marks: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.text, self.marks = text, marks

    def compose(self) -> ComposeResult:
        for kind, lines in markdown_blocks(self.text, self.marks):
            if kind == "item":
                yield Facts(lines, gap=1, classes="md-list")
            else:
                body = Content("\n").join(content for _, content in lines)
                yield Static(body, classes={"quote": "md-quote", "code": "md-code"}.get(kind, "md-p"))

    def set_text(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.refresh(recompose=True)

    @property
    def plain(self) -> str:
        """The rendered text without styles (tests read it)."""
        return markdown_content(self.text).plain

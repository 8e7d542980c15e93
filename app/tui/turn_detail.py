"""One turn in full: answer, sources, routing, grounding verdict, errors and what left the machine."""
from __future__ import annotations

from typing import Any, Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Header, OptionList, Static

from app.tui.dialogs import PassageScreen
from app.tui.facts import Facts, bullets
from app.tui.footer import KeyFooter
from app.tui.format import cost_versus_frontier, grounding_label, money, outcome_content, printable, seconds, who_answered
from app.tui.markdown_text import MarkdownText
from app.tui.turn_view import SourceList


def _section(title: str) -> Static:
    return Static(Content.styled(title, "bold $text-accent"), classes="section-title")


class TurnDetailScreen(Screen):
    PALETTE_NAME = "Turn detail"  # its keys are offered in the command palette as "Turn detail: …"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", tooltip="Back to the logs"),
        Binding("o", "open_in_chat", "Open in chat", tooltip="Continue this conversation in the chat"),
        Binding("ctrl+o", "sources", "Sources", tooltip="Go to the sources; Enter reads one"),
    ]

    def __init__(self, turn: Any) -> None:
        super().__init__()
        self.turn = turn

    def compose(self) -> ComposeResult:
        t = self.turn
        grounding = t.grounding or {}
        yield Header()
        with VerticalScroll(id="detail"):
            yield Static(Content.assemble(("Q ", "bold $text-accent"), printable(t.question)), classes="question")
            yield Static(Content.assemble(outcome_content(t.outcome), " · ", (who_answered(t), "bold"),
                                          " · check ", grounding_label(t)))
            yield _section("Answer")
            if t.answer:
                yield MarkdownText(t.answer, classes="answer")
            else:
                yield Static(Content.styled("(no answer)", "$text-muted"), classes="answer")
            yield _section("Routing and cost")
            yield Facts([
                ("time (UTC)", t.created_at.replace("T", " ")[:19]),
                ("conversation", t.conversation_id),
                ("route", f"{t.route} (topic: {t.topic or '—'})"),
                ("reason", t.reason or "—"),
                ("model", t.model or "—"),
                ("tokens", f"{t.input_tokens} in / {t.output_tokens} out"),
                ("cost", f"{money(t.cost_usd, 6)}  ({cost_versus_frontier(t)})"),
                ("latency", f"retrieval {seconds(t.retrieval_ms)} · first token {seconds(t.first_token_ms)} · "
                            f"total {seconds(t.total_ms)}"),
            ], id="detail-facts")
            yield _section("Grounding check")
            yield from self._grounding(grounding)
            yield _section("What the pipeline did")
            yield bullets(t.actions, id="detail-actions") if t.actions else Static("—")
            if t.error:
                yield _section("Error")
                yield Static(Content.styled(t.error, "$text-error"), id="detail-error")
            yield _section("Left the machine (sent to the frontier)")
            yield from self._egress()
            yield _section(f"Sources ({len(t.sources)}) · Enter shows a passage")
            yield SourceList(id="detail-sources")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = f"turn #{self.turn.id}"
        self.query_one(SourceList).show(self.turn.sources)

    def _grounding(self, grounding: dict) -> Iterable[Widget]:
        if "passed" not in grounding:
            yield Static(Content.styled("Not checked (no model answer to check).", "$text-muted"))
            return
        verdict = (Content.styled("passed", "$text-success bold") if grounding["passed"]
                   else Content.styled("FAILED", "$text-error bold"))
        method = f" · {grounding['method']}" if grounding.get("method") else ""
        yield Static(Content.assemble("verdict: ", verdict, (method, "$text-muted")))
        spans = []
        for span in grounding.get("unsupported") or []:
            span = span if isinstance(span, dict) else {"text": str(span)}
            reason = f"  ({span['reason']})" if span.get("reason") else ""
            spans.append(Content.assemble("unsupported ", (span.get("kind", "claim"), "$text-warning"), ": ",
                                          str(span.get("text", "")).strip(), (reason, "$text-muted")))
        if spans:
            yield bullets(spans)

    def _egress(self) -> Iterable[Widget]:
        t = self.turn
        if not t.egress_passage_ids:
            yield Static("Nothing: no passage was sent off this machine.")
            return
        files = {s["id"]: s for s in t.sources}
        yield Static(f"{len(t.egress_passage_ids)} passage(s), {t.redactions} redaction(s) of personal data:")
        lines = []
        for passage_id in t.egress_passage_ids:
            source = files.get(passage_id)
            where = f"  {source['file']} § {source.get('heading', '')}" if source else ""
            lines.append(Content.assemble((passage_id, "bold"), where))
        yield bullets(lines)

    def action_sources(self) -> None:
        sources = self.query_one(SourceList)
        if sources.sources:
            sources.focus()
            sources.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if isinstance(event.option_list, SourceList):
            self.app.push_screen(PassageScreen(event.option_index + 1, event.option_list.sources[event.option_index]))

    def action_open_in_chat(self) -> None:
        conversation_id = self.turn.conversation_id
        self.app.pop_screen()
        self.app.open_conversation(conversation_id)

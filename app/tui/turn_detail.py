"""One turn in full: answer, sources, routing, grounding verdict, errors and what left the machine."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, OptionList, Static

from app.tui.dialogs import PassageScreen
from app.tui.footer import KeyFooter
from app.tui.format import answer_content, grounding_label, money, outcome_content, seconds, who_answered
from app.tui.turn_view import SourceList


def _section(title: str) -> Static:
    return Static(Content.styled(title, "bold $accent"), classes="section-title")


def _facts(rows: list[tuple[str, str]]) -> Static:
    width = max(len(label) for label, _ in rows)
    lines = [Content.assemble((f"{label:<{width}}  ", "$text-muted"), value) for label, value in rows]
    return Static(Content("\n").join(lines), classes="facts")


class TurnDetailScreen(Screen):
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
            yield Static(Content.assemble(("Q ", "bold $accent"), t.question), classes="question")
            yield Static(Content.assemble(outcome_content(t.outcome), " · ", (who_answered(t), "bold"),
                                          " · check ", grounding_label(t)))
            yield _section("Answer")
            yield Static(answer_content(t.answer) if t.answer else Content.styled("(no answer)", "$text-muted"), classes="answer")
            yield _section("Routing and cost")
            yield _facts([
                ("time (UTC)", t.created_at.replace("T", " ")[:19]),
                ("conversation", t.conversation_id),
                ("route", f"{t.route} (topic: {t.topic or '—'})"),
                ("reason", t.reason or "—"),
                ("model", t.model or "—"),
                ("tokens", f"{t.input_tokens} in / {t.output_tokens} out"),
                ("cost", f"{money(t.cost_usd, 6)}  (all-frontier {money(t.counterfactual_cost_usd, 6)}, "
                         f"saved {money(t.counterfactual_cost_usd - t.cost_usd, 6)})"),
                ("latency", f"retrieval {seconds(t.retrieval_ms)} · first token {seconds(t.first_token_ms)} · "
                            f"total {seconds(t.total_ms)}"),
            ])
            yield _section("Grounding check")
            yield Static(self._grounding(grounding))
            yield _section("What the pipeline did")
            yield Static(Content("\n").join(Content("• " + a) for a in t.actions) if t.actions else Content("—"))
            if t.error:
                yield _section("Error")
                yield Static(Content.styled(t.error, "$error"))
            yield _section("Left the machine (sent to the frontier)")
            yield Static(self._egress())
            yield _section(f"Sources ({len(t.sources)}) · Enter shows a passage")
            yield SourceList(id="detail-sources")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = f"turn #{self.turn.id}"
        self.query_one(SourceList).show(self.turn.sources)

    def _grounding(self, grounding: dict) -> Content:
        if "passed" not in grounding:
            return Content.styled("Not checked (no model answer to check).", "$text-muted")
        verdict = Content.styled("passed", "$success bold") if grounding["passed"] else Content.styled("FAILED", "$error bold")
        spans = grounding.get("unsupported") or []
        lines = [Content.assemble("verdict: ", verdict)]
        for span in spans:
            span = span if isinstance(span, dict) else {"text": str(span)}
            reason = f"  ({span['reason']})" if span.get("reason") else ""
            lines.append(Content.assemble("• unsupported ", (span.get("kind", "claim"), "$warning"), ": ",
                                          str(span.get("text", "")).strip(), (reason, "$text-muted")))
        return Content("\n").join(lines)

    def _egress(self) -> Content:
        t = self.turn
        if not t.egress_passage_ids:
            return Content("Nothing: no passage was sent off this machine.")
        files = {s["id"]: s for s in t.sources}
        lines = [Content(f"{len(t.egress_passage_ids)} passage(s), {t.redactions} redaction(s) of personal data:")]
        for passage_id in t.egress_passage_ids:
            source = files.get(passage_id)
            where = f"  {source['file']} § {source.get('heading', '')}" if source else ""
            lines.append(Content.assemble("• ", (passage_id, "bold"), where))
        return Content("\n").join(lines)

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

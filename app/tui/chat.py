"""The chat screen: ask, watch the answer stream, read its sources, reopen earlier conversations.

Questions go into a queue. One worker answers at a time (the local model serves one stream
at once anyway), and nothing is asked before the models are loaded: a question typed
during start-up waits in the queue and is answered as soon as the app is ready.
"""
from __future__ import annotations

import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, Input, OptionList, Static

from app.core import TurnFilter, clean_input, dispatch
from app.tui import messages as msg
from app.tui.dialogs import ConversationsScreen, PassageScreen
from app.tui.footer import KeyFooter
from app.tui.format import explain
from app.tui.turn_view import SourceList, TurnView

WELCOME = (
    "Ask a customer question below and press Enter. Every answer says who wrote it and why, "
    "what it cost, and which docs it comes from.\n"
    "F3 loads docs · F4 reviews routing and cost · Ctrl+R reopens a conversation · F1 lists every key."
)


HAND_OVER_KEY = "ctrl+g"  # not Ctrl+T: that is the app-wide dark/light theme key
NO_DOCS = "No docs loaded yet: press F3 to load a folder, or load the sample docs (Ctrl+P)."
FRONTIER_KINDS = ("frontier-unavailable", "frontier-failed")
NOTICE_STYLES = {"frontier-unavailable": "$text-warning", "frontier-failed": "$text-warning", "ledger-failed": "$text-error"}


def new_conversation_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class AnswerRequest:
    question: str
    conversation_id: str
    view: TurnView
    stop: threading.Event = field(default_factory=threading.Event)


class ChatScreen(Screen):
    FOOTER_APP_KEYS = True  # the home screen: its footer shows the F-keys to every other screen
    BINDINGS = [
        Binding("escape", "stop_answer", "Stop", tooltip="Stop the streaming answer (it is logged)"),
        Binding("ctrl+n", "new_conversation", "New", tooltip="Start a new conversation"),
        Binding("ctrl+r", "reopen", "Reopen", tooltip="Reopen an earlier conversation"),
        Binding("ctrl+o", "sources", "Sources", tooltip="Sources of the last answer; Enter reads one"),
        Binding(HAND_OVER_KEY, "hand_to_human", "To a human", show=False, tooltip="Hand the last answer to a human"),
        Binding("pageup", "scroll_conversation(-1)", "Scroll up", show=False, tooltip="Scroll the conversation up"),
        Binding("pagedown", "scroll_conversation(1)", "Scroll down", show=False, tooltip="Scroll the conversation down"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id = new_conversation_id()
        self.queue: deque[AnswerRequest] = deque()
        self.active: AnswerRequest | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="conversation"):
            yield Static(Content(WELCOME), id="welcome")
        yield Static(id="status")
        yield Input(placeholder="Ask a customer question…  (Enter sends, Esc stops an answer)", id="question")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "new conversation"
        self.watch(self.app, "status_line", self._show_status)
        self.watch(self.app, "models_ready", lambda ready: self._answer_next() if ready else None)
        self.query_one("#question", Input).focus()

    def _show_status(self, text: Content) -> None:
        self.query_one("#status", Static).update(text)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_answer":
            return bool(self.active)  # shown in the footer only while an answer streams
        return True

    # --- asking ----------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        question = clean_input(event.value).strip()  # a paste can carry control characters
        if event.input.id != "question" or not question:
            return
        event.input.value = ""
        self.ask(question)

    def ask(self, question: str) -> TurnView:
        view = TurnView(question)
        self.query_one("#welcome").display = False
        self.query_one("#conversation", VerticalScroll).mount(view)
        self.queue.append(AnswerRequest(question, self.conversation_id, view))
        if self.app.chunks == 0:  # still asked (and logged); the answer can only be a handoff or a failure
            view.add_note(NO_DOCS, "$text-warning", "tui")
        if not self.app.models_ready:
            view.show_progress("Waiting for the models to load… (it will be answered when ready)")
        elif self.active:
            view.show_progress("Queued: answered after the current one.")
        self._answer_next()
        self._scroll_to_end()
        return view

    def _answer_next(self) -> None:
        if self.active or not self.queue or not self.app.models_ready:
            return
        self.active = self.queue.popleft()
        self.active.view.show_progress("Searching your docs…")
        self.refresh_bindings()
        self._answer(self.app.desk, self.active)

    @work(thread=True, group="answer", exit_on_error=False)
    def _answer(self, desk: Any, request: AnswerRequest) -> None:
        """Drive the core pipeline; each of its events reaches the UI thread as one message."""
        view, post = request.view, self.post_message
        try:
            for event in desk.ask(request.question, conversation_id=request.conversation_id, stop=request.stop):
                post(msg.PipelineEvent(view, event))
            post(msg.BudgetChecked(desk.budget()))  # the status line warns from 80% of a cap
            return
        except Exception as error:  # the pipeline catches its own; this guards the worker itself
            post(msg.Failed(*explain(error), context="answer"))
        post(msg.AnswerAbandoned(view))

    # --- pipeline events (UI thread), dispatched by the core's own helper ----------------------

    def on_pipeline_event(self, message: msg.PipelineEvent) -> None:
        dispatch(message.event, self, message.view)

    def on_retrieved(self, event: Any, view: TurnView) -> None:
        if view.is_attached:
            passages = event.passages
            found = f"Found {len(passages)} passage(s), best match {passages[0].score:.2f}." if passages else "No passages found."
            view.show_progress(found + " Choosing who answers…")

    def on_routed(self, event: Any, view: TurnView) -> None:
        if view.is_attached:
            view.show_progress(f"Route: {event.decision.route} ({event.decision.reason})")

    def on_drafting(self, event: Any, view: TurnView) -> None:
        if view.is_attached:
            view.begin_draft(event.model, event.kind)

    def on_token(self, event: Any, view: TurnView) -> None:
        if view.is_attached:
            view.add_token(event.text)
            self._scroll_to_end()

    def on_draft_withdrawn(self, event: Any, view: TurnView) -> None:
        if view.is_attached:
            view.withdraw_draft(event.note, event.streamed)

    def on_notice(self, event: Any, view: TurnView) -> None:
        if event.kind in FRONTIER_KINDS:
            view.frontier_notice = (event.kind, event.text)
        elif event.kind == "ledger-failed":  # the answer is shown, but it could not be logged
            self.app.notify(event.text, title="This turn was not logged", severity="error", timeout=15, markup=False)
        if view.is_attached:
            view.add_note(event.text, NOTICE_STYLES.get(event.kind, "$text-muted"), event.kind)

    def on_answered(self, event: Any, view: TurnView) -> None:
        self._finish(view, event.turn)

    def on_answer_abandoned(self, message: msg.AnswerAbandoned) -> None:
        self._finish(message.view, None)

    def _finish(self, view: TurnView, turn: Any | None) -> None:
        if view.is_attached:
            if self.app.chunks == 0:  # e.g. asked while the models loaded, before the store was counted
                view.add_note(NO_DOCS, "$text-warning", "tui")
            view.finish(turn)
            self._scroll_to_end()
        self.app.frontier_result(view.frontier_notice, turn)
        if self.active and self.active.view is view:
            self.active = None
            self.refresh_bindings()
        self._answer_next()

    def _scroll_to_end(self) -> None:
        # Anchored, the conversation follows content that is still being laid out (an
        # answer's notes and sources arrive after it), until the user scrolls up to read.
        self.query_one("#conversation", VerticalScroll).anchor()

    # --- actions ---------------------------------------------------------------------------

    def action_stop_answer(self) -> None:
        if self.active and not self.active.stop.is_set():
            self.active.stop.set()  # the pipeline checks it after every token
            self.active.view.show_progress("Stopping…")

    def action_scroll_conversation(self, pages: int) -> None:
        conversation = self.query_one("#conversation", VerticalScroll)
        conversation.scroll_page_down() if pages > 0 else conversation.scroll_page_up()

    def action_new_conversation(self) -> None:
        self._clear()
        self.conversation_id = new_conversation_id()
        self.sub_title = "new conversation"
        self.query_one("#question", Input).focus()

    def _clear(self) -> None:
        if self.active:
            self.active.stop.set()
        self.queue.clear()
        self.query(TurnView).remove()
        self.query_one("#welcome").display = True

    def action_reopen(self) -> None:
        try:
            conversations = self.app.desk.conversations(limit=100)
        except Exception as error:
            self.post_message(msg.Failed(*explain(error), context="ledger"))
            return
        self.app.push_screen(ConversationsScreen(conversations), self._reopen_chosen)

    def _reopen_chosen(self, conversation_id: str | None) -> None:
        if conversation_id:
            self.open_conversation(conversation_id)

    def open_conversation(self, conversation_id: str) -> None:
        """Show an earlier conversation from the ledger; new questions continue it."""
        try:
            turns = self.app.desk.turns(TurnFilter(conversation_id=conversation_id), newest_first=False)
        except Exception as error:
            self.post_message(msg.Failed(*explain(error), context="ledger"))
            return
        self._clear()
        self.conversation_id = conversation_id
        self.sub_title = f"conversation {conversation_id} · {len(turns)} earlier turn(s)"
        if turns:
            self.query_one("#welcome").display = False
            self.query_one("#conversation", VerticalScroll).mount_all(TurnView(t.question, t) for t in turns)
        self._scroll_to_end()
        self.query_one("#question", Input).focus()

    def action_sources(self) -> None:
        lists = [s for s in self.query(SourceList) if s.sources]
        if not lists:
            self.notify("No sources yet: ask a question first.")
            return
        lists[-1].focus()
        lists[-1].highlighted = 0
        lists[-1].scroll_visible()

    def action_hand_to_human(self) -> None:
        """Open a handoff ticket for the latest answer on screen (F6 lists the queue)."""
        answered = [view.turn for view in self.query(TurnView) if view.turn is not None]
        if not answered:
            self.notify("No answer to hand over yet: ask a question first.", markup=False)
            return
        if answered[-1].id is None:  # the ledger could not record it (said when it happened)
            self.notify("The last answer was not logged, so it has no ticket to open.", severity="warning", markup=False)
            return
        self._hand_over(self.app, answered[-1].id)

    @work(thread=True, group="handoff", exit_on_error=False)
    def _hand_over(self, app: Any, turn_id: int) -> None:
        try:
            self.post_message(msg.HandedOver(app.desk.set_handoff(turn_id, "open", "handed to a human from the chat")))
        except Exception as error:
            self.post_message(msg.Failed(*explain(error), context="handoff"))

    def on_handed_over(self, message: msg.HandedOver) -> None:
        self.notify(f"Handed to a human: ticket #{message.turn.id} (F6 lists the queue)", markup=False)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if isinstance(event.option_list, SourceList):
            index = event.option_index
            self.app.push_screen(PassageScreen(index + 1, event.option_list.sources[index]))

    def stop_everything(self) -> None:
        """On quit: let the running answer end at its next token so the app can exit promptly."""
        if self.active:
            self.active.stop.set()
        self.queue.clear()

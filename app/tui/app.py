"""The Frontdesk app: modes (chat, docs, logs, settings), global keys, start-up and errors.

Start-up is instant by construction: the first frame needs only Textual and the settings.
`Desk` (and with it numpy, torch, Chroma, llama.cpp) is built and warmed up in a worker
while the chat is already usable; the status line says "Loading models…" until it is done,
and a question typed meanwhile is queued by the chat screen and answered when ready.

Every worker catches its own errors and posts them; `on_failed` shows them as
notifications. Nothing a model, the API, the store or a docs folder does can end the app.
"""
from __future__ import annotations

import importlib
import threading
from typing import Any, Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.content import Content
from textual.reactive import reactive
from textual.screen import Screen

from app.tui import messages as msg
from app.tui.background import run_in_background
from app.tui.chat import HAND_OVER_KEY, ChatScreen
from app.tui.dialogs import OfferDocsScreen
from app.tui.format import explain
from app.tui.help import HelpScreen

THEMES = ("textual-dark", "textual-light")


def _lazy(module: str, name: str) -> Callable[[], Screen]:
    """A screen imported when first shown: the first frame only needs the chat's widgets."""
    return lambda: getattr(importlib.import_module(module), name)()


class FrontdeskApp(App[int]):
    TITLE = "Frontdesk"
    CSS_PATH = "frontdesk.tcss"
    MODES = {
        "chat": ChatScreen,
        "docs": _lazy("app.tui.load_docs", "LoadDocsScreen"),
        "logs": _lazy("app.tui.logs", "LogsScreen"),
        "settings": _lazy("app.tui.settings_screen", "SettingsScreen"),
        "handoff": _lazy("app.tui.handoff", "HandoffScreen"),
    }
    DEFAULT_MODE = "chat"
    BINDINGS = [
        Binding("f1", "help", "Help", tooltip="This list of keys"),
        Binding("f2", "switch_mode('chat')", "Chat", tooltip="Ask questions"),
        Binding("f3", "switch_mode('docs')", "Docs", tooltip="Load a docs folder"),
        Binding("f4", "switch_mode('logs')", "Logs", tooltip="Review routing and cost"),
        Binding("f5", "switch_mode('settings')", "Settings", tooltip="Docs, store, models, API key status"),
        # Not in the footers (show=False): they have no room for it at 80-120 columns; F1 and Ctrl+P list it.
        Binding("f6", "switch_mode('handoff')", "Handoff", show=False, tooltip="The handoff queue: tickets for a person"),
        Binding("ctrl+t", "toggle_theme", "Theme", tooltip="Switch between dark and light themes"),
        Binding("ctrl+q", "quit", "Quit", priority=True, tooltip="Quit (a streaming answer is stopped first)"),
    ]

    models_ready = reactive(False)  # warm-up finished (even if the local model failed: fallbacks work)
    status_line: reactive[Content] = reactive(Content("◌ Loading models…"))
    ingest_status = reactive("")  # "docs: loading 3/40" while an ingest runs
    store_info: reactive[Any] = reactive(None)  # the last StoreCounted message

    def __init__(self, settings: Any, desk: Any = None, load_models: bool = True) -> None:
        """`load_models=False` skips the warm-up (for screens that never answer, e.g. in tests)."""
        super().__init__()
        self.settings = settings
        self._desk = desk
        self._desk_lock = threading.Lock()
        self.load_models = load_models
        self.models_problem: tuple[str, str] | None = None
        self.chunks: int | None = None
        self.local_model = ""
        self.frontier_problem = ""  # "Claude unreachable" from a failed call until one succeeds
        self.budget_warning = ""  # "daily budget 85%" from 80% of a frontier cap
        self._told_unavailable: set[str] = set()  # no key / over budget: said once per session
        self.theme = THEMES[0]

    @property
    def desk(self) -> Any:
        """The core's handle, built on first use (from a worker, normally: building it is cheap,
        but what it then loads is not)."""
        if self._desk is None:
            with self._desk_lock:
                if self._desk is None:
                    from app.core import Desk

                    self._desk = Desk(self.settings)
        return self._desk

    def on_mount(self) -> None:
        self._redraw_status()
        if self.load_models:
            # After the first frame: the warm-up imports torch in a thread, and its import
            # work holds the GIL in long stretches that would otherwise delay that frame.
            self.call_after_refresh(run_in_background, self, self._warm_up, group="warm-up")

    # --- start-up --------------------------------------------------------------------------

    def _warm_up(self) -> None:
        """Background thread: build the desk, load the models, count the store."""
        problem, chunks, local_model = None, None, "local model"
        try:
            desk = self.desk
            local_model = desk.local_model[0]
            desk.warm_up()
        except Exception as error:
            problem = explain(error)
        try:
            chunks = self.desk.doc_count()
        except Exception as error:
            problem = problem or explain(error)
        self.post_message(msg.ModelsReady(chunks, local_model, problem))

    def on_models_ready(self, message: msg.ModelsReady) -> None:
        self.models_problem, self.chunks = message.problem, message.chunks
        self.local_model = message.local_model
        self.models_ready = True
        self._redraw_status()
        if message.problem:
            title, fix = message.problem
            self.notify(fix, title=title, severity="error", timeout=20, markup=False)
        if message.chunks == 0:
            self.push_screen(OfferDocsScreen(self.settings.docs), self._offer_answered)

    def _offer_answered(self, choice: str | None) -> None:
        if choice == "sample":
            self.load_docs(self.settings.docs)
        elif choice == "folder":
            self.switch_mode("docs")

    def _redraw_status(self) -> None:
        if not self.models_ready:
            state = Content.styled("◌ Loading models… (questions wait for them)", "$text-warning")
        elif self.models_problem:
            state = Content.styled(f"⚠ Ready, degraded: {self.models_problem[0][:50]}", "$text-error")
        elif self.frontier_problem:
            state = Content.styled(f"⚠ {self.frontier_problem}: answering from docs", "$text-warning bold")
        else:
            state = Content.styled("● Ready", "$text-success bold")
        parts = [state]
        if self.ingest_status:
            parts.append(Content.styled(self.ingest_status, "$text-warning"))
        elif self.chunks is not None:
            parts.append(Content(f"{self.chunks} chunks") if self.chunks else Content.styled("store empty: F3 loads docs", "$text-warning"))
        if self.budget_warning:
            parts.append(Content.styled(self.budget_warning, "$text-warning bold"))
        if self.models_ready and not self.models_problem:
            parts.append(Content(self.local_model))
        parts.append(Content(self.settings.frontier.model) if self.settings.api_key
                     else Content.styled("no API key", "$text-muted"))
        self.status_line = Content(" · ").join(parts)

    def watch_ingest_status(self, _: str) -> None:
        self._redraw_status()

    # --- store info (chat status line, settings screen) -------------------------------------

    def refresh_store_info(self) -> None:
        run_in_background(self, self._count_store, group="store-info")

    def _count_store(self) -> None:
        """Background thread: what the store holds and which local model file is configured."""
        chunks, roots, problem, name, path = None, {}, "", "local model", ""
        try:
            name, path = self.desk.local_model
            path = str(path or "")
            chunks = self.desk.doc_count()
            roots = self.desk.doc_roots()
        except Exception as error:
            problem = explain(error)[0]
        self.post_message(msg.StoreCounted(chunks, roots, name, path, problem))

    def on_store_counted(self, message: msg.StoreCounted) -> None:
        self.store_info = message
        if message.chunks is not None:
            self.chunks = message.chunks
            self._redraw_status()

    # --- the frontier model's health (from the turns the chat shows) ------------------------

    def frontier_result(self, notice: tuple[str, str] | None, turn: Any | None) -> None:
        """After each answer: say (once) why Claude was not used, or that it is back."""
        if notice is None:
            if turn is not None and self.frontier_problem and turn.answered_by == "frontier":
                self.frontier_problem = ""  # a frontier call succeeded again
                self._redraw_status()
            return
        kind, text = notice
        detail = " ".join(line.strip() for line in (turn.error if turn is not None and turn.error else text).split("\n"))
        if kind == "frontier-failed":
            self.frontier_problem = "Claude unreachable"
            self._redraw_status()
            self.notify(detail, title="Claude unreachable: answered from your docs", severity="warning",
                        timeout=12, markup=False)
        else:  # no key or over budget: the same every turn, so it is said once
            if "paused after" in detail:  # the breaker: Claude is tried again after the pause
                self.frontier_problem = "Claude paused"
                self._redraw_status()
            elif self.settings.api_key and not self.frontier_problem:
                self.frontier_problem = "Claude unavailable"
                self._redraw_status()
            if detail in self._told_unavailable:
                return
            self._told_unavailable.add(detail)
            self.notify(detail, title="Claude not used: answered from your docs", severity="warning",
                        timeout=12, markup=False)

    def on_budget_checked(self, message: msg.BudgetChecked) -> None:
        near = [use for use in message.budget if use.near]
        self.budget_warning = " · ".join(
            f"{use.period} budget {'used up' if use.exhausted else f'{use.share:.0%}'}" for use in near)
        self._redraw_status()

    # --- errors ----------------------------------------------------------------------------

    def on_failed(self, message: msg.Failed) -> None:
        self.notify(message.fix or message.title, title=message.title if message.fix else "", severity="error",
                    timeout=15, markup=False)

    # --- navigation and actions ------------------------------------------------------------

    def load_docs(self, root: Any = None) -> None:
        """Show the docs screen and start loading `root` there (the chat keeps working)."""
        self.switch_mode("docs")
        self.screen.request(root or self.settings.docs)

    def open_conversation(self, conversation_id: str) -> None:
        self.switch_mode("chat")
        chat = self.screen
        if isinstance(chat, ChatScreen):
            chat.open_conversation(conversation_id)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "switch_mode" and parameters and parameters[0] == self.current_mode:
            return False  # no key for the screen you are on: keeps the footer short at 80 columns
        return True

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme == THEMES[0] else THEMES[0]

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.binding_groups()))

    def binding_groups(self) -> list[tuple[str, list]]:
        from app.tui.handoff import HandoffScreen
        from app.tui.load_docs import LoadDocsScreen
        from app.tui.logs import LogsScreen
        from app.tui.settings_screen import SettingsScreen
        from app.tui.turn_detail import TurnDetailScreen

        return [
            ("Everywhere", self.BINDINGS),
            ("Chat (F2)", [Binding("enter", "", "Send", tooltip="Send the question")] + ChatScreen.BINDINGS),
            ("Load docs (F3)", LoadDocsScreen.BINDINGS),
            ("Logs (F4)", LogsScreen.BINDINGS),
            ("Turn detail (Enter in Logs)", TurnDetailScreen.BINDINGS),
            ("Settings (F5)", SettingsScreen.BINDINGS),
            ("Handoff (F6)", HandoffScreen.BINDINGS),
            ("Dialogs and palette", [Binding("escape", "", "Close", tooltip="Close a dialog or cancel it"),
                                     Binding("ctrl+p", "", "Palette", tooltip="Command palette: every action by name")]),
        ]

    async def action_quit(self) -> None:
        for screen in self._all_screens():
            if isinstance(screen, ChatScreen):
                screen.stop_everything()  # a streaming answer ends at its next token
        self.exit(0)

    def _all_screens(self) -> Iterable[Screen]:
        for stack in self._screen_stacks.values():
            yield from stack

    def _chat_action(self, action: str) -> None:
        self.switch_mode("chat")
        self.call_after_refresh(self.screen.run_action, action)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Chat", "Ask questions (F2)", lambda: self.switch_mode("chat"))
        yield SystemCommand("New conversation", "Start a fresh conversation (Ctrl+N in Chat)", lambda: self._chat_action("new_conversation"))
        yield SystemCommand("Reopen a conversation", "Pick an earlier conversation from the ledger (Ctrl+R in Chat)", lambda: self._chat_action("reopen"))
        yield SystemCommand("Stop the answer", "Stop the answer that is streaming (Esc in Chat)", lambda: self._chat_action("stop_answer"))
        yield SystemCommand("Sources of the last answer", "Read the passages it cites (Ctrl+O in Chat)", lambda: self._chat_action("sources"))
        yield SystemCommand("Load docs", "Pick a folder and load it (F3)", lambda: self.switch_mode("docs"))
        yield SystemCommand("Load the sample docs", f"Load {self.settings.docs}", lambda: self.load_docs(self.settings.docs))
        yield SystemCommand("Logs", "Review routing and cost (F4)", lambda: self.switch_mode("logs"))
        yield SystemCommand("Export logs", "Write the filtered turns to CSV or JSON (e in Logs)", self._export_logs)
        yield SystemCommand("Settings", "Docs, store, models, API key status (F5)", lambda: self.switch_mode("settings"))
        yield SystemCommand("Handoff queue", "Tickets for a person: read, export, mark done, reopen (F6)", lambda: self.switch_mode("handoff"))
        yield SystemCommand("Hand to a human", f"Open a handoff ticket for the last answer ({HAND_OVER_KEY.title()} in Chat)", lambda: self._chat_action("hand_to_human"))
        yield SystemCommand("Toggle dark/light theme", "Ctrl+T", self.action_toggle_theme)
        yield SystemCommand("Help", "List every key (F1)", self.action_help)
        yield from self._screen_commands(screen)

    def _screen_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The active screen's own keys (Logs: sort, chart…; Settings: recount…) as commands.
        The chat's are above, named for use from anywhere; app-wide keys are there too."""
        name = getattr(screen, "PALETTE_NAME", "")
        if not name or isinstance(screen, ChatScreen):
            return
        for binding in screen.BINDINGS:
            if not isinstance(binding, Binding) or not binding.description or binding.action.startswith("app."):
                continue
            key = binding.key_display or self.get_key_display(binding)
            yield SystemCommand(f"{name}: {binding.description}", f"{binding.tooltip or binding.description} ({key})",
                                lambda action=binding.action: self.call_after_refresh(screen.run_action, action))

    def _export_logs(self) -> None:
        self.switch_mode("logs")
        self.call_after_refresh(self.screen.run_action, "export")


def run_app(settings: Any) -> int:
    """`frontdesk` with no arguments: run the app until the user quits; returns the exit code."""
    app = FrontdeskApp(settings)
    app.run()
    return app.return_code or 0  # 1 if Textual itself hit a fatal error

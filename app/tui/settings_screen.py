"""Settings at a glance: where the docs and data live, which models answer, whether a key is set.

The API key itself is never shown: only whether one is configured and where it came from.
What the store holds is counted by an app worker (opening Chroma is slow), shown when it arrives.
"""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, Static

from app.tui.facts import Facts
from app.tui.footer import KeyFooter


def _rows(rows: list[tuple[str, str | Content, str]]) -> list[tuple[str, Content]]:
    """label | value (from where, when it is not the default)"""
    out = []
    for label, value, source in rows:
        origin = f"  (from {source})" if source and source != "default" else ""
        out.append((label, Content.assemble(value, (origin, "$text-muted italic"))))
    return out


LABEL_WIDTH = len("frontier model")  # the longest label: the three sections line up


class SettingsScreen(Screen):
    PALETTE_NAME = "Settings"  # its keys are offered in the command palette as "Settings: …"
    BINDINGS = [
        Binding("ctrl+r", "recount", "Recount", tooltip="Count the chunks in the store again"),
        Binding("escape", "app.switch_mode('chat')", "Back", tooltip="Back to the chat"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="settings"):
            yield Static(Content.styled("Docs and store", "bold $text-accent"), classes="section-title")
            yield Facts(id="store-facts", label_width=LABEL_WIDTH)
            yield Static(Content.styled("Models", "bold $text-accent"), classes="section-title")
            yield Facts(id="model-facts", label_width=LABEL_WIDTH)
            yield Static(Content.styled("Data", "bold $text-accent"), classes="section-title")
            yield Facts(id="data-facts", label_width=LABEL_WIDTH)
            yield Static(Content.styled(
                "Change these in frontdesk.toml, FRONTDESK_* variables or --set NAME=VALUE; "
                "`frontdesk config` lists every setting and where it came from.", "$text-muted"), classes="hint")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "settings"
        self.watch(self.app, "store_info", self._draw)
        self.watch(self.app, "models_ready", lambda _: self._draw(self.app.store_info))

    def on_screen_resume(self) -> None:
        self.app.refresh_store_info()

    def action_recount(self) -> None:
        self.app.refresh_store_info()

    def _draw(self, info: Any) -> None:
        s = self.app.settings
        src = s.sources
        if info is None:
            chunks, folders, local_name, local_path = "counting…", "", "loading…", ""
        else:
            chunks = f"{info.chunks} chunks" if info.chunks is not None else f"unavailable: {info.problem}"
            folders = "\n".join(f"{root}  ({n} chunks)" for root, n in sorted(info.roots.items())) or "none"
            local_name, local_path = info.local_model, info.local_path
        store = s.general.chroma_url or str(s.chroma_dir)
        self.query_one("#store-facts", Facts).set_rows(_rows([
            ("docs folder", str(s.docs), src["docs"]),
            ("store", store, src["chroma_url"]),
            ("collection", s.general.collection, src["collection"]),
            ("store holds", chunks, ""),
            ("folders loaded", folders, ""),
            ("retrieval", f"top {s.general.top_k} passages · {s.general.chunk_tokens}-token chunks", src["top_k"]),
        ]))
        key = (Content.styled(f"configured ({s.api_key_source})", "$text-success") if s.api_key
               else Content.styled("not set: escalated questions are answered from your docs only", "$text-warning"))
        budget = s.frontier.monthly_budget_usd
        problem = self.app.models_problem  # why the status line says "degraded", with the fix
        self.query_one("#model-facts", Facts).set_rows(_rows([
            ("local model", local_name, src["local.model"]),
            *([("problem", Content.styled(f"{problem[0]}\n{problem[1]}", "$text-error"), "")] if problem else []),
            ("local file", local_path or "—", ""),
            ("local limits", f"{s.local.max_tokens} answer tokens · context {s.local.n_ctx}", src["local.max_tokens"]),
            ("frontier model", s.frontier.model, src["frontier.model"]),
            ("frontier API", s.frontier.base_url or "Anthropic default", src["frontier.base_url"]),
            ("API key", key, ""),
            ("monthly budget", f"${budget:.2f}" if budget else "no limit", src["frontier.monthly_budget_usd"]),
        ]))
        self.query_one("#data-facts", Facts).set_rows(_rows([
            ("data dir", str(s.home), src["home"]),
            ("ledger", str(s.ledger_path), ""),
            ("config file", str(s.config_file) if s.config_file else "none (defaults)", ""),
        ]))

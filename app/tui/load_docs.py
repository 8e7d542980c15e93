"""The load-docs screen: pick a folder, then sync it into the store with progress and per-file errors.

The ingest runs in a worker owned by this screen. Screens reached through the app's modes
stay alive when the user switches back to the chat, so the ingest keeps going (and keeps
reporting here and in the chat's status line) while questions are asked.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.suggester import Suggester
from textual.widgets import Button, DirectoryTree, Header, Input, ProgressBar, Static

from app.core import dispatch
from app.tui import messages as msg
from app.tui.background import run_in_background
from app.tui.footer import KeyFooter
from app.tui.format import clip, explain


FOLDER_FIX = "Type the path of an existing folder above (→ completes it) or pick one in the tree, then press Enter."


def folder_problem(root: Path) -> tuple[str, str] | None:
    """(title, fix) when `root` can't be loaded as a folder: checked before any work starts."""
    if not root.exists():
        return f"Docs folder not found: {root}", FOLDER_FIX
    if not root.is_dir():
        return f"Not a folder: {root}", "Pick the folder that holds your docs, not a file: " + FOLDER_FIX[0].lower() + FOLDER_FIX[1:]
    return None


class FolderSuggester(Suggester):
    """Completes the last part of a typed path with the first matching folder on disk."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        typed = Path(value).expanduser()
        parent, stem = (typed, "") if value.endswith("/") else (typed.parent, typed.name)
        try:
            names = sorted(p.name for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name.startswith(stem))
        except OSError:
            return None
        return value + names[0][len(stem):] + "/" if names else None


class FolderTree(DirectoryTree):
    """A directory tree that lists folders only: a docs source is always a folder."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if p.is_dir() and not p.name.startswith(".")]


class LoadDocsScreen(Screen):
    PALETTE_NAME = "Load docs"  # its keys are offered in the command palette as "Load docs: …"
    BINDINGS = [
        Binding("ctrl+l", "load", "Load", tooltip="Load the folder in the path box (or Enter)"),
        Binding("ctrl+g", "parent_folder", "Up a folder", show=False, tooltip="Show the parent folder in the tree"),
        Binding("escape", "app.switch_mode('chat')", "Back", tooltip="Back to the chat (the load goes on)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.running = False
        self.requested: Path | None = None  # an ingest asked for before this screen had composed
        self.done_files = self.total_files = 0
        self.failures: list[tuple[str, str]] = []

    def compose(self) -> ComposeResult:
        docs = self.app.settings.docs
        yield Header()
        yield Static(Content("Type a folder path (→ accepts the completion) or pick one in the tree, then press Enter "
                             "or Ctrl+L. Only new and changed files are embedded again."), classes="hint")
        with Horizontal(id="path-row"):
            yield Input(str(docs), id="path", suggester=FolderSuggester(), placeholder="/path/to/your/docs")
            yield Button("Load", id="load", variant="primary")
        yield FolderTree(docs.parent if docs.parent.is_dir() else Path.cwd(), id="tree")
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=None, show_eta=False, id="progress")
            yield Static("", id="progress-label")
        yield Static("", id="ingest-summary")
        with VerticalScroll(id="problems"):
            yield Static("", id="problem-list")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "load docs"
        self.query_one("#problems").display = False
        self.query_one("#progress-row").display = False  # until there is something to show
        self.query_one("#path", Input).focus()
        if self.requested:
            self.start(self.requested)

    # --- choosing a folder -----------------------------------------------------------------

    def on_directory_tree_directory_selected(self, event: DirectoryTree.DirectorySelected) -> None:
        self.query_one("#path", Input).value = str(event.path)

    def action_parent_folder(self) -> None:
        tree = self.query_one(FolderTree)
        tree.path = Path(tree.path).resolve().parent

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "path":
            self.action_load()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "load":
            self.action_load()

    def action_load(self) -> None:
        value = self.query_one("#path", Input).value.strip()
        if value:
            self.start(Path(value).expanduser())

    def request(self, root: Path) -> None:
        """Load `root` now if the screen is ready, else as soon as it has composed."""
        if self.is_mounted:
            self.query_one("#path", Input).value = str(root)
            self.start(root)
        else:
            self.requested = root

    # --- the ingest ------------------------------------------------------------------------

    def start(self, root: Path) -> None:
        if self.running:
            self.notify("A folder is already loading; wait for it to finish.", severity="warning")
            return
        problem = folder_problem(root)
        if problem:
            self._show_failure(*problem)
            return
        self.running = True
        self.done_files, self.failures = 0, []
        self.query_one("#load", Button).disabled = True
        self.query_one("#progress-row").display = True
        self.query_one("#progress", ProgressBar).update(total=None, progress=0)
        self.query_one("#progress-label", Static).update(Content(f"Scanning {root}…"))
        self.query_one("#ingest-summary", Static).update("")
        self._show_problems()
        self.app.ingest_status = "docs: scanning…"
        run_in_background(self, self._ingest, self.app, root, group="ingest")

    def _ingest(self, app: Any, root: Path) -> None:
        """Background thread: sync the folder, one message per core event."""
        post = self.post_message
        try:
            for event in app.desk.ingest(root):
                post(msg.IngestEvent(event))
        except Exception as error:
            title, fix = explain(error)
            if "frontdesk " in fix:  # advice for the command line; here the path box is the way
                fix = FOLDER_FIX
            post(msg.IngestFailed(title, fix))

    def on_ingest_event(self, message: msg.IngestEvent) -> None:
        dispatch(message.event, self)

    def on_ingest_waiting(self, event: Any) -> None:
        self.query_one("#progress-label", Static).update(
            Content(f"waiting for another frontdesk (pid {event.pid or '?'}) to finish loading docs…"))
        self.app.ingest_status = "docs: waiting for another load"

    def on_ingest_started(self, event: Any) -> None:
        self.query_one("#progress", ProgressBar).update(total=event.total_files, progress=0)
        self.query_one("#progress-label", Static).update(Content(f"0/{event.total_files} files"))
        self.total_files = event.total_files
        self.app.ingest_status = f"docs: loading 0/{event.total_files}"

    def on_file_ingested(self, event: Any) -> None:
        if event.status == "removed":  # not one of the files on disk: no progress step
            return
        self.done_files += 1
        total = self.total_files
        self.query_one("#progress", ProgressBar).advance(1)
        self.query_one("#progress-label", Static).update(Content(f"{self.done_files}/{total} files · {clip(event.file, 40)}"))
        self.app.ingest_status = f"docs: loading {self.done_files}/{total}"
        if event.status == "failed":
            self.failures.append((event.file, event.reason))
            self._show_problems()

    def on_ingest_finished(self, event: Any) -> None:
        self._ended()
        summary = event.summary
        self.query_one("#progress-label", Static).update(
            Content(f"done · {summary.chunks_total} chunks in {summary.seconds:.1f} s"))
        self.query_one("#ingest-summary", Static).update(Content(summary.describe() + "."))
        if summary.failed:
            self.notify(f"{len(summary.failed)} file(s) skipped: see the list on the Docs screen (F3).",
                        title="Docs loaded with problems", severity="warning", timeout=8)
        else:
            self.notify(f"{summary.chunks_total} chunks from {summary.root}", title="Docs loaded")
        self.app.ingest_status = ""
        self.app.refresh_store_info()

    def on_ingest_failed(self, message: msg.IngestFailed) -> None:
        self._ended()
        self._show_failure(message.title, message.fix)
        self.app.ingest_status = "docs: load failed"

    def _ended(self) -> None:
        self.running = False
        self.query_one("#load", Button).disabled = False

    def _show_failure(self, title: str, fix: str) -> None:
        self.query_one("#progress-row").display = False  # nothing was loaded: no bar to show
        self.query_one("#ingest-summary", Static).update(Content.assemble((title, "$text-error bold"), "\n", fix))
        self.post_message(msg.Failed(title, fix, "ingest"))

    def _show_problems(self) -> None:
        problems = self.query_one("#problems")
        problems.display = bool(self.failures)
        self.query_one("#problem-list", Static).update(Content.assemble(
            (f"{len(self.failures)} file(s) skipped; fix them and load the folder again:\n", "$text-warning bold"),
            *[part for file, reason in self.failures for part in (("✗ ", "$text-error"), (file, "bold"), f"  {reason}\n")],
        ))

"""What every command shares: exit codes, reading (and cleaning) questions, showing stored text, the
progress bar, passage lines."""
from __future__ import annotations

import sys
from typing import Callable, Iterable

from app.core import FrontdeskError, clean_input

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130

def questions_from(args, command: str = "search") -> list[str]:
    """The questions of one command, from argv or stdin, cleaned at the boundary."""
    if args.stdin:
        if hasattr(sys.stdin, "reconfigure"):  # a real stream; tests may pass a StringIO
            # A strict decoder would stop the whole batch at the first line that isn't UTF-8.
            sys.stdin.reconfigure(errors="replace")
        return [question for question in (clean_input(line).strip() for line in sys.stdin) if question]
    question = clean_input(args.question or "").strip()
    if not question:
        raise FrontdeskError("No question given", f'Pass one in quotes, e.g. frontdesk {command} "how do I reset my password?", or use --stdin.')
    return [question]


def versus_frontier(saved: float, frontier: float, places: int, sep: str, share: float | None = None) -> str:
    """'all-frontier $F{sep}saved $S' or, when the turns cost more than all-frontier would
    have (a paid local draft, then an escalation), '$D more than all-frontier $F': a
    saving is never shown negative. `share` is the saving in percent, if shown."""
    pct = f" ({abs(share):.1f}%)" if share is not None else ""
    if saved < 0:
        return f"${-saved:.{places}f}{pct} more than all-frontier ${frontier:.{places}f}"
    return f"all-frontier ${frontier:.{places}f}{sep}saved ${saved:.{places}f}{pct}"


def in_batches(items: list[str], size: int = 64) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def require_documents(desk) -> None:
    if desk.doc_count() == 0:
        raise FrontdeskError("The docs store is empty", "Load docs first: frontdesk ingest PATH (or just `frontdesk ingest` for the sample docs).")


def print_passages(passages, snippet: int = 240, out: Callable[[str], None] = print) -> None:
    if not passages:
        out("No passages found.")
    for rank, passage in enumerate(passages, 1):
        text = " ".join(passage.text.split())
        out(f"{rank}. [{passage.score:.3f}] {passage.file}" + (f"  §  {passage.heading}" if passage.heading else ""))
        out("   " + (text[:snippet] + "…" if len(text) > snippet else text))


class ProgressBar:
    """A rich progress bar on stderr (rich comes with Textual)."""

    def start(self, total: int, description: str) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TextColumn("[dim]{task.fields[file]}"), console=Console(stderr=True), transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, file="")

    def advance(self, file: str) -> None:
        self._progress.update(self._task, advance=1, file=file[-40:])

    def print(self, line: str) -> None:
        self._progress.console.print(line, markup=False, highlight=False)

    def stop(self) -> None:
        self._progress.stop()


class IngestShown:
    """Renders ingest events: a progress bar on a terminal, skipped files always, every file with -v."""

    def __init__(self, progress: ProgressBar | None, verbose: bool):
        self.progress, self.verbose, self.summary = progress, verbose, None

    def on_ingest_waiting(self, event) -> None:
        print(f"waiting for another frontdesk (pid {event.pid or '?'}) to finish loading docs into {event.home}…",
              file=sys.stderr, flush=True)

    def on_ingest_started(self, event) -> None:
        if self.progress:
            self.progress.start(event.total_files, f"Ingesting {event.root}")

    def on_file_ingested(self, event) -> None:
        if self.progress and event.status != "removed":
            self.progress.advance(event.file)
        if event.status == "failed":
            self._say(f"skipped {event.file}: {event.reason}", sys.stderr)
        elif self.verbose:
            self._say(f"{event.status:<9} {event.file} ({event.chunks} chunks){' ' + event.reason if event.reason else ''}", sys.stdout)

    def on_ingest_finished(self, event) -> None:
        self.summary = event.summary

    def _say(self, line: str, stream) -> None:
        if self.progress:
            self.progress.print(line)
        else:
            print(line, file=stream, flush=True)

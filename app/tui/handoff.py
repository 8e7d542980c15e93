"""The handoff screen: the queue of turns a person should look at, as `frontdesk handoff` has it.

Open or done tickets in a table; `d` marks the selected one done, `o` reopens it, `e` writes
its ticket (or `E` every ticket shown) as Markdown and JSON under `<home>/handoff`, the same
files `frontdesk handoff export` writes, and Enter reads it. Every read and write of the
ledger runs in a worker that posts its result back; the handlers only fill the widgets and
say what happened.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Header, Label, Static

from app.tui import messages as msg
from app.tui.chat import HAND_OVER_KEY
from app.tui.footer import KeyFooter
from app.tui.format import clip, explain
from app.tui.markdown_text import MarkdownText

ASKED_WIDTH = 16  # YYYY-MM-DD HH:MM
TABLE_CHROME = 3  # the table's side margins and its one-cell scrollbar
CELL_PADDING = 2  # one space either side of every cell
REASON_MAX = 44  # the CLI's reason column


def column_widths(total_width: int, id_width: int, reason_width: int) -> tuple[int, int]:
    """(reason, question) widths that fill `total_width` columns after the id and the time: the
    reason as wide as its longest (up to REASON_MAX) but no wider than half of what is left;
    the question takes the rest."""
    spare = max(total_width - TABLE_CHROME - id_width - ASKED_WIDTH - 4 * CELL_PADDING, 24)
    reason = max(min(reason_width, REASON_MAX, spare // 2), len("Reason"))
    return reason, spare - reason


# --- what the workers post back ----------------------------------------------------------------

class HandoffLoaded(Message):
    """`generation` names the load it answers: a result older than the latest request is dropped."""

    def __init__(self, generation: int, status: str, tickets: list) -> None:
        super().__init__()
        self.generation, self.status, self.tickets = generation, status, tickets


class HandoffSet(Message):
    """A ticket was marked done or reopened: `turn` as the ledger stores it now."""

    def __init__(self, turn: Any) -> None:
        super().__init__()
        self.turn = turn


class HandoffExported(Message):
    def __init__(self, count: int, folder: Path) -> None:
        super().__init__()
        self.count, self.folder = count, folder


class TicketRead(Message):
    def __init__(self, turn_id: int, markdown: str) -> None:
        super().__init__()
        self.turn_id, self.markdown = turn_id, markdown


# --- the screen ----------------------------------------------------------------------------------

class HandoffScreen(Screen):
    PALETTE_NAME = "Handoff"  # its keys are offered in the command palette as "Handoff: …"
    BINDINGS = [
        Binding("t", "toggle_status", "View", tooltip="Switch between the open and the done tickets"),
        Binding("d", "set_status('done')", "Done", tooltip="Mark the selected ticket done"),
        Binding("o", "set_status('open')", "Reopen", tooltip="Reopen the selected ticket"),
        Binding("e", "export", "Export", tooltip="Write the selected ticket as Markdown and JSON to <home>/handoff"),
        Binding("E", "export_all", "Export all", key_display="E",
                tooltip="Write every ticket shown as Markdown and JSON to <home>/handoff"),
        Binding("enter", "ticket", "Read", show=False, tooltip="Read the selected ticket"),
        Binding("escape", "app.switch_mode('chat')", "Back", tooltip="Back to the chat"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.status = "open"
        self.tickets: list = []  # the turns shown, in table order (oldest first)
        self.loaded = False  # a load has answered (tests and the empty message wait for it)
        self.generation = 0  # of the latest load asked for (thread workers can't be cancelled)
        self._filled_width = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="handoff-summary")
        yield DataTable(id="tickets", cursor_type="row", zebra_stripes=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self._set_sub_title()
        self.query_one("#tickets", DataTable).focus()

    def on_screen_resume(self) -> None:
        self.reload()  # the chat or the pipeline may have opened tickets since the screen was shown

    def _set_sub_title(self) -> None:
        self.sub_title = f"{self.status} tickets"

    def export_folder(self) -> Path:
        return Path(self.app.settings.home) / "handoff"

    # --- loading ---------------------------------------------------------------------------

    def reload(self) -> None:
        self.generation += 1
        self._load(self.app, self.status, self.generation)

    @work(thread=True, exclusive=True, group="handoff", exit_on_error=False)
    def _load(self, app: Any, status: str, generation: int) -> None:
        try:
            self.post_message(HandoffLoaded(generation, status, app.desk.handoffs(status)))
        except Exception as error:
            self.post_message(msg.Failed(*explain(error), context="handoff"))

    def on_handoff_loaded(self, message: HandoffLoaded) -> None:
        if message.generation != self.generation:
            return  # the view changed while this load ran: a newer one is on its way
        selected = self.selected_ticket()
        self.tickets, self.loaded = message.tickets, True
        self._fill_table(selected.id if selected is not None else None)

    def _fill_table(self, keep: int | None = None) -> None:
        """Draw self.tickets; the cursor stays on ticket `keep` if it is still shown."""
        table = self.query_one("#tickets", DataTable)
        row_before = table.cursor_row
        self._filled_width = width = self.app.size.width
        id_width = max([2, *(len(str(t.id)) for t in self.tickets)])
        longest_reason = max([0, *(len(clip(t.needs_human or "—", REASON_MAX)) for t in self.tickets)])
        reason_width, question_width = column_widths(width, id_width, longest_reason)
        table.clear(columns=True)
        table.add_column("ID", key="id", width=id_width)
        table.add_column("Asked (UTC)", key="asked", width=ASKED_WIDTH)
        table.add_column("Reason", key="reason", width=reason_width)
        table.add_column("Question", key="question", width=question_width)
        for turn in self.tickets:
            table.add_row(Text(str(turn.id), justify="right", no_wrap=True),
                          Text(turn.created_at[:16].replace("T", " "), no_wrap=True),
                          Text(clip(turn.needs_human or "—", reason_width), no_wrap=True),
                          Text(clip(turn.question, question_width), no_wrap=True), key=str(turn.id))
        if self.tickets:
            ids = [t.id for t in self.tickets]
            row = ids.index(keep) if keep in ids else min(max(row_before, 0), len(ids) - 1)
            table.move_cursor(row=row)
        self.query_one("#handoff-summary", Static).update(self._summary())

    def _summary(self) -> Content:
        other = "done" if self.status == "open" else "open"
        if not self.tickets:
            if self.status == "open":
                return Content.assemble(("No open handoff tickets.", "bold"),
                                        " Answers the desk could not give reliably land here, and so does any "
                                        f"answer handed over from the chat ({HAND_OVER_KEY.title()}). t shows the done ones.")
            return Content.assemble(("No done handoff tickets.", "bold"), " t shows the open ones.")
        return Content.assemble((f"{len(self.tickets)} {self.status} ticket(s)", "bold"),
                                f" · Enter reads one · t shows the {other} ones · files go to {self.export_folder()}")

    def on_resize(self) -> None:
        if self.loaded and self._filled_width != self.app.size.width and self.is_mounted:
            selected = self.selected_ticket()
            self._fill_table(selected.id if selected is not None else None)

    def selected_ticket(self) -> Any | None:
        if not self.is_mounted:
            return None
        table = self.query_one("#tickets", DataTable)
        if not self.tickets or table.row_count != len(self.tickets) or not 0 <= table.cursor_row < len(self.tickets):
            return None
        return self.tickets[table.cursor_row]  # rows are drawn in self.tickets order

    def _selected_or_say(self) -> Any | None:
        ticket = self.selected_ticket()
        if ticket is None:
            self.notify(f"No {self.status} ticket selected." if self.loaded else "The tickets are still loading.",
                        markup=False)
        return ticket

    # --- actions ---------------------------------------------------------------------------

    def action_toggle_status(self) -> None:
        self.status = "done" if self.status == "open" else "open"
        self._set_sub_title()
        self.tickets, self.loaded = [], False
        self.query_one("#tickets", DataTable).clear()
        self.query_one("#handoff-summary", Static).update(Content.styled(f"Loading the {self.status} tickets…", "$text-muted"))
        self.reload()

    def action_set_status(self, status: str) -> None:
        ticket = self._selected_or_say()
        if ticket is None:
            return
        if ticket.handoff == status:
            self.notify(f"Ticket #{ticket.id} is already {status}.", markup=False)
            return
        self._set(self.app, ticket.id, status)

    @work(thread=True, group="handoff-set", exit_on_error=False)
    def _set(self, app: Any, turn_id: int, status: str) -> None:
        try:
            self.post_message(HandoffSet(app.desk.set_handoff(turn_id, status)))
        except Exception as error:
            self.post_message(msg.Failed(*explain(error), context="handoff"))

    def on_handoff_set(self, message: HandoffSet) -> None:
        turn = message.turn
        self.notify(f"Ticket #{turn.id} marked done" if turn.handoff == "done" else f"Ticket #{turn.id} reopened",
                    markup=False)
        self.reload()

    def action_export(self) -> None:
        ticket = self._selected_or_say()
        if ticket is not None:
            self._export(self.app, [ticket.id], self.export_folder())

    def action_export_all(self) -> None:
        if not self.tickets:
            self.notify(f"No {self.status} tickets to export." if self.loaded else "The tickets are still loading.",
                        markup=False)
            return
        self._export(self.app, [t.id for t in self.tickets], self.export_folder())

    @work(thread=True, group="handoff-export", exit_on_error=False)
    def _export(self, app: Any, ids: list[int], folder: Path) -> None:
        try:
            count = len(app.desk.export_handoffs(ids, folder))
        except Exception as error:
            self.post_message(msg.Failed(*explain(error), context="handoff"))
            return
        self.post_message(HandoffExported(count, folder))

    def on_handoff_exported(self, message: HandoffExported) -> None:
        self.notify(f"Exported {message.count} ticket(s) to {message.folder}", markup=False, timeout=10)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_ticket()

    def action_ticket(self) -> None:
        ticket = self._selected_or_say()
        if ticket is not None:
            self._read(self.app, ticket.id)

    @work(thread=True, group="handoff-read", exit_on_error=False)
    def _read(self, app: Any, turn_id: int) -> None:
        try:
            self.post_message(TicketRead(turn_id, app.desk.handoff_ticket(turn_id)[1]))
        except Exception as error:
            self.post_message(msg.Failed(*explain(error), context="handoff"))

    def on_ticket_read(self, message: TicketRead) -> None:
        if self.app.screen is self:  # not over a dialog, nor after the user moved on
            self.app.push_screen(TicketScreen(message.turn_id, message.markdown))


class TicketScreen(ModalScreen[None]):
    """One ticket's Markdown, rendered (the text is never parsed as markup), scrollable."""

    BINDINGS = [Binding("escape", "dismiss", "Close")]

    def __init__(self, turn_id: int, markdown: str) -> None:
        super().__init__()
        self.turn_id, self.markdown = turn_id, markdown

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide tall", id="ticket"):
            yield Label(Content.styled(f"Handoff ticket #{self.turn_id}", "bold"), classes="dialog-title")
            with VerticalScroll(classes="ticket-text"):
                yield MarkdownText(self.markdown, id="ticket-text")
            yield Static(Content.styled("↑↓ scroll · Esc closes", "$text-muted"))

    def on_mount(self) -> None:
        self.query_one(".ticket-text", VerticalScroll).focus()

"""The logs screen: every turn from the ledger, filtered and sorted, with totals, a chart and export.

Reads happen in a worker (the first read may open the ledger and import the core); the
handler only fills the widgets. The screen never writes the ledger.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Select, Static

from app.core import TurnFilter
from app.tui import messages as msg
from app.tui.dialogs import ExportScreen
from app.tui.footer import KeyFooter
from app.tui.format import clip, explain, money, seconds, summary_line

ROW_LIMIT = 2000  # rows shown; totals, chart and export always cover every matching turn
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    sort_key: Callable[[Any], Any]
    cell: Callable[[Any], str]
    numeric: bool = False
    flex: float = 0.0  # share of the width left by the fixed columns (0: a fixed width, from its cells)
    min_width: int = 0
    max_width: int = 0  # fixed columns: wider cells are clipped


def _time(turn: Any, short: bool) -> str:
    stamp = turn.created_at[:16].replace("T", " ")
    return stamp[5:] if short else stamp  # MM-DD HH:MM on narrow screens: the year rarely matters


COLUMNS = [
    Column("time", "Time (UTC)", lambda t: t.created_at, lambda t: _time(t, False)),
    Column("question", "Question", lambda t: t.question.lower(), lambda t: t.question, flex=0.6, min_width=16),
    Column("route", "Route", lambda t: t.route, lambda t: t.route),
    Column("outcome", "Outcome", lambda t: t.outcome, lambda t: t.outcome),
    Column("reason", "Reason", lambda t: t.reason, lambda t: t.reason, flex=0.4, min_width=16),
    Column("model", "Model", lambda t: t.model, lambda t: t.model, max_width=20),
    Column("tokens", "Tokens", lambda t: t.input_tokens + t.output_tokens, lambda t: f"{t.input_tokens}/{t.output_tokens}", True),
    Column("cost", "Cost", lambda t: t.cost_usd, lambda t: money(t.cost_usd), True),
    Column("counterfactual", "All-frontier", lambda t: t.counterfactual_cost_usd, lambda t: money(t.counterfactual_cost_usd), True),
    Column("latency", "Latency", lambda t: t.total_ms or 0.0, lambda t: seconds(t.total_ms), True),
]
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
DESCENDING_FIRST = {"time", "tokens", "cost", "counterfactual", "latency"}
# Which columns give way first on a narrow terminal; the rest (time, question, route, outcome,
# cost, all-frontier) always show. Enter on a row shows every field.
DROP_ORDER = ["model", "tokens", "latency", "reason"]
SHORT_TIME_BELOW = 120  # columns: below this the time column drops the year
TABLE_CHROME = 3  # the table's side margins and its one-cell scrollbar
CELL_PADDING = 2  # one space either side of every cell


def column_label(column: Column, short_time: bool) -> str:
    return "Time" if short_time and column.key == "time" else column.label


def table_layout(total_width: int, turns: list, sort_column: str) -> tuple[list[tuple[Column, int]], bool]:
    """The columns that fit `total_width` terminal columns, each with an explicit width, and
    whether the time is shortened. Fixed columns are as wide as their widest cell or header;
    question and reason share what is left."""
    short_time = total_width < SHORT_TIME_BELOW
    available = total_width - TABLE_CHROME

    def natural(c: Column) -> int:
        header = len(column_label(c, short_time)) + (2 if c.key == sort_column else 0)
        cells = [len(_time(t, short_time)) if c.key == "time" else len(c.cell(t)) for t in turns]
        width = max([header, *cells])
        return min(width, c.max_width) if c.max_width else width

    shown = list(COLUMNS)
    fixed = {c.key: natural(c) for c in COLUMNS if not c.flex}

    def needed() -> int:
        return sum(fixed[c.key] if not c.flex else c.min_width for c in shown) + CELL_PADDING * len(shown)

    for key in DROP_ORDER:
        if needed() <= available:
            break
        shown = [c for c in shown if c.key != key]
    spare = available - sum(fixed[c.key] for c in shown if not c.flex) - CELL_PADDING * len(shown)
    flexible = [c for c in shown if c.flex]
    share = sum(c.flex for c in flexible) or 1.0
    widths = {c.key: max(c.min_width if spare >= c.min_width else 8, int(spare * c.flex / share)) for c in flexible}
    return [(c, widths.get(c.key) or fixed[c.key]) for c in shown], short_time


class LogsLoaded(Message):
    """`generation` names the load it answers: a result older than the latest request is dropped."""

    def __init__(self, generation: int, turns: list, summary: Any, daily: list, models: list[str], budget: list) -> None:
        super().__init__()
        self.generation, self.turns, self.summary, self.daily, self.models = generation, turns, summary, daily, models
        self.budget = budget


class LogsScreen(Screen):
    PALETTE_NAME = "Logs"  # its keys are offered in the command palette as "Logs: …"
    BINDINGS = [
        Binding("d", "detail", "Detail", tooltip="All about the selected turn (or Enter)"),
        Binding("s", "sort_next", "Sort", tooltip="Sort by the next column (or click a header)"),
        Binding("r", "sort_reverse", "Reverse", tooltip="Reverse the sort order"),
        Binding("e", "export", "Export", tooltip="Write the filtered turns to CSV or JSON"),
        Binding("c", "toggle_chart", "Chart", tooltip="Show or hide the spend and savings chart"),
        Binding("slash", "search", "Search", key_display="/", tooltip="Filter by text in question or answer"),
        Binding("escape", "app.switch_mode('chat')", "Back", tooltip="Back to the chat"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.turns: list = []
        self.sort_column, self.sort_descending = "time", True
        self.models: list[str] = []
        self.generation = 0  # of the latest load asked for (thread workers can't be cancelled)
        self.columns_shown: list[tuple[Column, int]] = []  # the columns on screen and their widths
        self.daily: list = []
        self.all_frontier = 0.0

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="filters"):
            yield Select([(r, r) for r in ("local", "frontier", "none")], prompt="any route", id="route", compact=True)
            yield Select([], prompt="any model", id="model", compact=True)
            yield Input(placeholder="from date", id="since", compact=True, tooltip="First day, YYYY-MM-DD (UTC)")
            yield Input(placeholder="to date", id="until", compact=True, tooltip="Last day, YYYY-MM-DD (UTC)")
            yield Input(placeholder="search text", id="text", compact=True, tooltip="Text in the question or the answer")
        yield Static("", id="totals")
        yield DataTable(id="turns", cursor_type="row", zebra_stripes=True)
        from textual_plotext import PlotextPlot  # plotext is only needed once this screen is shown

        with Vertical(id="chart-box"):
            yield Static("", id="chart-legend")
            yield PlotextPlot(id="chart")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.sub_title = "routing and cost"
        self.query_one("#turns", DataTable).focus()
        self.app.theme_changed_signal.subscribe(self, lambda _: self._draw_chart())

    def on_screen_resume(self) -> None:
        self.reload()  # new turns may have been answered since the screen was last shown

    # --- loading ---------------------------------------------------------------------------

    def current_filter(self) -> Any:
        def value(select_id: str) -> str | None:
            chosen = self.query_one(f"#{select_id}", Select).value
            return None if chosen is Select.NULL else str(chosen)

        dates = {}
        for name in ("since", "until"):
            box = self.query_one(f"#{name}", Input)
            text = box.value.strip()
            valid = not text or bool(DATE.match(text))
            box.set_class(not valid, "invalid")  # a half-typed date is ignored, not an error
            dates[name] = text if text and valid else None
        text = self.query_one("#text", Input).value.strip() or None
        return TurnFilter(route=value("route"), model=value("model"), text=text, **dates)

    def reload(self) -> None:
        self.generation += 1
        self._load(self.app, self.current_filter(), self.generation)

    @work(thread=True, exclusive=True, group="logs", exit_on_error=False)
    def _load(self, app: Any, where: Any, generation: int) -> None:
        try:
            desk = app.desk
            turns = desk.turns(where, limit=ROW_LIMIT)
            models = sorted({t.model for t in desk.turns(limit=5000) if t.model})
            self.post_message(LogsLoaded(generation, turns, desk.summary(where), desk.daily(where), models, desk.budget()))
        except Exception as error:
            self.post_message(msg.Failed(*explain(error), context="logs"))

    def on_logs_loaded(self, message: LogsLoaded) -> None:
        if message.generation != self.generation:
            return  # a filter changed while this load ran: a newer one is on its way
        self.turns = message.turns
        if message.models != self.models:
            self.models = message.models
            model_select = self.query_one("#model", Select)
            chosen = model_select.value
            model_select.set_options((m, m) for m in self.models)
            if chosen in self.models:
                model_select.value = chosen
        self.query_one("#totals", Static).update(summary_line(message.summary, message.budget))
        self._fill_table()
        self.daily, self.all_frontier = message.daily, message.summary.counterfactual_usd
        self._draw_chart()

    def on_select_changed(self, event: Select.Changed) -> None:
        self.reload()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#turns", DataTable).focus()

    # --- the table -------------------------------------------------------------------------

    def _fill_table(self) -> None:
        table = self.query_one("#turns", DataTable)
        column = COLUMN_BY_KEY[self.sort_column]
        self.turns.sort(key=column.sort_key, reverse=self.sort_descending)
        self._filled_width = width = self.app.size.width
        self.columns_shown, short_time = table_layout(width, self.turns, self.sort_column)
        row = table.cursor_row
        table.clear(columns=True)
        arrow = " ▼" if self.sort_descending else " ▲"
        for c, column_width in self.columns_shown:
            table.add_column(column_label(c, short_time) + (arrow if c.key == self.sort_column else ""), key=c.key, width=column_width)
        for turn in self.turns:
            cells = [(c, clip(_time(turn, short_time) if c.key == "time" else c.cell(turn), w)) for c, w in self.columns_shown]
            table.add_row(*[Text(text, justify="right" if c.numeric else "left", no_wrap=True) for c, text in cells],
                          key=str(turn.id))
        if self.turns:
            table.move_cursor(row=min(max(row, 0), len(self.turns) - 1))

    def on_resize(self) -> None:
        if getattr(self, "_filled_width", None) != self.app.size.width and self.is_mounted:
            self._fill_table()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(str(event.column_key.value))

    def sort_by(self, key: str) -> None:
        if key == self.sort_column:
            self.sort_descending = not self.sort_descending
        else:
            self.sort_column, self.sort_descending = key, key in DESCENDING_FIRST
        self._fill_table()

    def action_sort_next(self) -> None:
        keys = [c.key for c in COLUMNS]
        self.sort_by(keys[(keys.index(self.sort_column) + 1) % len(keys)])

    def action_sort_reverse(self) -> None:
        self.sort_by(self.sort_column)

    def selected_turn(self) -> Any | None:
        table = self.query_one("#turns", DataTable)
        if not self.turns or table.cursor_row < 0 or table.cursor_row >= len(self.turns):
            return None
        return self.turns[table.cursor_row]  # rows are drawn in self.turns order

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_detail()

    def action_detail(self) -> None:
        from app.tui.turn_detail import TurnDetailScreen

        turn = self.selected_turn()
        if turn is None:
            self.notify("No turn selected.")
            return
        self.app.push_screen(TurnDetailScreen(turn))

    def action_search(self) -> None:
        self.query_one("#text", Input).focus()

    # --- chart -----------------------------------------------------------------------------

    def _draw_chart(self) -> None:
        """Bars in the theme's text colours (readable on dark and light), with a legend of our
        own: plotext's legend marker for a bar series can come out blank."""
        from textual.color import Color

        plot = self.query_one("#chart")
        plt = plot.plt
        plt.clear_figure()
        variables = self.app.theme_variables
        spend_colour, saved_colour = (Color.parse(variables[name]).rgb for name in ("text-warning", "text-success"))
        if self.daily:
            days = [day[5:] for day, _, _ in self.daily]  # MM-DD: the year rarely matters on screen
            spend = [s or 0.0 for _, s, _ in self.daily]
            saved = [max((c or 0.0) - (s or 0.0), 0.0) for _, s, c in self.daily]
            plt.multiple_bar(days, [spend, saved], color=[spend_colour, saved_colour])
            plt.title(f"USD per day · all-frontier would have cost {money(self.all_frontier)}")
        else:
            plt.title("No turns match: nothing to chart")
        self.query_one("#chart-legend", Static).update(Content.assemble(
            ("██", "$text-warning"), " spend   ", ("██", "$text-success"), " saved vs all-frontier") if self.daily else "")
        plot.refresh()

    def action_toggle_chart(self) -> None:
        chart = self.query_one("#chart-box")
        chart.display = not chart.display

    # --- export ----------------------------------------------------------------------------

    def export_folder(self) -> Path:
        return Path(self.app.settings.home) / "exports"

    def action_export(self, path: str = "", problem: str = "") -> None:
        default = str(self.export_folder() / "frontdesk-turns.csv")
        self.app.push_screen(ExportScreen(path or default, self.export_folder(), len(self.turns), problem), self._export_to)

    def _export_to(self, typed: str | None) -> None:
        if not typed:
            return
        folder = self.export_folder()
        path = Path(typed).expanduser()
        path = path if path.is_absolute() else folder / path
        try:
            if path.parent == folder:  # the exports folder is ours to create; any other must exist
                folder.mkdir(parents=True, exist_ok=True)
            count = self.app.desk.export(self.current_filter(), path)
        except OSError:
            problem = f"Cannot write {path}: folder doesn't exist or isn't writable; choose another path."
            self.notify(problem, title="Export failed", severity="error", timeout=10, markup=False)
            self.action_export(typed, problem)  # the dialog again, with what was typed
            return
        except Exception as error:
            title, fix = explain(error)
            self.notify(fix, title=f"Export failed: {title}", severity="error", timeout=10, markup=False)
            return
        self.notify(str(path), title=f"Exported {count} turn(s)", timeout=10, markup=False)


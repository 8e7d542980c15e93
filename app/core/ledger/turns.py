"""The local ledger: every turn, answered, failed or refused, written once by the pipeline.

SQLite under the data dir. Schema changes are named, append-only migrations recorded in
the `migrations` table (never edit one that has shipped; add the next). Each turn is one
INSERT in its own transaction, so a killed process loses at most the turn in flight and
never leaves half a row.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from app.core.errors import LedgerError
from app.core.ledger.migrations import migrate, pending

# Who answered a turn: the local model, a verbatim docs quote, the frontier model, or nobody
# (refused, handed off, stopped, failed).
ANSWERED_BY = ("local-model", "docs-quote", "frontier", "none")
TIERS = ANSWERED_BY[:3]

# The notes under an answer. draft-withdrawn: a local draft was taken back (and why, in a line);
# local-only: nothing could be sent; degraded: the answer came from a fallback (why, in one
# sentence); failed: no answer (the whole error, with its fix); extractive: a docs quote.
NOTE_KINDS = ("draft-withdrawn", "local-only", "degraded", "failed", "extractive")

_JSON_COLUMNS = {"sources", "grounding", "actions", "egress_passage_ids", "notes"}


@dataclass
class Turn:
    """One question and what became of it: the row the ledger keeps and `ask --json` prints."""

    question: str
    conversation_id: str
    route: str = "none"  # local | frontier | none (refused before any model)
    topic: str = ""
    reason: str = ""
    model: str = ""
    outcome: str = "failed"  # answered | extractive | refused | handoff | stopped | failed
    answered_by: str = "none"  # local-model | docs-quote | frontier | none
    answer: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    frontier_cost_usd: float = 0.0  # the part of cost_usd the frontier billed (the budget counts it)
    counterfactual_cost_usd: float = 0.0
    retrieval_ms: float | None = None
    first_token_ms: float | None = None
    total_ms: float | None = None
    sources: list[dict] = field(default_factory=list)  # [{"id", "file", "heading", "score", "text"}]
    error: str = ""
    grounding: dict = field(default_factory=dict)  # {"passed": bool, "unsupported": [...]}
    actions: list[str] = field(default_factory=list)  # what the pipeline did, in order (for the record)
    notes: list[dict] = field(default_factory=list)  # [{"kind", "text"}]: what to tell the user; kinds in NOTE_KINDS
    egress_passage_ids: list[str] = field(default_factory=list)  # passages that left the machine
    redactions: int = 0
    needs_human: str = ""  # why a person should look at this turn ('' = no need)
    handoff: str = ""  # the ticket: '' (none) | open | done
    created_at: str = ""
    id: int | None = None

    @property
    def passage_ids(self) -> list[str]:
        return [s["id"] for s in self.sources]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["passage_ids"] = self.passage_ids
        return data


_TURN_COLUMNS = [f.name for f in fields(Turn) if f.name != "id"]


def parse_day(text: str, what: str = "date") -> str:
    """A YYYY-MM-DD date (or a full ISO timestamp), checked; the ledger's times are UTC."""
    text = text.strip()
    try:
        if len(text) == 10:
            date.fromisoformat(text)
        else:
            datetime.fromisoformat(text)
    except ValueError:
        raise LedgerError(f"Bad {what} {text!r}", "Expected a date as YYYY-MM-DD (UTC), e.g. 2026-11-01.") from None
    return text


@dataclass(frozen=True)
class TurnFilter:
    route: str | None = None
    model: str | None = None
    outcome: str | None = None
    answered_by: str | None = None
    since: str | None = None  # ISO date or datetime, inclusive
    until: str | None = None  # ISO date (whole day included) or datetime, exclusive
    text: str | None = None  # substring of question or answer
    conversation_id: str | None = None
    egress_only: bool = False
    handoff: str | None = None  # "open" or "done": the handoff queue

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for column in ("route", "outcome", "answered_by", "conversation_id", "handoff"):
            if getattr(self, column):
                clauses.append(f"{column} = ?")
                params.append(getattr(self, column))
        if self.model:  # "claude" or "sonnet" finds claude-sonnet-5-5
            clauses.append("model LIKE ?")
            params.append(f"%{self.model}%")
        if self.since:
            clauses.append("created_at >= ?")
            params.append(self.since)
        if self.until:
            clauses.append("created_at < ?")
            # A bare date means "through the end of that day".
            params.append(self.until + "T99" if len(self.until) == 10 else self.until)
        if self.text:
            clauses.append("(question LIKE ? OR answer LIKE ?)")
            params += [f"%{self.text}%"] * 2
        if self.egress_only:
            clauses.append("egress_passage_ids != '[]'")
        return (" WHERE " + " AND ".join(f"({c})" for c in clauses)) if clauses else "", params


@dataclass(frozen=True)
class Tier:
    """Checked answers by one tier: how many, what they cost, what all-frontier would have."""
    answers: int = 0
    spend_usd: float = 0.0
    counterfactual_usd: float = 0.0

    @property
    def savings_usd(self) -> float:
        return self.counterfactual_usd - self.spend_usd

    def to_json(self, turns: int) -> dict[str, Any]:
        return {"answers": self.answers, "share": round(self.answers / turns, 4) if turns else 0.0,
                "spend_usd": round(self.spend_usd, 6), "counterfactual_usd": round(self.counterfactual_usd, 6),
                "savings_usd": round(self.savings_usd, 6)}


# A turn counts as answered by its tier only when the customer got an answer that passed
# the grounding check. Everything else (refused, handed off, stopped, failed, a frontier
# answer shown with unverified marks) delivered nothing an all-frontier desk would have
# been paid for, so it claims no saving: its counterfactual is taken to be its spend.
_CHECKED = "(answered_by != 'none' AND json_extract(grounding, '$.passed') = 1)"


@dataclass(frozen=True)
class Summary:
    turns: int
    local: int  # ended on the local route
    frontier: int  # ended on the frontier route
    spend_usd: float
    counterfactual_usd: float  # checked answers at all-frontier prices, other turns at their spend
    tiers: dict[str, Tier] = field(default_factory=dict)

    def tier(self, name: str) -> Tier:
        return self.tiers.get(name, Tier())

    @property
    def answered_locally(self) -> int:
        """Checked answers that never needed the frontier: the local model's and the docs quotes."""
        return self.tier("local-model").answers + self.tier("docs-quote").answers

    @property
    def share_local(self) -> float:
        return self.answered_locally / self.turns if self.turns else 0.0

    @property
    def savings_usd(self) -> float:
        return self.counterfactual_usd - self.spend_usd

    @property
    def savings_pct(self) -> float:
        return 100.0 * self.savings_usd / self.counterfactual_usd if self.counterfactual_usd else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "turns": self.turns, "local": self.local, "frontier": self.frontier,
            "answered_locally": self.answered_locally,
            "share_local": round(self.share_local, 4), "spend_usd": round(self.spend_usd, 6),
            "counterfactual_usd": round(self.counterfactual_usd, 6), "savings_usd": round(self.savings_usd, 6),
            "savings_pct": round(self.savings_pct, 2),
            "by_tier": {name: self.tier(name).to_json(self.turns) for name in TIERS},
        }


class Ledger:
    """The turns table. Constructing one never fails: a ledger that cannot be opened (damaged,
    locked, read-only) raises its LedgerError from each call instead, so an answer can still be
    given and the pipeline reports the failed write as a warning."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()  # the TUI writes from workers; SQLite connections aren't shared
        self._db: sqlite3.Connection | None = None
        try:
            self._connection()
        except LedgerError:
            pass  # said again by the first call that needs the ledger

    def _connection(self) -> sqlite3.Connection:
        """The open database, opened on first need (again after a failed try: a lock may have gone)."""
        if self._db is None:
            self._db = self._open()
        return self._db

    def _open(self) -> sqlite3.Connection:
        if not _writable(self.path):
            return self._open_read_only()
        db = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA busy_timeout=5000")  # first: another process may be creating the file too
            _use_wal(db)
            migrate(db)
            return db
        except (sqlite3.DatabaseError, OSError) as error:
            if db is not None:
                db.close()
            raise _ledger_error(self.path, "opened", error) from None

    def _open_read_only(self) -> sqlite3.Connection:
        """Reading (logs, export) works in a data dir this user cannot write; recording does not."""
        if not self.path.is_file():
            raise _read_only_error(self.path)
        # A WAL database can be opened read-only only while its -shm file exists; when it does
        # not (every writer closed cleanly) nobody can be writing it, so it is immutable.
        for query in ("mode=ro", "mode=ro&immutable=1"):
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?{query}", uri=True, check_same_thread=False,
                                 isolation_level=None)
            db.row_factory = sqlite3.Row
            try:
                waiting = pending(db)
                break
            except sqlite3.DatabaseError as error:
                db.close()
                if "unable to open" not in str(error):
                    raise _ledger_error(self.path, "opened", error) from None
        else:
            raise _read_only_error(self.path)
        if waiting:  # an upgrade would have to write
            db.close()
            raise _read_only_error(self.path)
        return db

    def applied_migrations(self) -> list[str]:
        return [row[0] for row in self._execute("SELECT name FROM migrations ORDER BY name")]

    def _execute(self, sql: str, params: Iterable[Any] = (), fetch: str = "all", doing: str = "read") -> Any:
        """Every statement goes through here, so a locked or damaged file becomes a LedgerError.

        fetch: "all" rows, "one" row, or "id" (the inserted row's id).
        """
        try:
            with self._lock:
                cursor = self._connection().execute(sql, list(params))
                return {"all": cursor.fetchall, "one": cursor.fetchone, "id": lambda: cursor.lastrowid}[fetch]()
        except sqlite3.DatabaseError as error:
            raise _ledger_error(self.path, doing, error) from None

    def record(self, turn: Turn) -> Turn:
        turn.created_at = turn.created_at or now_iso()
        values = [json.dumps(getattr(turn, c)) if c in _JSON_COLUMNS else getattr(turn, c) for c in _TURN_COLUMNS]
        turn.id = self._execute(
            f"INSERT INTO turns ({', '.join(_TURN_COLUMNS)}) VALUES ({', '.join('?' * len(_TURN_COLUMNS))})", values,
            fetch="id", doing="written",
        )
        return turn

    def turns(self, where: TurnFilter = TurnFilter(), limit: int | None = None, newest_first: bool = True) -> list[Turn]:
        clause, params = where.where()
        sql = f"SELECT * FROM turns{clause} ORDER BY id {'DESC' if newest_first else 'ASC'}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        rows = self._execute(sql, params)
        return [_turn(row) for row in rows]

    def summary(self, where: TurnFilter = TurnFilter()) -> Summary:
        clause, params = where.where()
        row = self._execute(
            "SELECT COUNT(*), SUM(route = 'local'), SUM(route = 'frontier'), "
            f"COALESCE(SUM(cost_usd), 0), COALESCE(SUM(CASE WHEN {_CHECKED} THEN counterfactual_cost_usd ELSE cost_usd END), 0) "
            f"FROM turns{clause}", params, fetch="one",
        )
        tiers = self._execute(
            f"SELECT answered_by, COUNT(*), SUM(cost_usd), SUM(counterfactual_cost_usd) FROM turns{clause}"
            f"{' AND ' if clause else ' WHERE '}{_CHECKED} GROUP BY answered_by", params,
        )
        return Summary(row[0], row[1] or 0, row[2] or 0, row[3], row[4],
                       {r[0]: Tier(r[1], r[2] or 0.0, r[3] or 0.0) for r in tiers})

    def daily(self, where: TurnFilter = TurnFilter()) -> list[tuple[str, float, float]]:
        """(day, spend, counterfactual) per day, oldest first: the spend chart's data."""
        clause, params = where.where()
        rows = self._execute(
            f"SELECT substr(created_at, 1, 10) AS day, SUM(cost_usd), "
            f"SUM(CASE WHEN {_CHECKED} THEN counterfactual_cost_usd ELSE cost_usd END) FROM turns{clause} "
            "GROUP BY day ORDER BY day", params,
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def spend_since(self, since_iso: str) -> float:
        """What the frontier billed since then, on any route (the monthly budget's measure)."""
        row = self._execute(
            "SELECT COALESCE(SUM(frontier_cost_usd), 0) FROM turns WHERE created_at >= ?", (since_iso,), fetch="one",
        )
        return row[0]

    def turn(self, turn_id: int) -> Turn:
        row = self._execute("SELECT * FROM turns WHERE id = ?", (turn_id,), fetch="one")
        if row is None:
            raise LedgerError(f"No turn #{turn_id} in the ledger",
                              "List turns with `frontdesk logs`, the handoff queue with `frontdesk handoff`.")
        return _turn(row)

    def set_handoff(self, turn_id: int, status: str, reason: str = "handed to a human") -> Turn:
        """Open, close ("done") or reopen the handoff ticket of a turn. A turn the pipeline did
        not flag gets `reason` (a person asked for it). Returns the turn as stored now."""
        if status not in ("open", "done"):
            raise ValueError(f"handoff status {status!r}")
        self.turn(turn_id)  # says so when there is no such turn
        self._execute("UPDATE turns SET handoff = ?, needs_human = CASE WHEN needs_human = '' THEN ? ELSE needs_human END "
                      "WHERE id = ?", (status, reason, turn_id), fetch="one", doing="written")
        return self.turn(turn_id)

    def conversations(self, limit: int = 50) -> list[tuple[str, str, str, int]]:
        """(conversation_id, started_at, first question, turns), newest first."""
        rows = self._execute(
            "SELECT conversation_id, MIN(created_at), "
            "(SELECT question FROM turns t2 WHERE t2.conversation_id = t.conversation_id ORDER BY id LIMIT 1), "
            "COUNT(*) FROM turns t GROUP BY conversation_id ORDER BY MAX(id) DESC LIMIT ?", (limit,),
        )
        return [tuple(r) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch a new ledger to WAL (readers never wait for the writer); an old one is WAL already.

    The switch needs the file to itself, and SQLite answers "locked" at once, without waiting,
    when another process is opening the same new ledger: by the next try it has usually
    switched it, which is all this one wanted.
    """
    for _ in range(50):
        try:
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            if mode == "wal" or db.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal":
                return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
        time.sleep(0.1)
    raise sqlite3.OperationalError("database is locked")


def _writable(path: Path) -> bool:
    """Whether this user may write the ledger: SQLite writes its file and, beside it, its journals."""
    folder = next(p for p in path.parents if p.exists())  # the data dir, or the folder it will be made in
    return os.access(folder, os.W_OK | os.X_OK) and (not path.exists() or os.access(path, os.W_OK))


def _read_only_error(path: Path) -> LedgerError:
    return LedgerError(f"The data dir {path.parent} is read-only: the ledger cannot be "
                       f"{'written' if path.is_file() else 'created'}",
                       "Fix its permissions, or set FRONTDESK_HOME to a folder you can write.")


def _ledger_error(path: Path, doing: str, error: Exception) -> LedgerError:
    text = str(error)
    if isinstance(error, OSError) or "readonly" in text or "unable to open" in text:
        # A permissions problem, never "damaged": moving the file aside would not help.
        if not _writable(path) or "readonly" in text:
            return _read_only_error(path)
        return LedgerError(f"The ledger at {path} cannot be {doing}: {text}",
                           "Check that the data dir (FRONTDESK_HOME) and the ledger file can be read and written.")
    if "locked" in text or "busy" in text:
        fix = "Another program holds the ledger (another frontdesk, or a SQLite browser): close it and try again."
    else:
        fix = f"If the file is damaged, move it aside (e.g. mv {path} {path}.bad); a new ledger is created on the next run."
    return LedgerError(f"The ledger at {path} cannot be {doing}: {text}", fix)


def _turn(row: sqlite3.Row) -> Turn:
    data = {key: row[key] for key in row.keys()}
    for column in _JSON_COLUMNS:
        data[column] = json.loads(data[column])
    return Turn(**data)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")

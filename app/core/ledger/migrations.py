"""The ledger's schema: named, append-only migrations, recorded in the `migrations` table.

Never edit one that has shipped; add the next. Each is applied once, in order, in one
transaction with the others pending.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from typing import Iterator

MIGRATIONS: list[tuple[str, str]] = [
    ("001_create_turns", """
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,
            conversation_id TEXT NOT NULL,
            question TEXT NOT NULL,
            route TEXT NOT NULL,
            topic TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            model TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL,
            answer TEXT NOT NULL DEFAULT '',
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL NOT NULL DEFAULT 0,
            counterfactual_cost_usd REAL NOT NULL DEFAULT 0,
            retrieval_ms REAL,
            first_token_ms REAL,
            total_ms REAL,
            sources TEXT NOT NULL DEFAULT '[]',
            error TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX turns_created_at ON turns(created_at);
        CREATE INDEX turns_conversation ON turns(conversation_id);
    """),
    ("002_grounding_and_egress", """
        ALTER TABLE turns ADD COLUMN grounding TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE turns ADD COLUMN actions TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE turns ADD COLUMN egress_passage_ids TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE turns ADD COLUMN redactions INTEGER NOT NULL DEFAULT 0;
    """),
    # Who wrote the answer the customer got. Older rows are filled in from what they recorded:
    # a quote was outcome 'extractive'; a kept answer was the model of its final route.
    ("003_answered_by", """
        ALTER TABLE turns ADD COLUMN answered_by TEXT NOT NULL DEFAULT 'none';
        UPDATE turns SET answered_by = CASE
            WHEN outcome = 'extractive' THEN 'docs-quote'
            WHEN outcome = 'answered' AND route = 'local' THEN 'local-model'
            WHEN outcome = 'answered' AND route = 'frontier' THEN 'frontier'
            ELSE 'none' END;
        CREATE INDEX turns_answered_by ON turns(answered_by);
    """),
    # What the user should read under an answer, as (kind, text) pairs the pipeline writes, so
    # front ends render notes by kind instead of matching the pipeline's prose. Older rows get
    # what can be told from their columns: the error's first line, and the quote's note.
    # (char(59) is ';', which would end the statement: migrations are split on it.)
    ("004_turn_notes", """
        ALTER TABLE turns ADD COLUMN notes TEXT NOT NULL DEFAULT '[]';
        UPDATE turns SET notes = json_array(json_object(
            'kind', CASE WHEN outcome = 'failed' THEN 'failed' ELSE 'degraded' END,
            'text', substr(error, 1, instr(error || char(10), char(10)) - 1)))
          WHERE error != '';
        UPDATE turns SET notes = json_insert(notes, '$[#]', json_object(
            'kind', 'extractive', 'text', 'Quoted from your docs' || char(59) || ' not verified by the frontier model.'))
          WHERE outcome = 'extractive';
    """),
    # What the frontier billed, apart from the local side: the monthly budget counts this,
    # whatever route the turn ended on (an escalation cut off mid-stream stays route 'local').
    # Older rows: a frontier-routed turn's cost was the frontier's.
    ("005_frontier_cost", """
        ALTER TABLE turns ADD COLUMN frontier_cost_usd REAL NOT NULL DEFAULT 0;
        UPDATE turns SET frontier_cost_usd = cost_usd WHERE route = 'frontier';
    """),
    # The human handoff queue: why a person should look at a turn ('' = no need) and where the
    # ticket stands. Older rows that offered a handoff (nothing relevant in the docs) join it.
    ("006_handoff", """
        ALTER TABLE turns ADD COLUMN needs_human TEXT NOT NULL DEFAULT '';
        ALTER TABLE turns ADD COLUMN handoff TEXT NOT NULL DEFAULT '';
        UPDATE turns SET needs_human = 'no relevant source in the docs', handoff = 'open' WHERE outcome = 'handoff';
        CREATE INDEX turns_handoff ON turns(handoff);
    """),
]


def statements(sql: str) -> Iterator[str]:
    """A migration's statements (split on ';', which is why none may contain one in a literal)."""
    return filter(str.strip, sql.split(";"))


def migrate(db: sqlite3.Connection) -> None:
    """Apply the pending migrations in one transaction.

    Another process may be opening the same new ledger at this moment, so what is applied
    is read again under the write lock (BEGIN IMMEDIATE): whichever comes second finds the
    other's migrations done and applies nothing.
    """
    db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    if not pending(db):  # the usual case: no write lock taken
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        for name, sql in pending(db):
            for statement in statements(sql):
                db.execute(statement)
            db.execute("INSERT INTO migrations VALUES (?, ?)", (name, datetime.now(timezone.utc).isoformat(timespec="milliseconds")))
        db.execute("COMMIT")
    except Exception:
        if db.in_transaction:  # some errors (a full disk) have rolled it back already
            db.execute("ROLLBACK")
        raise


def pending(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """The migrations this database has not applied yet, in order."""
    try:
        applied = {row[0] for row in db.execute("SELECT name FROM migrations")}
    except sqlite3.OperationalError as error:
        if "no such table" not in str(error):
            raise
        applied = set()  # an empty file (read-only, so the table could not be created)
    return [(name, sql) for name, sql in MIGRATIONS if name not in applied]

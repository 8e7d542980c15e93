"""Keyword search over the store's chunks: SQLite FTS5 with bm25 ranking.

Dense vectors find meaning but blur exact terms a customer pastes: an env var
(`RAILWAY_RUN_UID`), a flag (`--since`), an error (`ENOTFOUND redis.railway.internal`).
bm25 over the same chunks finds those; retrieval fuses both rankings.

The Chroma store stays the one source of truth. This index is derived from it: each chunk's
id, page (docs folder and file), heading path, text, offsets, vector and file hash, and the
store's `fingerprint` (collection id and write token) as of its last sync. Every search first
compares fingerprints (cheaply: see `Store.fingerprint`) and, when they differ, syncs: it
drops the chunks the store no longer has or whose file's hash changed, and reads in the ones
it lacks. A chunk id is a hash of its folder, file, heading path and text, so what the index
keeps under an id stays true; ingest writes every chunk of a changed file again with the new
hash, so a chunk that kept its id but moved is read again too. Whatever changed the store (an
ingest here or in another process, a changed or deleted file, a store rebuilt, restored or
copied in from elsewhere) changed its fingerprint.

A store mid-write, or left so by a killed ingest, says so in its token. The index then syncs
on every search, comparing ids only (hashes would mean reading every record's metadata each
time), and is not `exact`: retrieval reads its passages from Chroma until a write completes.
When it is exact, retrieval reads the passages it ranked and the chunk after a passage from
here (`passages`, `following`) instead of asking Chroma.

The index lives in `<home>/keywords.sqlite3` so a new process needn't rebuild it; being
derived, it may be deleted at any time. A data dir this user cannot write (or a damaged
file) gets an in-memory index built from the store instead.
"""
from __future__ import annotations

import re
import sqlite3
import threading
from contextlib import suppress
from pathlib import Path
from typing import NamedTuple

import numpy as np

from app.core.docs.store import Fingerprint, Store
from app.core.passage import Passage

FILE_NAME = "keywords.sqlite3"
# Bump when the table layout or tokenizer changes: an index of another schema is rebuilt.
SCHEMA = "6"
_PAGE = 1000  # chunks fetched from the store per call while syncing
# Headings name what a section is about in few words; a match there says more than one in a
# long body (the bm25 weights of the heading and body columns).
HEADING_WEIGHT, BODY_WEIGHT = 2.0, 1.0
_MAX_TERMS = 40  # a pasted log line shouldn't turn into a hundred-term query
# What a query leaves out (see _useful), measured with bench/retrieval.py and bench/ingest.py:
COMMON_SHARE = 0.5  # terms in this share of the chunks or more: bm25 gives them no weight
MAX_MATCHES = 2000  # terms in more chunks than this: little weight, and most of a slow query's time
QUERY_TERMS = 8  # beyond the rarest 8 terms: as good as all of them, and faster

# Words joined by `_ . - / :` stay together as one identifier (RAILWAY_RUN_UID, pg_resetwal,
# redis.railway.internal, X-Railway-Edge); the tokenizer splits them, so they are searched as
# a phrase of their parts, which matches only where the parts appear in that order.
_TERM = re.compile(r"[^\W_]+(?:[_.\-/:][^\W_]+)*")
_PART = re.compile(r"[^\W_]+")
_APOSTROPHE = re.compile(r"(?<=\w)['’](?=\w)")
# Common English words that every chunk has: matching them says nothing about the topic.
STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren arent as at be because been before being
below between both but by can cannot cant could couldn couldnt did didn didnt do does doesn doesnt doing don dont
down during each few for from further get gets getting got had hadn hadnt has hasn hasnt have haven havent having
he her here hers herself him himself his how i if im in into is isn isnt it its itself ive just let lets me
more most my myself no nor not now of off on once only or other our ours ourselves out over own same she should
shouldn shouldnt so some such than that thats the their theirs them themselves then there these they this those
through to too u under until up us very was wasn wasnt we were weren what whats when where which while who whom
why will with won wont would wouldn wouldnt you your yours yourself yourselves
""".split())


class Hit(NamedTuple):
    id: str
    page: str  # the chunk's docs folder and file (`page_key`): which page it is from
    score: float  # bm25, higher is better; comparable only within one question's hits


class Neighbour(NamedTuple):
    id: str
    heading: str
    text: str
    end: int


def page_key(root: str, file: str) -> str:
    return f"{root}\x00{file}"


def query_terms(question: str) -> list[str]:
    """The question's terms as FTS5 strings, each quoted (nothing a customer types, `*`, `:`,
    `AND` or a quote, is read as query syntax); an identifier both as a phrase and by its parts."""
    terms: list[str] = []
    for match in _TERM.finditer(_APOSTROPHE.sub("", question.lower())):
        parts = _PART.findall(match.group())
        if len(parts) > 1:
            terms.append(" ".join(parts))
        terms.extend(p for p in parts if p not in STOPWORDS)
    return [f'"{term}"' for term in list(dict.fromkeys(terms))[:_MAX_TERMS]]


class KeywordIndex:
    def __init__(self, store: Store, path: Path | None = None):
        """`path`: the index file (default `<home>/keywords.sqlite3`); in memory when it can't be written."""
        self.store = store
        self.path = path or store.settings.home / FILE_NAME
        self._db: sqlite3.Connection | None = None
        self._synced: Fingerprint | None = None  # what this process last found the index to mirror
        self.exact = False  # the last sync was of a settled store: offsets and all are the store's
        self._rows: int | None = None  # chunks in the index, and how many each term matches (see _useful)
        self._matches: dict[str, int] = {}
        self._lock = threading.Lock()  # one connection, shared by a front end's threads

    def search_many(self, questions: list[str], n: int) -> list[list[Hit]]:
        """Per question, up to n hits, best first."""
        with self._lock:
            db = self._sync(self.store.fingerprint())
            results = []
            for question in questions:
                query = " OR ".join(self._useful(db, query_terms(question)))
                rows = db.execute(
                    "SELECT ids.id, ids.page, bm25(chunks, ?, ?) AS rank FROM chunks JOIN ids ON ids.rowid = chunks.rowid"
                    " WHERE chunks MATCH ? ORDER BY rank LIMIT ?", (HEADING_WEIGHT, BODY_WEIGHT, query, n),
                ).fetchall() if query else []
                results.append([Hit(chunk_id, page, -rank) for chunk_id, page, rank in rows])  # FTS5's bm25: lower is better
            return results

    def pages(self, ids: set[str]) -> dict[str, str]:
        """The page (`page_key`) of each of these chunks the index holds."""
        with self._lock:
            wanted = sorted(ids)
            marks = ",".join("?" * len(wanted))
            return dict(self._connection().execute(f"SELECT id, page FROM ids WHERE id IN ({marks})", wanted)) if wanted else {}

    def passages(self, ids: list[str]) -> dict[str, tuple[Passage, np.ndarray]]:
        """chunk id -> its passage (score 0) and stored vector, for those the index holds, as of the last sync."""
        with self._lock:
            marks = ",".join("?" * len(ids))
            rows = self._connection().execute(
                "SELECT ids.id, ids.page, ids.start, ids.end, vectors.vector, chunks.heading, chunks.body FROM ids"
                " JOIN vectors ON vectors.rowid = ids.rowid JOIN chunks ON chunks.rowid = ids.rowid"
                f" WHERE ids.id IN ({marks})", ids) if ids else []
            found = {}
            for chunk_id, page, start, end, vector, heading, text in rows:
                root, file = page.split("\x00", 1)
                found[chunk_id] = (Passage(id=chunk_id, text=text, file=file, heading=heading, score=0.0, root=root,
                                           start=start, end=end), np.frombuffer(vector, dtype=np.float32))
            return found

    def following(self, ids: list[str]) -> dict[str, Neighbour]:
        """chunk id -> the next chunk of the same file, for those that have one, as of the last sync."""
        with self._lock:
            db = self._connection()
            found = {}
            for chunk_id in ids:
                row = db.execute(
                    "SELECT next.id, chunks.heading, chunks.body, next.end FROM ids AS this"
                    " JOIN ids AS next ON next.page = this.page AND next.start > this.start"
                    " JOIN chunks ON chunks.rowid = next.rowid"
                    " WHERE this.id = ? ORDER BY next.start LIMIT 1", (chunk_id,)).fetchone()
                if row:
                    found[chunk_id] = Neighbour(*row)
            return found

    def sync(self) -> None:
        """Make the index mirror the store now (a front end may call this while it warms up)."""
        with self._lock:
            self._sync(self.store.fingerprint())

    def _useful(self, db: sqlite3.Connection, terms: list[str]) -> list[str]:
        """The terms worth searching for. FTS5 scores every chunk a term matches, so common terms
        cost the most and say the least: one in half the chunks ("railway" in the Railway docs)
        gets no bm25 weight at all. How many chunks each term matches is counted once per sync."""
        if self._rows is None:
            self._rows = db.execute("SELECT count(*) FROM ids").fetchone()[0]
        for term in terms:
            if term not in self._matches:
                self._matches[term] = db.execute("SELECT count(*) FROM chunks WHERE chunks MATCH ?", (term,)).fetchone()[0]
        useful = [term for term in terms if self._matches[term] < min(COMMON_SHARE * self._rows, MAX_MATCHES)]
        # The rarest terms carry the ranking; a long question's commoner ones mostly add time.
        return sorted(useful, key=self._matches.__getitem__)[:QUERY_TERMS]

    def _sync(self, fingerprint: Fingerprint) -> sqlite3.Connection:
        db = self._connection()
        if fingerprint == self._synced and fingerprint.settled:
            return db
        key = _key(fingerprint)
        with db:  # one transaction: another process syncing the same file waits, then finds it done
            db.execute("BEGIN IMMEDIATE")
            if _meta(db, "fingerprint") != key or not fingerprint.settled:
                self._apply_diff(db, fingerprint.settled)
                # A store mid-write may change under us without a new token: trust no sync of it.
                db.execute("INSERT OR REPLACE INTO meta VALUES ('fingerprint', ?)", (key if fingerprint.settled else "",))
        self._synced = fingerprint
        self.exact = fingerprint.settled
        self._rows, self._matches = None, {}  # the chunks may have changed: count again
        return db

    def _apply_diff(self, db: sqlite3.Connection, settled: bool) -> None:
        """Read after the fingerprint: a write in between only makes the next search sync again.
        A chunk whose file's hash changed is read again (it may have moved); mid-write, only ids
        are compared and a chunk read then keeps no hash, so the next full comparison reads it again."""
        wanted = self.store.versions() if settled else dict.fromkeys(self.store.ids())
        have = dict(db.execute("SELECT id, file_sha FROM ids"))
        stale = [i for i, sha in have.items() if i not in wanted or (wanted[i] is not None and wanted[i] != sha)]
        for i in range(0, len(stale), _PAGE):
            rows = [(rowid,) for (rowid,) in db.execute(
                f"SELECT rowid FROM ids WHERE id IN ({','.join('?' * len(stale[i:i + _PAGE]))})", stale[i:i + _PAGE])]
            for table in ("chunks", "ids", "vectors"):
                db.executemany(f"DELETE FROM {table} WHERE rowid = ?", rows)
        kept = have.keys() - set(stale)
        new = sorted(i for i in wanted if i not in kept)
        for i in range(0, len(new), _PAGE):
            for passage, vector in self.store.get_with_vectors(new[i:i + _PAGE]):
                rowid = db.execute("INSERT INTO ids(id, page, start, end, file_sha) VALUES (?, ?, ?, ?, ?)",
                                   (passage.id, page_key(passage.root, passage.file), passage.start, passage.end,
                                    wanted.get(passage.id))).lastrowid
                db.execute("INSERT INTO chunks(rowid, heading, body) VALUES (?, ?, ?)", (rowid, passage.heading, passage.text))
                db.execute("INSERT INTO vectors(rowid, vector) VALUES (?, ?)", (rowid, np.asarray(vector, dtype=np.float32).tobytes()))

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            try:
                self._db = _open(self.path) if _writable(self.path) and not self.store.read_only else _open(None)
            except sqlite3.DatabaseError:  # damaged: it is only derived data, so start again
                with suppress(OSError):
                    self.path.unlink()
                try:
                    self._db = _open(self.path)
                except sqlite3.Error:
                    self._db = _open(None)
        return self._db


def _open(path: Path | None) -> sqlite3.Connection:
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE in _sync).
    db = sqlite3.connect(str(path) if path else ":memory:", isolation_level=None, check_same_thread=False, timeout=30)
    if path:
        db.execute("PRAGMA journal_mode=WAL")  # readers in other processes don't wait for a sync
    db.execute("PRAGMA temp_store=MEMORY")  # sorting a query's matches never leaves a file behind
    db.execute("CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)")
    if _meta(db, "schema") != SCHEMA:
        with db:
            db.execute("BEGIN IMMEDIATE")
            if _meta(db, "schema") == SCHEMA:  # another process made it meanwhile (and may have synced it)
                return db
            db.execute("DROP TABLE IF EXISTS chunks")
            db.execute("DROP TABLE IF EXISTS ids")
            db.execute("DROP TABLE IF EXISTS vectors")
            db.execute("DELETE FROM meta")
            db.execute("CREATE TABLE ids(rowid INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, page TEXT NOT NULL,"
                       " start INTEGER NOT NULL, end INTEGER NOT NULL, file_sha TEXT)")
            # Apart from `ids`, which every keyword match is joined with: small rows read fast.
            db.execute("CREATE TABLE vectors(rowid INTEGER PRIMARY KEY, vector BLOB NOT NULL)")
            db.execute("CREATE INDEX ids_by_place ON ids(page, start)")
            # Porter stemming: "deploys", "deployed", "deploying" all find "deploy".
            db.execute("CREATE VIRTUAL TABLE chunks USING fts5(heading, body, tokenize = 'porter unicode61 remove_diacritics 2')")
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA,))
    return db


def _meta(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def _key(fingerprint: Fingerprint) -> str:
    return f"{fingerprint.collection}/{fingerprint.token}"


def _writable(path: Path) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            return True
    except OSError:
        return False

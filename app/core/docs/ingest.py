"""Incremental folder sync: make the store mirror a docs folder, embedding as little as possible.

- An unchanged file (same bytes hash as stored) is not even parsed.
- A changed file's chunks are replaced; chunks whose text is already stored (in this or
  any file, which covers renames and edits to part of a file) reuse their vector.
- A file that disappeared loses its chunks; a file that fails to read keeps its old ones,
  so a transient error never empties the index.
- Writes go upsert before delete (a batch of files at a time), so a killed ingest leaves
  at worst records the next run recognises as stale and removes: a file the store holds in
  more than one version (which only an interrupted ingest leaves) is re-synced, and the
  summary counts the records that removed as `repaired`.
- One ingest at a time per data dir: `ingest_folder` holds an exclusive flock on
  `<home>/ingest.lock` (the holder's pid written inside) from its first event to its last,
  however it ends (finished, generator closed early, an exception, Ctrl-C). A second ingest
  waits for it, up to LOCK_WAIT_SECONDS (the environment variable FRONTDESK_INGEST_LOCK_WAIT
  overrides it, in seconds; 0 = don't wait), then refuses with `IngestLocked`, naming the
  holder's pid. The OS drops a killed process's flock, so a file left by `kill -9` never
  blocks. Questions (search, ask) never take the lock: they read the store while it is written.
  A data dir this user cannot write takes no lock (the store refuses the writes itself).

`ingest_folder` yields events; front ends render them and never touch the store.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from app.core.docs.chunking import Chunk, chunk_document
from app.core.docs.documents import UnreadableFile, is_supported, load_document
from app.core.docs.embeddings import Embedder, Tokenizer
from app.core.docs.store import Record, Store
from app.core.errors import DocsFolderError
from app.core.events import Event

# Chunks collected across files before one embedding call. Large batches let
# sentence-transformers sort by length and pad less; writes stay per file either way.
FLUSH_CHUNKS = 1024
# Part of every file's recorded hash. Bump it when loaders or chunking change what a file
# turns into: the next ingest then re-reads every file once (reusing the vectors of chunk
# texts that didn't change) instead of keeping chunks the current code would not make.
# 4: chunk ids include the docs folder; the re-read replaces each file's old-scheme ids.
PARSER_VERSION = b"frontdesk-parser-4\n"
# How long a second ingest on the same data dir waits for the first before refusing.
LOCK_WAIT_SECONDS = 30.0
LOCK_WAIT_ENV = "FRONTDESK_INGEST_LOCK_WAIT"  # overrides LOCK_WAIT_SECONDS (seconds, >= 0)
LOCK_FILE = "ingest.lock"
_LOCK_POLL = 0.2  # seconds between attempts while waiting


class IngestLocked(DocsFolderError):
    """Another process holds the data dir's ingest lock past the wait limit."""


@dataclass(frozen=True)
class IngestWaiting(Event):
    """Another ingest holds the data dir: this one waits up to `seconds` before refusing."""
    home: Path
    pid: int | None
    seconds: float


@dataclass(frozen=True)
class IngestStarted(Event):
    root: Path
    total_files: int


@dataclass(frozen=True)
class FileIngested(Event):
    file: str
    status: str  # added | changed | unchanged | removed | renamed | failed
    chunks: int = 0
    reason: str = ""  # why it failed, or where it was renamed from


@dataclass
class IngestSummary:
    root: Path
    added: int = 0
    changed: int = 0
    removed: int = 0
    unchanged: int = 0
    renamed: int = 0
    failed: list[FileIngested] = field(default_factory=list)
    chunks_total: int = 0  # chunks of this folder in the store afterwards
    chunks_embedded: int = 0
    chunks_reused: int = 0
    repaired: int = 0  # stale records an interrupted ingest had left, removed by this one
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def describe(self) -> str:
        """The one sentence every front end shows after an ingest."""
        return (f"{self.root}: {self.added} added, {self.changed} changed, {self.renamed} renamed, "
                f"{self.removed} removed, {self.unchanged} unchanged, {len(self.failed)} failed; "
                f"{self.chunks_total} chunks ({self.chunks_embedded} embedded, {self.chunks_reused} reused) "
                f"in {self.seconds:.1f} s"
                + (f"; repaired {self.repaired} records left by an interrupted ingest" if self.repaired else ""))

    def to_json(self) -> dict:
        return {
            "root": str(self.root), "added": self.added, "changed": self.changed, "removed": self.removed,
            "unchanged": self.unchanged, "renamed": self.renamed,
            "failed": [{"file": f.file, "reason": f.reason} for f in self.failed],
            "chunks": self.chunks_total, "chunks_embedded": self.chunks_embedded,
            "chunks_reused": self.chunks_reused, "repaired": self.repaired, "seconds": round(self.seconds, 2),
        }


@dataclass(frozen=True)
class IngestFinished(Event):
    summary: IngestSummary


@dataclass
class _Pending:
    file: str
    sha: str
    chunks: list[Chunk]
    status: str
    stale_ids: set[str]
    reason: str = ""
    interrupted: bool = False  # the store held this file in more than one version


def list_documents(root: Path) -> list[str]:
    """Supported files under root, as sorted POSIX paths relative to it. Hidden entries are skipped."""
    if not root.exists():
        raise DocsFolderError(f"Docs folder not found: {root}", "Check the path, or pass another: frontdesk ingest PATH")
    if not root.is_dir():
        raise DocsFolderError(f"Not a folder: {root}", "Pass the folder that holds your docs, not a file.")
    files = []
    for directory, subdirs, names in os.walk(root, onerror=None):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        for name in names:
            path = Path(directory, name)
            if not name.startswith(".") and is_supported(path):
                files.append(path.relative_to(root).as_posix())
    if not files:
        raise DocsFolderError(
            f"No documents in {root}",
            "Frontdesk reads Markdown (.md, .mdx), text (.txt), HTML (.html) and PDF files; add some or pick another folder.",
        )
    return sorted(files)


def ingest_folder(
    root: Path, store: Store, embedder: Embedder, tokenizer: Tokenizer, *, chunk_tokens: int = 128, max_file_bytes: int = 20 << 20,
) -> Iterator[Event]:
    """Sync the store with `root`, holding the data dir's ingest lock throughout (see the module doc)."""
    root = root.expanduser().resolve()
    lock = _IngestLock(store.settings.home)
    try:
        yield from lock.acquire()
        yield from _sync(root, store, embedder, tokenizer, chunk_tokens, max_file_bytes)
    finally:
        lock.release()  # however the ingest ends: finished, closed early, an exception, Ctrl-C


def _sync(root: Path, store: Store, embedder: Embedder, tokenizer: Tokenizer, chunk_tokens: int,
          max_file_bytes: int) -> Iterator[Event]:
    started = time.perf_counter()  # after any wait for the lock
    files = list_documents(root)
    root_key = str(root)
    summary = IngestSummary(root)
    yield IngestStarted(root, len(files))

    stored = store.files(root_key)
    present = set(files)
    removed = {name: state for name, state in stored.items() if name not in present}
    removed_by_sha = {next(iter(s.shas)): name for name, s in removed.items() if len(s.shas) == 1}
    renamed_from: set[str] = set()
    pending: list[_Pending] = []

    def flush() -> Iterator[FileIngested]:
        yield from _write(pending, root_key, store, embedder, summary)
        pending.clear()

    for file in files:
        path = root / file
        try:
            data = _read(path, max_file_bytes)
        except UnreadableFile as error:
            summary.failed.append(event := FileIngested(file, "failed", reason=str(error)))
            yield event
            continue
        sha = file_hash(data)
        previous = stored.get(file)
        if previous and previous.shas == {sha}:
            summary.unchanged += 1
            yield FileIngested(file, "unchanged", len(previous.ids))
            continue
        try:
            document = load_document(path, data)
            chunks = chunk_document(file, document.text, tokenizer.count_many, chunk_tokens, root=root_key)
        except UnreadableFile as error:
            summary.failed.append(event := FileIngested(file, "failed", reason=str(error)))
            yield event
            continue
        status, reason = ("changed", "") if previous else ("added", "")
        if not previous and sha in removed_by_sha:
            status, reason = "renamed", f"from {removed_by_sha[sha]}"
            renamed_from.add(removed_by_sha.pop(sha))
        pending.append(_Pending(file, sha, chunks, status, previous.ids if previous else set(), reason,
                                interrupted=bool(previous and len(previous.shas) > 1)))
        if sum(len(p.chunks) for p in pending) >= FLUSH_CHUNKS:
            yield from flush()
    yield from flush()

    # Deleted last: a renamed file's vectors were still there to be reused above.
    for file, state in removed.items():
        store.delete(state.ids)
        if file not in renamed_from:
            summary.removed += 1
            yield FileIngested(file, "removed", len(state.ids))

    summary.chunks_total = sum(len(s.ids) for s in store.files(root_key).values())
    summary.seconds = time.perf_counter() - started
    yield IngestFinished(summary)


def lock_wait_seconds() -> float:
    """LOCK_WAIT_SECONDS, or FRONTDESK_INGEST_LOCK_WAIT when set to a number >= 0."""
    value = os.environ.get(LOCK_WAIT_ENV, "").strip()
    if not value:
        return LOCK_WAIT_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):
        raise DocsFolderError(f"{LOCK_WAIT_ENV}={value!r} is not a number of seconds",
                              f"Set it to 0 or more (default {LOCK_WAIT_SECONDS:g}), or unset it.")
    return seconds


class _IngestLock:
    """`<home>/ingest.lock`, held exclusively with flock. Closing the file releases it, and the
    OS does so for a killed process, so the file itself is never stale."""

    def __init__(self, home: Path):
        self.home, self.path = home, home / LOCK_FILE
        self.fd: int | None = None
        self.held = False

    def acquire(self) -> Iterator[Event]:
        """Take the lock: at once if it is free; else yield IngestWaiting once and retry until the
        wait limit, then raise IngestLocked naming the holder's pid."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                return  # a data dir this user cannot write: the store refuses any write itself
            raise DocsFolderError(f"Cannot open the ingest lock {self.path}: {error.strerror or error}",
                                  "Check the data directory (FRONTDESK_HOME) is writable.") from None
        self.fd = fd
        if not _try_lock(fd):
            limit = lock_wait_seconds()
            yield IngestWaiting(self.home, _holder(fd), limit)
            deadline = time.monotonic() + limit
            while not _try_lock(fd):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pid = _holder(fd)
                    raise IngestLocked(
                        f"Another frontdesk is loading docs into {self.home}" + (f" (pid {pid})" if pid else ""),
                        "Wait for it to finish, then run the ingest again.",
                    )
                time.sleep(min(_LOCK_POLL, remaining))
        self.held = True
        with suppress(OSError):  # the pid only names the holder in a waiting ingest's message
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            if self.held:
                self.held = False
                with suppress(OSError):
                    os.ftruncate(fd, 0)  # no pid of a finished ingest left behind
        finally:
            os.close(fd)  # releases the flock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _holder(fd: int) -> int | None:
    """The pid the lock's holder wrote, if it has yet."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def file_hash(data: bytes) -> str:
    """What the store records as a file's version: its bytes, as read by this parser."""
    return hashlib.sha256(PARSER_VERSION + data).hexdigest()


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise UnreadableFile(f"too large ({size / 2**20:.1f} MB > {max_bytes / 2**20:.0f} MB limit; raise max_file_mb to include it)")
        return path.read_bytes()
    except OSError as error:
        raise UnreadableFile(f"cannot read: {error.strerror or error}") from None


def _write(pending: list[_Pending], root: str, store: Store, embedder: Embedder, summary: IngestSummary) -> Iterator[FileIngested]:
    if not pending:
        return
    hashes = {c.id: _text_hash(c) for p in pending for c in p.chunks}
    texts = {hashes[c.id]: c.embedding_text() for p in pending for c in p.chunks}
    vectors = store.vectors_for_texts(texts)
    summary.chunks_reused += sum(1 for h in hashes.values() if h in vectors)
    missing = [h for h in texts if h not in vectors]
    if missing:
        vectors.update(zip(missing, embedder.embed([texts[h] for h in missing])))
        summary.chunks_embedded += len(missing)
    records = [
        Record(c.id, c.text, vectors[hashes[c.id]], root, item.file, c.heading, c.start, c.end, item.sha, hashes[c.id])
        for item in pending for c in item.chunks
    ]
    store.replace_files(records, set().union(*(item.stale_ids for item in pending)))
    for item in pending:
        if item.interrupted:
            summary.repaired += len(item.stale_ids - {c.id for c in item.chunks})
        setattr(summary, item.status, getattr(summary, item.status) + 1)
        yield FileIngested(item.file, item.status, len(item.chunks), item.reason)


def _text_hash(chunk: Chunk) -> str:
    return hashlib.sha256(chunk.embedding_text().encode()).hexdigest()[:32]

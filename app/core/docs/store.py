"""The Chroma store: the only module that imports chromadb.

One collection holds the chunks of every ingested docs folder. Each record carries its
folder (`root`), file, heading path, offsets, the hash of its file's bytes (`file_sha`)
and the hash of its embedded text (`text_hash`). The store itself is the source of truth
for incremental ingest (no side manifest that could disagree with it after a crash), and
`text_hash` lets ingest reuse a vector instead of embedding the same text twice.

Every write also renews a token in the collection's metadata: "writing:…" before it, a new
plain token after it. With the collection's id it is the store's `fingerprint`: how indexes
derived from the store (the keyword index) know they are current without a side record of
their own. Equal fingerprints mean equal contents; a store rebuilt, restored or copied in
has another one, and one a killed ingest left mid-write says so.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import urlparse

import numpy as np

from app.core.errors import StoreError
from app.core.passage import Passage
from app.core.settings import Settings

# Chroma's telemetry would try to reach the network; there is none, and it's not wanted.
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

_PAGE = 5000  # records per get() page; keeps memory flat on large stores
_IN_LIMIT = 500  # values per $in filter
_WRITE_TOKEN = "frontdesk_write"  # collection metadata key renewed around every write
_WRITING = "writing:"  # token prefix while a write is under way (or was cut short)


@dataclass(frozen=True)
class Fingerprint:
    """What a derived index compares to know it mirrors the store (see the module doc)."""
    collection: str
    token: str

    @property
    def settled(self) -> bool:
        """False while a write is under way, or after one was killed: don't trust it yet."""
        return not self.token.startswith(_WRITING)


@dataclass
class StoredFile:
    shas: set[str] = field(default_factory=set)
    ids: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Record:
    id: str
    text: str
    vector: np.ndarray
    root: str
    file: str
    heading: str
    start: int
    end: int
    file_sha: str
    text_hash: str

    def metadata(self) -> dict:
        return {
            "root": self.root, "file": self.file, "heading": self.heading, "start": self.start,
            "end": self.end, "file_sha": self.file_sha, "text_hash": self.text_hash,
        }


class Store:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.read_only = False  # True: a copy of a store this user cannot write (see _open_local)
        self._copy: tempfile.TemporaryDirectory | None = None
        self._client_handle = None
        self._write_depth = 0
        self._database: Path | None = None  # the local store's SQLite file (None for a Chroma server)
        self._known: tuple[tuple, Fingerprint] | None = None  # see fingerprint()

    @cached_property
    def _collection(self):
        with self._first_open_lock():
            client = self._client_handle = self._client()
            try:
                # Embeddings are always passed in: Chroma's default embedder would download a model.
                return client.get_or_create_collection(
                    self.settings.general.collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}},
                )
            except Exception as error:
                raise StoreError(f"Cannot open collection {self.settings.general.collection!r}: {error}", "Check the Chroma store.") from None

    @contextmanager
    def _first_open_lock(self):
        """Chroma creates its tables and the collection without guarding against another process
        doing the same ("table collections already exists"), so two frontdesks starting on a new
        data dir take turns: the second waits for the first to finish opening."""
        if self.settings.general.chroma_url or not _writable(self.settings.home):
            yield
            return
        self.settings.home.mkdir(parents=True, exist_ok=True)
        with open(self.settings.home / ".store.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            yield

    def _client(self):
        try:
            import chromadb
            from chromadb.config import Settings as ChromaSettings
        except ImportError:
            raise StoreError("chromadb is not installed", "Run scripts/setup.sh from the README.") from None
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        url = self.settings.general.chroma_url
        try:
            if url:
                parsed = urlparse(url)
                if not parsed.hostname:
                    raise StoreError(f"Bad chroma_url {url!r}", "Use the form http://host:port.")
                client = chromadb.HttpClient(
                    host=parsed.hostname, port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                    ssl=parsed.scheme == "https", settings=chroma_settings,
                )
                client.heartbeat()
                return client
            folder = self._open_local()
            self._database = Path(folder) / "chroma.sqlite3"
            return chromadb.PersistentClient(path=folder, settings=chroma_settings)
        except StoreError:
            raise
        except Exception as error:
            where = url or str(self.settings.chroma_dir)
            raise StoreError(
                f"Cannot open the Chroma store at {where}: {type(error).__name__}: {error}",
                "Check that the Chroma server is running" if url else "Check the data directory (FRONTDESK_HOME) is writable.",
            ) from None

    def _open_local(self) -> str:
        """The folder to open: the store itself, or a copy of it when this user cannot write it.

        Chroma writes to its database even to open it, so a read-only store (a shared or backed-up
        data dir) is searched through a private temporary copy; writes to it are refused."""
        chroma_dir = self.settings.chroma_dir
        if _writable(chroma_dir) and _writable(chroma_dir / "chroma.sqlite3"):
            chroma_dir.mkdir(parents=True, exist_ok=True)
            return str(chroma_dir)
        if not (chroma_dir / "chroma.sqlite3").is_file():
            raise self._read_only_error()
        self._copy = tempfile.TemporaryDirectory(prefix="frontdesk-store-")  # removed with this Store
        shutil.copytree(chroma_dir, self._copy.name, dirs_exist_ok=True)
        self.read_only = True
        return self._copy.name

    def _read_only_error(self) -> StoreError:
        return StoreError(f"The data dir {self.settings.home} is read-only: the docs store cannot be written",
                          "Fix its permissions, or set FRONTDESK_HOME to a folder you can write.")

    def _check_writable(self) -> None:
        self._collection  # opening is what finds out
        if self.read_only:
            raise self._read_only_error()

    def count(self) -> int:
        return self._collection.count()

    def fingerprint(self) -> Fingerprint:
        collection = self._collection
        # Every write to a local store changes its SQLite file, so while the file is as it was
        # the fingerprint is too, and asking Chroma (half a millisecond a search) can wait.
        stamp = self._stamp()
        if stamp is not None and self._known is not None and self._known[0] == stamp:
            return self._known[1]
        # The cached collection object keeps the metadata it was opened with; another process's
        # writes show only in a fresh read.
        metadata = self._client_handle.get_collection(collection.name, embedding_function=None).metadata or {}
        fingerprint = Fingerprint(str(collection.id), str(metadata.get(_WRITE_TOKEN, "")))
        # Kept only once the file's last change is older than a file-time tick (a few ms): a write
        # in the same tick as this read could otherwise leave the file's time as it was.
        settled_file = stamp is not None and time.time_ns() - stamp[3] > 1_000_000_000
        self._known = (stamp, fingerprint) if settled_file and fingerprint.settled else None
        return fingerprint

    def _stamp(self) -> tuple | None:
        if self._database is None:
            return None
        try:
            info = self._database.stat()
        except OSError:
            return None
        return info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns

    @contextmanager
    def _writes(self):
        """Renew the write token around a write (once for nested writes). On an exception the
        token stays "writing:…", so derived indexes keep re-checking until a write completes."""
        self._check_writable()
        if self._write_depth == 0:
            self._set_token(_WRITING + uuid.uuid4().hex)
        self._write_depth += 1
        try:
            yield
        finally:
            self._write_depth -= 1
        if self._write_depth == 0:
            self._set_token(uuid.uuid4().hex)

    def _set_token(self, token: str) -> None:
        self._collection.modify(metadata={_WRITE_TOKEN: token})

    def versions(self) -> dict[str, str]:
        """Every record id with its file's hash (`file_sha`): ingest writes every record of a
        changed file again with the new hash, including those whose id and text stayed."""
        return {record_id: metadata["file_sha"] for record_id, metadata in self._iter_metadata(None)}

    def ids(self) -> set[str]:
        """Every record id in the store (all docs folders)."""
        ids: set[str] = set()
        while True:
            page = self._collection.get(include=[], limit=_PAGE, offset=len(ids))
            ids.update(page["ids"])
            if len(page["ids"]) < _PAGE:
                return ids

    def roots(self) -> dict[str, int]:
        """Docs folders in the store with their chunk counts."""
        counts: dict[str, int] = defaultdict(int)
        for _, metadata in self._iter_metadata(None):
            counts[metadata["root"]] += 1
        return dict(counts)

    def files(self, root: str) -> dict[str, StoredFile]:
        """What the store holds for one docs folder: file -> file hashes and record ids."""
        files: dict[str, StoredFile] = defaultdict(StoredFile)
        for record_id, metadata in self._iter_metadata({"root": root}):
            stored = files[metadata["file"]]
            stored.shas.add(metadata["file_sha"])
            stored.ids.add(record_id)
        return dict(files)

    def _iter_metadata(self, where: dict | None):
        offset = 0
        while True:
            page = self._collection.get(where=where, include=["metadatas"], limit=_PAGE, offset=offset)
            yield from zip(page["ids"], page["metadatas"])
            if len(page["ids"]) < _PAGE:
                return
            offset += _PAGE

    def vectors_for_texts(self, text_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Stored vectors for any of these text hashes, whichever file they belong to."""
        wanted = sorted(set(text_hashes))
        found: dict[str, np.ndarray] = {}
        for i in range(0, len(wanted), _IN_LIMIT):
            page = self._collection.get(
                where={"text_hash": {"$in": wanted[i:i + _IN_LIMIT]}}, include=["metadatas", "embeddings"],
            )
            for metadata, vector in zip(page["metadatas"], page["embeddings"]):
                found[metadata["text_hash"]] = np.asarray(vector, dtype=np.float32)
        return found

    def replace_files(self, records: Sequence[Record], stale_ids: Iterable[str]) -> None:
        """Write files' new records, then drop their old ones.

        Upsert first, delete second: a crash in between leaves extra records whose
        `file_sha` no longer matches, which the next ingest sees as "changed" and cleans.
        One call each for a whole batch of files: Chroma's per-call overhead is what
        separates ingest speed from raw embedding speed.
        """
        with self._writes():
            for i in range(0, len(records), _PAGE):
                page = records[i:i + _PAGE]
                self._collection.upsert(
                    ids=[r.id for r in page],
                    embeddings=np.stack([r.vector for r in page]),
                    documents=[r.text for r in page],
                    metadatas=[r.metadata() for r in page],
                )
            self.delete(set(stale_ids) - {r.id for r in records})

    def delete(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        if not ids:
            return
        with self._writes():
            for i in range(0, len(ids), _PAGE):
                self._collection.delete(ids=ids[i:i + _PAGE])

    def query(self, vectors: np.ndarray, k: int) -> list[list[Passage]]:
        # No count() first: it cost as much as the query, and Chroma answers an empty collection
        # with empty lists. Asked only when a query fails, in case a version refuses instead.
        try:
            result = self._collection.query(
                query_embeddings=vectors, n_results=k, include=["documents", "metadatas", "distances"],
            )
        except Exception:
            if self.count() == 0:
                return [[] for _ in range(len(vectors))]
            raise
        return [
            [_passage(i, d, m, 1.0 - dist) for i, d, m, dist in zip(ids, docs, metas, dists)]
            for ids, docs, metas, dists in zip(result["ids"], result["documents"], result["metadatas"], result["distances"])
        ]

    def nearest(self, vectors: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        """Per vector, the ids of the k nearest chunks and their cosine similarity, best first.
        Without documents and metadata: for a few dozen candidates, fetching those is most of the
        query's time, and only the few passages finally returned need them (see `get_with_vectors`)."""
        try:
            result = self._collection.query(query_embeddings=vectors, n_results=k, include=["distances"])
        except Exception:
            if self.count() == 0:
                return [[] for _ in range(len(vectors))]
            raise
        return [[(i, 1.0 - d) for i, d in zip(ids, dists)] for ids, dists in zip(result["ids"], result["distances"])]

    def preceding(self, passage: Passage) -> Passage | None:
        """The chunk just before this one in its file (same heading or not), if any."""
        if not passage.root or passage.start <= 0:
            return None
        # Filtering on the file alone, and on the folder and offsets here, is several times
        # faster than Chroma's compound filters.
        page = self._collection.get(where={"file": passage.file}, include=["documents", "metadatas"])
        chunks = [_passage(i, d, m, 0.0) for i, d, m in zip(page["ids"], page["documents"], page["metadatas"])]
        return max((c for c in chunks if c.root == passage.root and c.end <= passage.start), key=lambda c: c.end, default=None)

    def get(self, ids: Sequence[str]) -> list[Passage]:
        """Passages by id, in the order asked (unknown ids are left out)."""
        return [passage for passage, _ in self._get(ids, with_vectors=False)]

    def get_with_vectors(self, ids: Sequence[str]) -> list[tuple[Passage, np.ndarray]]:
        """`get`, with each passage's stored vector (to score it against a question's)."""
        return self._get(ids, with_vectors=True)

    def _get(self, ids: Sequence[str], with_vectors: bool) -> list[tuple[Passage, np.ndarray | None]]:
        if not ids:
            return []
        page = self._collection.get(ids=list(ids), include=["documents", "metadatas"] + (["embeddings"] if with_vectors else []))
        vectors = page["embeddings"] if with_vectors else [None] * len(page["ids"])
        by_id = {i: (_passage(i, d, m, 0.0), None if v is None else np.asarray(v, dtype=np.float32))
                 for i, d, m, v in zip(page["ids"], page["documents"], page["metadatas"], vectors)}
        return [by_id[i] for i in ids if i in by_id]


def _writable(path: Path) -> bool:
    """Whether this user may write there: the path if it exists, else the nearest folder above it."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    return os.access(existing, os.W_OK | (os.X_OK if existing.is_dir() else 0))


def _passage(record_id: str, text: str, metadata: dict, score: float) -> Passage:
    return Passage(
        id=record_id, text=text, file=metadata["file"], heading=metadata.get("heading", ""), score=float(score),
        root=metadata.get("root", ""), start=int(metadata.get("start", 0)), end=int(metadata.get("end", 0)),
    )

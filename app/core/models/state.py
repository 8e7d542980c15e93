"""`<home>/models.json`: the `models use` selection, measured speeds and verified hashes.

Several processes write it (the CLI, the app recording a speed, a smoke-test child), so every
update holds an exclusive lock and replaces the file atomically: a reader never sees half a
file, and two writers never drop each other's change.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

STATE_FILE = "models.json"


def state_path(home: Path) -> Path:
    return Path(home) / STATE_FILE


def read_state(home: Path) -> dict[str, Any]:
    try:
        data = json.loads(state_path(home).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}  # missing or damaged: it holds only caches and a preference, start afresh
    return data if isinstance(data, dict) else {}


@contextlib.contextmanager
def _locked(home: Path) -> Iterator[None]:
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    with open(home / (STATE_FILE + ".lock"), "a") as lock:
        try:
            import fcntl
        except ImportError:  # not POSIX: single-writer in practice
            yield
            return
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_state(home: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Apply `change` to the stored state under the lock and write it back atomically."""
    with _locked(home):
        state = read_state(home)
        change(state)
        target = state_path(home)
        fd, temp = tempfile.mkstemp(prefix=".models-", suffix=".json", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(state, handle, indent=2, sort_keys=True)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    return state


def path_key(path: Path) -> str:
    return str(Path(path).expanduser().resolve())


# --- measured speeds -----------------------------------------------------------------------

def record_speed(settings: Any, path: Path, ttft_s: float, tokens_per_s: float, threads: int | None = None) -> None:
    """Remember how fast `path` ran on this machine (time to first token, decode tokens/s).

    Kept per file and size, so a replaced file does not inherit the old file's numbers.
    """
    path = Path(path)
    entry = {
        "ttft_s": round(float(ttft_s), 3),
        "tokens_per_s": round(float(tokens_per_s), 2),
        "size": path.stat().st_size if path.exists() else None,
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if threads:
        entry["threads"] = threads
    _set_entry(settings.home, "speeds", path, entry)


def speed_of(state: dict[str, Any], path: Path) -> dict[str, Any] | None:
    entry = state.get("speeds", {}).get(path_key(path))
    if not entry:
        return None
    try:
        if entry.get("size") not in (None, path.stat().st_size):
            return None
    except OSError:
        return None
    return entry


# --- verified-hash cache -------------------------------------------------------------------

def _fingerprint(path: Path) -> dict[str, int]:
    info = path.stat()
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns}


def cached_hash(home: Path, path: Path) -> str | None:
    """The SHA-256 recorded for `path`, if its size and mtime have not changed since."""
    entry = read_state(home).get("hashes", {}).get(path_key(path))
    try:
        if entry and {k: entry.get(k) for k in ("size", "mtime_ns")} == _fingerprint(path):
            return entry.get("sha256")
    except OSError:
        pass
    return None


def remember_hash(home: Path, path: Path, sha256: str) -> None:
    entry = {**_fingerprint(path), "sha256": sha256}
    _set_entry(home, "hashes", path, entry)


def _set_entry(home: Path, table: str, path: Path, entry: dict[str, Any]) -> None:
    def change(state: dict[str, Any]) -> None:
        state.setdefault(table, {})[path_key(path)] = entry

    update_state(home, change)

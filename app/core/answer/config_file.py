"""Setting one value in a user's TOML file in place: `router fit` writes a fitted policy's
values and points the user's config at it, keeping their comments and other settings."""
from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path

from app.core.errors import ConfigError
from app.core.settings import CONFIG_NAME, Settings, find_config_file


def set_toml_value(text: str, table: str | None, key: str, literal: str) -> str:
    """`key = literal` in [table] (None: the top level): the key's line replaced, or added; every other line kept."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    headers = [i for i, line in enumerate(lines) if re.match(r"^\s*\[", line)]
    if table is None:
        start, end = -1, headers[0] if headers else len(lines)
    else:
        wanted = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(re.escape(p) for p in table.split(".")) + r"\s*\]\s*(#.*)?$")
        start = next((i for i in headers if wanted.match(lines[i])), None)
        if start is None:
            lines += ([""] if lines and lines[-1].strip() else []) + [f"[{table}]", f"{key} = {literal}"]
            return newline.join(lines) + newline
        end = next((i for i in headers if i > start), len(lines))
    assignment = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    for i in range(start + 1, end):
        if assignment.match(lines[i]):
            lines[i] = f"{key} = {literal}"
            return newline.join(lines) + newline
    at = start + 1 if table is not None else end
    while table is None and at > 0 and not lines[at - 1].strip():
        at -= 1  # after the top level's last value, before the blank lines that lead to the first table
    lines.insert(at, f"{key} = {literal}")
    return newline.join(lines) + newline


def point_config_at(settings: Settings, policy_file: Path) -> tuple[Path, bool, list[str]]:
    """Set routing.policy in the config file this run read (or create <home>/frontdesk.toml); returns (file, created, warnings)."""
    config = settings.config_file or settings.home / CONFIG_NAME
    created = not config.exists()
    original = "" if created else _read_text(config)
    try:
        value = policy_file.relative_to(config.parent.resolve()).as_posix()  # relative paths resolve next to the file
    except ValueError:
        value = str(policy_file)
    text = set_toml_value(original, "routing", "policy", json.dumps(value))
    try:
        ok = tomllib.loads(text).get("routing", {}).get("policy") == value
    except tomllib.TOMLDecodeError:
        ok = False
    if not ok:
        raise ConfigError(f"Wrote {policy_file}, but could not set routing.policy in {config}",
                       f'Set it by hand: [routing] policy = {json.dumps(str(policy_file))}')
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text, encoding="utf-8")

    warnings = []
    source = settings.sources.get("routing.policy", "default")
    if source.startswith("env ") or source in ("command line", "override"):
        warnings.append(f"routing.policy is also set by {source}, which overrides {config}: unset it to use the fitted policy.")
    found = find_config_file(None, dict(os.environ), settings.home) if settings.config_file is None else settings.config_file
    if found is None or found.resolve() != config.resolve():
        warnings.append(f"frontdesk reads {config} only for the data dir {config.parent} (--home or FRONTDESK_HOME), "
                        f"or with --config {config}.")
    return config, created, warnings


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Cannot edit {path}: {error}", "Save it as UTF-8, or set routing.policy in it by hand.") from None

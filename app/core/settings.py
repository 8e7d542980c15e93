"""Typed settings: defaults < frontdesk.toml < FRONTDESK_* environment < CLI flags.

Each setting has a dotted name (`frontier.model`); in the TOML file it is written as a
key in its table (`[frontier]` / `model = ...`), in the environment as
`FRONTDESK_FRONTIER_MODEL`. `Settings.sources` records where each value came from, which
`frontdesk config` shows.

The core reads settings through typed sections (`settings.local.timeout`,
`settings.frontier.model`, `settings.general.top_k`): each is a frozen dataclass whose
fields are exactly the options of its table, built from the values, so `OPTIONS` stays the
one place where a default is written (a test checks that the two agree).

The Anthropic API key is deliberately not a setting: it is read from ANTHROPIC_API_KEY
(or `api_key` under `[frontier]` in a config file the user controls) and never stored
in `values`, so it cannot leak through `frontdesk config`, the ledger or a log line.
"""
from __future__ import annotations

import codecs
import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from functools import cached_property
from pathlib import Path
from typing import Any

from app.core.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONFIG_NAME = "frontdesk.toml"
ENV_PREFIX = "FRONTDESK_"


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: Any
    help: str
    minimum: float | None = None  # numbers below this are refused (a negative retry count breaks the SDK)


def _default_home() -> str:
    from platformdirs import user_data_dir

    return user_data_dir("frontdesk", appauthor=False)


OPTIONS: tuple[Option, ...] = (
    Option("home", Path, None, "data directory: Chroma store, ledger (default: the platform's user data dir)"),
    Option("docs", Path, PROJECT_ROOT / "knowledge", "docs folder that `frontdesk ingest` loads by default"),
    Option("chroma_url", str, "", "Chroma server URL (http://host:port); empty = persistent store in the data dir"),
    Option("collection", str, "frontdesk", "Chroma collection name"),
    Option("top_k", int, 5, "passages retrieved per question", minimum=1),
    Option("chunk_tokens", int, 128, "chunk size limit in embedder tokens (MiniLM was trained on 128)", minimum=32),
    Option("max_file_mb", float, 20.0, "files larger than this are skipped", minimum=0.001),
    Option("embed_batch", int, 64, "chunks embedded per batch", minimum=1),
    Option("local.model", Path, None, "GGUF file; default: first *.gguf in models/, else the bundled SmolLM2"),
    Option("local.n_ctx", int, 2048, "local model context window (tokens)", minimum=256),
    Option("local.max_tokens", int, 256, "longest local answer (tokens)", minimum=1),
    Option("local.threads", int, 0, "CPU threads for the local model (0 = auto: one per physical core, see models/README.md)", minimum=0),
    Option("local.temperature", float, 0.2, "local sampling temperature", minimum=0),
    Option("local.timeout", float, 60.0, "seconds the local model may go without sending a token before its draft is abandoned", minimum=0.1),
    Option("local.load_timeout", float, 180.0, "seconds the local model may take to load in its worker", minimum=1),
    Option("local.url", str, "", "an OpenAI-compatible server to use instead of the built-in worker (http://host:port/v1: llama-server, Ollama, vLLM)"),
    Option("local.url_model", str, "", "the model name to ask local.url for (empty = the first one it lists)"),
    Option("frontier.model", str, "claude-sonnet-5-5", "Anthropic model for escalated questions"),
    Option("frontier.provider", str, "anthropic", "anthropic (Claude), or openai-compatible: frontier.base_url and frontier.model name any OpenAI-compatible endpoint"),
    Option("frontier.key_env", str, "OPENAI_API_KEY", "with frontier.provider = openai-compatible: the environment variable that holds its key (empty = it needs none)"),
    Option("frontier.max_tokens", int, 1024, "longest frontier answer (tokens)", minimum=1),
    Option("frontier.base_url", str, "", "Anthropic API base URL (empty = the SDK's default)"),
    Option("frontier.timeout", float, 30.0, "seconds before a frontier call is abandoned", minimum=0.1),
    Option("frontier.max_retries", int, 2, "SDK retries on 429/5xx/529 before falling back", minimum=0),
    # Claude Sonnet 5.5's list prices (Anthropic, 2026); change both with frontier.model.
    Option("frontier.input_usd_per_mtok", float, 2.0, "frontier price per million input tokens", minimum=0),
    Option("frontier.output_usd_per_mtok", float, 10.0, "frontier price per million output tokens", minimum=0),
    Option("frontier.monthly_budget_usd", float, 0.0, "stop escalating after this spend per calendar month (0 = no limit)", minimum=0),
    Option("frontier.daily_budget_usd", float, 0.0, "stop escalating after this spend per UTC day (0 = no limit)", minimum=0),
    Option("fallback.url", str, "", "an OpenAI-compatible endpoint (…/v1: OpenAI, Azure OpenAI, vLLM) the frontier fails over to (empty = none)"),
    Option("fallback.model", str, "", "the model to ask fallback.url for"),
    Option("fallback.key_env", str, "OPENAI_API_KEY", "the environment variable that holds fallback.url's key (empty = it needs none)"),
    Option("fallback.input_usd_per_mtok", float, 0.0, "fallback price per million input tokens", minimum=0),
    Option("fallback.output_usd_per_mtok", float, 0.0, "fallback price per million output tokens", minimum=0),
    Option("local.input_usd_per_mtok", float, 0.0, "local price per million input tokens (electricity, if you count it)", minimum=0),
    Option("local.output_usd_per_mtok", float, 0.0, "local price per million output tokens", minimum=0),
    Option("routing.policy", Path, None, "routing policy TOML (default: the shipped app/core/answer/routing_policy.toml)"),
    Option("egress.redact", bool, True, "redact personal data before anything is sent to the frontier"),
    Option("egress.local_only", list, [], "globs of docs (relative to their folder) that never leave the machine"),
)
OPTIONS_BY_NAME = {o.name: o for o in OPTIONS}


def clean_key(raw: str | None) -> str | None:
    """The key as the user meant it: no surrounding whitespace or line ending (a .env with CRLF)."""
    if raw is None:
        return None
    key = raw.strip()
    return key or None


def env_name(option_name: str) -> str:
    return ENV_PREFIX + option_name.replace(".", "_").upper()


def _coerce(option: Option, raw: Any, origin: str, base_dir: Path) -> Any:
    """Turn a TOML/env/flag value into the option's type, or raise a ConfigError naming where."""
    try:
        if option.type is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(f"expected true or false, got {raw!r}")
        if option.type is list:
            if isinstance(raw, list):
                return [str(item) for item in raw]
            return [part.strip() for part in str(raw).split(",") if part.strip()]
        if option.type is Path:
            path = Path(str(raw)).expanduser()
            return path if path.is_absolute() else (base_dir / path)
        if option.type in (int, float) and isinstance(raw, bool):
            raise ValueError(f"expected a number, got {raw!r}")
        value = _whole(raw) if option.type is int else option.type(raw)
        # nan compares false with everything, so it would slip past the minimum and a budget
        # check alike (silently no limit); inf is no number a user means either.
        if option.type is float and not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {raw!r}")
        if option.minimum is not None and value < option.minimum:
            raise ValueError(f"{value!r} is below the minimum, {option.minimum:g}")
        return value
    except (TypeError, ValueError) as error:
        raise ConfigError(
            f"Bad value for setting '{option.name}' in {origin}: {error}",
            f"Expected {option.type.__name__}: {option.help}.",
        ) from None


def _whole(raw: Any) -> int:
    """An integer from 3, 3.0, "3" or "3.0"; 2.5 is refused rather than cut down to 2."""
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer():  # false for 2.5, nan and inf alike
        raise ValueError(f"expected a whole number, got {raw!r}")
    return int(number)


def _flatten(table: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


@dataclass(frozen=True)
class GeneralSettings:
    """The top-level options: where data lives, the docs, the store, retrieval."""
    home: Path
    docs: Path
    chroma_url: str
    collection: str
    top_k: int
    chunk_tokens: int
    max_file_mb: float
    embed_batch: int


@dataclass(frozen=True)
class LocalSettings:
    model: Path | None
    n_ctx: int
    max_tokens: int
    threads: int
    temperature: float
    timeout: float
    load_timeout: float
    url: str
    url_model: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float


@dataclass(frozen=True)
class FrontierSettings:
    model: str
    provider: str
    key_env: str
    max_tokens: int
    base_url: str
    timeout: float
    max_retries: int
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    monthly_budget_usd: float
    daily_budget_usd: float


@dataclass(frozen=True)
class FallbackSettings:
    """A second frontier provider: any OpenAI-compatible endpoint, with its own prices."""
    url: str
    model: str
    key_env: str
    input_usd_per_mtok: float
    output_usd_per_mtok: float


@dataclass(frozen=True)
class RoutingSettings:
    policy: Path | None


@dataclass(frozen=True)
class EgressSettings:
    redact: bool
    local_only: list[str]


# Section name ("" = top level) -> its dataclass.
SECTIONS: dict[str, type] = {
    "": GeneralSettings, "local": LocalSettings, "frontier": FrontierSettings, "fallback": FallbackSettings,
    "routing": RoutingSettings, "egress": EgressSettings,
}


def _section(values: dict[str, Any], prefix: str, cls: type) -> Any:
    return cls(**{f.name: values[f"{prefix}.{f.name}" if prefix else f.name] for f in fields(cls)})


@dataclass
class Settings:
    values: dict[str, Any]
    sources: dict[str, str]
    config_file: Path | None = None
    # Read from the environment or the user's config file; never shown, logged or stored.
    api_key: str | None = field(default=None, repr=False)
    api_key_source: str = ""

    def value(self, name: str) -> Any:
        """Any option by its dotted name (for listing them all; code reads the typed sections)."""
        return self.values[name]

    @cached_property
    def general(self) -> GeneralSettings:
        return _section(self.values, "", GeneralSettings)

    @cached_property
    def local(self) -> LocalSettings:
        return _section(self.values, "local", LocalSettings)

    @cached_property
    def frontier(self) -> FrontierSettings:
        return _section(self.values, "frontier", FrontierSettings)

    @cached_property
    def fallback(self) -> FallbackSettings:
        return _section(self.values, "fallback", FallbackSettings)

    @cached_property
    def routing(self) -> RoutingSettings:
        return _section(self.values, "routing", RoutingSettings)

    @cached_property
    def egress(self) -> EgressSettings:
        return _section(self.values, "egress", EgressSettings)

    @property
    def home(self) -> Path:
        return self.values["home"]

    @property
    def docs(self) -> Path:
        return self.values["docs"]

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def ledger_path(self) -> Path:
        return self.home / "ledger.sqlite3"

    def with_overrides(self, **overrides: Any) -> "Settings":
        """A copy with some values replaced (dotted names as keys with '_' for '.')."""
        values = dict(self.values)
        sources = dict(self.sources)
        for key, value in overrides.items():
            name = key if key in OPTIONS_BY_NAME else key.replace("__", ".")
            values[name] = value
            sources[name] = "override"
        return Settings(values, sources, self.config_file, self.api_key, self.api_key_source)


def find_config_file(explicit: str | Path | None, environ: dict[str, str], home: str | Path | None = None) -> Path | None:
    """--config, else $FRONTDESK_CONFIG, else ./frontdesk.toml, else <home>/frontdesk.toml, where
    home is --home's folder when given (the data dir a command runs on), else $FRONTDESK_HOME."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"Config file not found: {path}", "Check the --config path.")
        return path
    if environ.get("FRONTDESK_CONFIG"):
        path = Path(environ["FRONTDESK_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"Config file not found: {path} (from FRONTDESK_CONFIG)", "Fix or unset FRONTDESK_CONFIG.")
        return path
    local = Path.cwd() / CONFIG_NAME
    if local.is_file():
        return local
    home = home or environ.get("FRONTDESK_HOME") or _default_home()
    in_home = Path(home).expanduser() / CONFIG_NAME
    return in_home if in_home.is_file() else None


# Windows editors save "Unicode" as UTF-16 with a byte-order mark, and Notepad adds one to
# UTF-8. The mark says which encoding it is; UTF-32's are checked before UTF-16's, which
# they start with.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigError(f"Cannot read {path}: {error.strerror}", "Check the file's permissions.") from None
    encoding = next((name for bom, name in _BOMS if data.startswith(bom)), "utf-8")
    save_as_utf8 = "Open it in a text editor and save it as UTF-8."
    if encoding == "utf-8" and b"\0" in data:  # UTF-16/32 without a mark: valid UTF-8, but full of NULs
        raise ConfigError(f"{path} is not UTF-8 text (it looks like UTF-16 or UTF-32)", save_as_utf8)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not {encoding.upper().removesuffix('-SIG')} text: "
                          f"byte {data[error.start]:#04x} at offset {error.start}", save_as_utf8) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}", "Fix the line it names, or move the file aside.") from None


def _check_home(home: Path, source: str) -> None:
    """The data dir must be a folder, or not exist yet: a file there breaks every command."""
    existing = next(p for p in (home, *home.parents) if p.exists())  # "/" always exists
    if existing.is_dir():
        return
    where = "is a file" if existing == home else f"is inside {existing}, which is a file"
    raise ConfigError(
        f"The data dir {home} {where}, not a folder (set by {'the default' if source == 'default' else source})",
        "Set FRONTDESK_HOME (or --home) to a folder, or move that file aside.",
    )


def load_settings(
    flags: dict[str, Any] | None = None,
    config: str | Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Build settings from the four layers. `flags` maps option names to CLI values (None = not given)."""
    environ = dict(os.environ if environ is None else environ)
    values = {o.name: o.default for o in OPTIONS}
    sources = {o.name: "default" for o in OPTIONS}
    api_key, api_key_source = None, ""

    config_file = find_config_file(config, environ, (flags or {}).get("home"))
    if config_file:
        table = _read_toml(config_file)
        frontier_table = table.get("frontier") if isinstance(table.get("frontier"), dict) else {}
        if "api_key" in frontier_table:
            api_key, api_key_source = clean_key(str(frontier_table.pop("api_key"))), f"{config_file} [frontier] api_key"
        for name, raw in _flatten(table).items():
            if name not in OPTIONS_BY_NAME:
                raise ConfigError(
                    f"Unknown setting '{name}' in {config_file}",
                    "Run `frontdesk config` to list the settings and their names.",
                )
            values[name] = _coerce(OPTIONS_BY_NAME[name], raw, str(config_file), config_file.parent)
            sources[name] = str(config_file)

    for option in OPTIONS:
        variable = env_name(option.name)
        if environ.get(variable, "") != "":
            values[option.name] = _coerce(option, environ[variable], f"${variable}", Path.cwd())
            sources[option.name] = f"env {variable}"

    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        if name not in OPTIONS_BY_NAME:
            raise ConfigError(f"Unknown setting '{name}'", "Run `frontdesk config` to list the settings.")
        values[name] = _coerce(OPTIONS_BY_NAME[name], raw, "the command line", Path.cwd())
        sources[name] = "command line"

    if values["home"] is None:
        values["home"] = Path(_default_home())
    values["home"] = Path(values["home"]).expanduser().resolve()
    _check_home(values["home"], sources["home"])

    if clean_key(environ.get("ANTHROPIC_API_KEY")):
        api_key, api_key_source = clean_key(environ["ANTHROPIC_API_KEY"]), "env ANTHROPIC_API_KEY"
    return Settings(values, sources, config_file, api_key, api_key_source)

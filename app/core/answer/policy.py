"""The routing policy: what `routing_policy.toml` may say, and reading it.

Each topic has example questions, keywords and regular expressions, a minimum score and a
route; thresholds and scoring settings apply to all topics. The file is the user's to edit,
so `load_policy` validates every value and a bad one raises a ConfigError that names the
file, the line and the fix. How a policy decides a question is `router`'s job.

A policy may also name an `examples_file`: labelled questions (the `labelled` format, each
row with a `topic`) that join the topics' examples. `frontdesk router fit` writes one, so a
fitted policy with 30,000 examples stays a short TOML file a person can read.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ConfigError
from app.core.labelled import LabelledFileError, load_questions

DEFAULT_POLICY_PATH = Path(__file__).with_name("routing_policy.toml")
ROUTES = ("local", "frontier")


@dataclass
class Topic:
    name: str
    route: str
    examples: list[str]
    keywords: list[str] = field(default_factory=list)
    patterns: list[str] = field(default_factory=list)
    min_score: float = 0.0
    escalate_when_unsure: bool = False
    description: str = ""

    def __post_init__(self) -> None:
        self._keyword_regexes = [(keyword, _keyword_regex(keyword)) for keyword in self.keywords]
        self._pattern_regexes = [re.compile(pattern, re.IGNORECASE) for pattern in self.patterns]

    def matches(self, question: str) -> list[str]:
        """Evidence from keywords and patterns: 'keyword "invoice"', 'pattern "getting a 401"' (the matched text)."""
        found = [f'keyword "{keyword}"' for keyword, regex in self._keyword_regexes if regex.search(question)]
        for regex in self._pattern_regexes:
            match = regex.search(question)
            if match:
                label = f'pattern "{match.group(0).strip()}"'
                if label not in found:
                    found.append(label)
        return found


@dataclass
class RoutingPolicy:
    topics: dict[str, Topic]
    default_topic: str = "support"
    min_relevance: float = 0.30
    local_confidence: float = 0.45
    escalate_unanswerable: bool = False
    top_k: int = 3
    keyword_bonus: float = 0.10
    path: Path | None = None
    examples_file: Path | None = None  # where the examples beyond the TOML's own came from

    @property
    def topic_names(self) -> list[str]:
        return list(self.topics)


def _keyword_regex(keyword: str) -> re.Pattern:
    # Whole words, case-insensitive, optional plural; inner spaces match any whitespace.
    body = r"\s+".join(re.escape(part) for part in keyword.split())
    start = r"\b" if keyword[:1].isalnum() else ""
    end = r"(?:s|es)?\b" if keyword[-1:].isalnum() else ""
    return re.compile(start + body + end, re.IGNORECASE)


# ---------------------------------------------------------------------------- loading


_TOP_KEYS = {"version", "default_topic", "examples_file", "thresholds", "scoring", "topics"}
_THRESHOLD_KEYS = {"min_relevance", "local_confidence", "escalate_unanswerable"}
_SCORING_KEYS = {"top_k", "keyword_bonus"}
_TOPIC_KEYS = {"description", "route", "min_score", "escalate_when_unsure", "keywords", "patterns", "examples"}


class _Locator:
    """Finds the line a policy value is on, so an error can point at it (tomllib gives no positions)."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.lines = text.splitlines()

    def _header(self, table: str) -> int | None:
        pattern = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(re.escape(p) for p in table.split(".")) + r"\s*\]")
        for number, line in enumerate(self.lines, 1):
            if pattern.match(line):
                return number
        return None

    def line(self, table: str | None, key: str | None = None, needle: str | None = None) -> int | None:
        start = (self._header(table) or 1) if table else 1
        end = len(self.lines)
        for number in range(start + 1, len(self.lines) + 1):
            if self.lines[number - 1].lstrip().startswith("["):
                end = number - 1
                break
        if needle is not None:
            for number in range(start, end + 1):
                if needle in self.lines[number - 1]:
                    return number
        if key is not None:
            key_pattern = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
            for number in range(1 if table is None else start, end + 1):
                if key_pattern.match(self.lines[number - 1]):
                    return number
            if table is None:
                return None
        return start if table else None

    def error(self, message: str, line: int | None, fix: str) -> ConfigError:
        where = f"{self.path}, line {line}" if line else str(self.path)
        return ConfigError(f"Routing policy {where}: {message}", fix)


_FIX = "Fix the value it names (the shipped app/core/answer/routing_policy.toml documents every field), or unset `routing.policy`."


def load_policy(path: str | Path, with_examples_file: bool = True) -> RoutingPolicy:
    """Read and validate a routing policy TOML file; ConfigError names the file and line.

    `with_examples_file=False` leaves out the examples of its `examples_file` (a refit starts
    from the hand-written part and replaces them)."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"Routing policy not found: {path}",
            "Fix the `routing.policy` setting, or unset it to use the shipped policy.",
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"Cannot read routing policy {path}: {error}", "Check the file's permissions and encoding.") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # tomllib's message ends with "(at line N, column M)".
        raise ConfigError(
            f"Routing policy {path} is not valid TOML: {error}",
            "Fix the line it names (check quotes, commas and brackets), or unset `routing.policy`.",
        ) from None
    return _parse_policy(data, _Locator(path, text), path, with_examples_file)


def _parse_policy(data: dict[str, Any], loc: _Locator, path: Path, with_examples_file: bool = True) -> RoutingPolicy:
    for key in data:
        if key not in _TOP_KEYS:
            raise loc.error(f"unknown key '{key}'", loc.line(None, key=key) or loc.line(key), f"Known keys: {', '.join(sorted(_TOP_KEYS))}.")

    def table(name: str, allowed: set[str]) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise loc.error(f"'{name}' must be a table ([{name}])", loc.line(None, key=name), _FIX)
        for key in value:
            if key not in allowed:
                raise loc.error(f"unknown key '{key}' in [{name}]", loc.line(name, key=key), f"Known keys: {', '.join(sorted(allowed))}.")
        return value

    def number(tbl: str, values: dict, key: str, default: float, low: float, high: float) -> float:
        raw = values.get(key, default)
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise loc.error(f"'{key}' must be a number, got {raw!r}", loc.line(tbl, key=key), _FIX)
        if not low <= raw <= high:
            raise loc.error(f"'{key}' must be between {low} and {high}, got {raw}", loc.line(tbl, key=key), _FIX)
        return float(raw)

    def boolean(tbl: str, values: dict, key: str, default: bool) -> bool:
        raw = values.get(key, default)
        if not isinstance(raw, bool):
            raise loc.error(f"'{key}' must be true or false, got {raw!r}", loc.line(tbl, key=key), _FIX)
        return raw

    thresholds = table("thresholds", _THRESHOLD_KEYS)
    scoring = table("scoring", _SCORING_KEYS)
    top_k = scoring.get("top_k", 3)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise loc.error(f"'top_k' must be a whole number of at least 1, got {top_k!r}", loc.line("scoring", key="top_k"), _FIX)

    raw_topics = data.get("topics")
    if not isinstance(raw_topics, dict) or not raw_topics:
        raise loc.error("no topics defined", loc.line(None, key="topics"), "Add at least one [topics.NAME] table with a route and examples.")
    topics: dict[str, Topic] = {}
    for name, spec in raw_topics.items():
        table_name = f"topics.{name}"
        if not isinstance(spec, dict):
            raise loc.error(f"topic '{name}' must be a table ([{table_name}])", loc.line("topics", key=name), _FIX)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
            raise loc.error(f"topic name '{name}' must be letters, digits, '_' or '-'", loc.line(table_name), _FIX)
        for key in spec:
            if key not in _TOPIC_KEYS:
                raise loc.error(
                    f"unknown key '{key}' in topic '{name}'", loc.line(table_name, key=key), f"Known keys: {', '.join(sorted(_TOPIC_KEYS))}."
                )
        route = spec.get("route")
        if route not in ROUTES:
            raise loc.error(
                f"topic '{name}': route must be \"local\" or \"frontier\", got {route!r}", loc.line(table_name, key="route"), _FIX
            )
        lists: dict[str, list[str]] = {}
        for key in ("examples", "keywords", "patterns"):
            raw = spec.get(key, [])
            if not isinstance(raw, list) or not all(isinstance(item, str) and item.strip() for item in raw):
                raise loc.error(
                    f"topic '{name}': '{key}' must be a list of non-empty strings", loc.line(table_name, key=key), _FIX
                )
            lists[key] = [item.strip() for item in raw]
        for pattern in lists["patterns"]:
            try:
                re.compile(pattern)
            except re.error as error:
                raise loc.error(
                    f"topic '{name}': pattern '{pattern}' is not a valid regular expression ({error})",
                    loc.line(table_name, needle=pattern) or loc.line(table_name, key="patterns"),
                    "Fix the pattern (Python regex syntax; write it in 'single quotes' so backslashes stay literal).",
                ) from None
        description = spec.get("description", "")
        if not isinstance(description, str):
            raise loc.error(f"topic '{name}': 'description' must be a string", loc.line(table_name, key="description"), _FIX)
        topics[name] = Topic(
            name=name,
            route=route,
            examples=lists["examples"],
            keywords=lists["keywords"],
            patterns=lists["patterns"],
            min_score=number(table_name, spec, "min_score", 0.0, -1.0, 2.0),
            escalate_when_unsure=boolean(table_name, spec, "escalate_when_unsure", False),
            description=description,
        )

    default_topic = data.get("default_topic", "support")
    if default_topic not in topics:
        raise loc.error(
            f"default_topic {default_topic!r} is not one of the topics ({', '.join(topics)})",
            loc.line(None, key="default_topic"), _FIX,
        )
    examples_file = None
    if "examples_file" in data:
        raw = data["examples_file"]
        if not isinstance(raw, str) or not raw.strip():
            raise loc.error("'examples_file' must be a file name", loc.line(None, key="examples_file"), _FIX)
        examples_file = (path.parent / Path(raw).expanduser()).resolve()  # relative to the policy, like config paths
        if with_examples_file:
            _add_file_examples(topics, examples_file, loc)
    for name, topic in topics.items():
        if not topic.examples:
            raise loc.error(
                f"topic '{name}' has no examples", loc.line(f"topics.{name}", key="examples"),
                "Add a few example questions (examples = [\"...\", ...]): the router compares questions with them.",
            )
    return RoutingPolicy(
        topics=topics,
        default_topic=default_topic,
        min_relevance=number("thresholds", thresholds, "min_relevance", 0.30, 0.0, 1.0),
        local_confidence=number("thresholds", thresholds, "local_confidence", 0.45, 0.0, 1.0),
        escalate_unanswerable=boolean("thresholds", thresholds, "escalate_unanswerable", False),
        top_k=top_k,
        keyword_bonus=number("scoring", scoring, "keyword_bonus", 0.10, 0.0, 1.0),
        path=path,
        examples_file=examples_file,
    )


def _add_file_examples(topics: dict[str, Topic], examples_file: Path, loc: _Locator) -> None:
    where = loc.line(None, key="examples_file")
    try:
        rows = load_questions(examples_file)
    except LabelledFileError as error:
        raise loc.error(f"examples_file: {error.title}", where, error.fix) from None
    added: dict[str, list[str]] = {name: [] for name in topics}
    for row in rows:
        if row.topic not in topics:
            raise loc.error(
                f"examples_file {examples_file}, line {row.line}: topic {row.topic!r} is not one of the topics ({', '.join(topics)})",
                where, "Give every row a \"topic\" of this policy, or add the topic to the policy.",
            )
        added[row.topic].append(row.question)
    for name, texts in added.items():
        topic = topics[name]
        # Dataclass fields stay the same Topic object: its compiled regexes are kept.
        topic.examples = list(dict.fromkeys(topic.examples + texts))

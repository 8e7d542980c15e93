"""A regression gate: the least each measure of an eval report may score.

A gate file is TOML with one table, `minimum`, naming report measures by their path in the
report (the keys of `frontdesk eval --json`, joined by dots) and the least each may be:

    [minimum]
    "routing.routes.accuracy" = 0.68
    "retrieval.file.hit@5" = 0.90

`frontdesk eval FILE --gate GATE` fails (exit 1) when any measure falls below its minimum,
so a team's CI can keep the desk from getting worse on its own questions. Only measures
that are rates or scores (higher is better) are gated: time is not, since it depends on
the machine more than on the desk.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import FrontdeskError


class GateError(FrontdeskError):
    pass


@dataclass(frozen=True)
class Shortfall:
    measure: str
    minimum: float
    got: float | None  # None: the report has no value for it (nothing labelled to measure)

    def describe(self) -> str:
        got = "nothing measured" if self.got is None else f"{self.got:.3f}"
        return f"{self.measure}: {got} < minimum {self.minimum:.3f}"


def load_gate(path: str | Path) -> dict[str, float]:
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GateError(f"No such gate file: {path}", "Check the path given to --gate.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise GateError(f"Cannot read gate file {path}: {error}", "Check the file's permissions and encoding.") from None
    except tomllib.TOMLDecodeError as error:
        raise GateError(f"Gate file {path} is not valid TOML: {error}", 'Write it as [minimum] then lines like "retrieval.file.hit@5" = 0.9.') from None
    minimum = data.get("minimum")
    if not isinstance(minimum, dict) or not minimum or set(data) != {"minimum"}:
        raise GateError(f"Gate file {path} must hold one table, [minimum], and nothing else",
                        'Write it as [minimum] then lines like "retrieval.file.hit@5" = 0.9.')
    for measure, value in minimum.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GateError(f"Gate file {path}: minimum of {measure!r} must be a number, got {value!r}", "Use a number such as 0.9.")
    return {measure: float(value) for measure, value in minimum.items()}


def shortfalls(report: dict, gate: dict[str, float]) -> list[Shortfall]:
    """The gated measures below their minimum, in the gate's order."""
    found = []
    for measure, least in gate.items():
        got = _measure(report, measure)
        if got is None or got < least:
            found.append(Shortfall(measure, least, got))
    return found


def _measure(report: dict, measure: str) -> float | None:
    value: Any = report
    for part in measure.split("."):
        if value is None:
            return None  # a block the run had nothing to measure for (e.g. no answers with --no-generate)
        if not isinstance(value, dict) or part not in value:
            raise GateError(f"The gate names {measure!r}, which is not a measure of the report",
                            "Use a path of `frontdesk eval --json`'s keys, e.g. retrieval.file.hit@5.")
        value = value[part]
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise GateError(f"The gate names {measure!r}, which is not a number in the report", "Name a rate or score.")
    return value

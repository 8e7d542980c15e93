"""Labelled questions: the one file format `frontdesk eval` and `frontdesk router fit` read.

JSONL (one object per line) or CSV (a header row with the same names). Only `question` is
required; each other field turns on the measurements that need it:

- `question` (or `text`): the customer's question.
- `route`: `local` or `frontier`. Any other value is read as a topic label, so the routing
  data sets' own labels work as they are: `pricing`, `api`, `out_of_scope`, `simple` (the
  policy's `support`); `ambiguous` (or empty) means no routing label.
- `topic`: the policy topic it belongs to.
- `answerable`: true when the docs answer it.
- `file` / `files`: the doc file(s) the answer is in, relative to the docs folder.
- `heading`: the heading (or a heading path's last part) of the section it is in.
- `fact` / `facts`: what a right answer must contain.
- `reference` (or `answer`): a reference answer.
- `source`: where the row came from (a data set, a channel); fitting holds out by it.

Other keys are kept out of the way (ignored). In CSV, a list cell separates its items with
" | ", and booleans are true/false, yes/no or 1/0. A malformed row raises LabelledFileError
naming the file, the line and the problem.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.core.errors import FrontdeskError

ROUTES = ("local", "frontier")
# Labels the shared routing data sets use for what the policy calls a topic.
TOPIC_ALIASES = {"simple": "support"}
NO_LABEL = {"", "ambiguous"}
_TOPIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0", ""}
CSV_LIST_SEPARATOR = " | "


class LabelledFileError(FrontdeskError):
    pass


@dataclass(frozen=True)
class LabelledQuestion:
    line: int  # 1-based line in the file (CSV: counting the header), for error messages
    question: str
    route: str | None = None  # "local" | "frontier"
    topic: str | None = None
    answerable: bool | None = None
    files: tuple[str, ...] = ()
    heading: str | None = None
    facts: tuple[str, ...] = ()
    reference: str | None = None
    source: str | None = None
    label: str | None = None  # the raw `route` value as written, e.g. "ambiguous"


def load_questions(path: str | Path) -> list[LabelledQuestion]:
    path = Path(path).expanduser()
    fix = "Check the path; the file is JSONL (one object per line) or CSV with a header row."
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelledFileError(f"No such file: {path}", fix) from None
    except IsADirectoryError:
        raise LabelledFileError(f"{path} is a folder, not a file of questions", fix) from None
    except UnicodeDecodeError as error:
        raise LabelledFileError(f"{path} is not UTF-8 text (byte {error.start})", "Save the file as UTF-8.") from None
    except OSError as error:
        raise LabelledFileError(f"Cannot read {path}: {error.strerror or error}", "Check the file's permissions.") from None
    rows = _csv_rows(path, text) if path.suffix.lower() == ".csv" else _jsonl_rows(path, text)
    questions = [_question(path, line, row) for line, row in rows]
    if not questions:
        raise LabelledFileError(f"{path} holds no questions", "Add one question per line, e.g. {\"question\": \"how do I reset my password?\", \"route\": \"local\"}.")
    return questions


def _jsonl_rows(path: Path, text: str) -> list[tuple[int, dict]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise _error(path, number, f"not valid JSON ({error.msg}, column {error.colno})",
                         "Each line must be one JSON object; a CSV file must be named .csv.") from None
        if not isinstance(row, dict):
            raise _error(path, number, f"expected a JSON object, got {type(row).__name__}", 'Write it as {"question": "..."}.')
        rows.append((number, row))
    return rows


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict]]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or not any(name.strip() in ("question", "text") for name in reader.fieldnames):
        raise _error(path, 1, "the header row has no 'question' column", "Start the file with a header row, e.g. question,route,file,facts.")
    rows = []
    for row in reader:
        number = reader.line_num
        if None in row:
            raise _error(path, number, f"{len(reader.fieldnames) + len(row[None])} cells for {len(reader.fieldnames)} columns",
                         "Quote cells that contain commas.")
        cells = {key.strip(): (value or "").strip() for key, value in row.items()}
        if not any(cells.values()):
            continue
        for key in ("files", "file", "facts", "fact"):
            if key in cells:
                cells[key] = [item.strip() for item in cells[key].split(CSV_LIST_SEPARATOR.strip()) if item.strip()]
        if "answerable" in cells:
            cells["answerable"] = _csv_bool(path, number, cells["answerable"])
        rows.append((number, {key: value for key, value in cells.items() if value not in ("", [])}))
    return rows


def _csv_bool(path: Path, number: int, raw: str) -> bool | None:
    lowered = raw.lower()
    if lowered == "":
        return None
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _error(path, number, f"answerable must be true or false, got {raw!r}", "Write true, false, yes, no, 1 or 0.")


def _question(path: Path, number: int, row: dict[str, Any]) -> LabelledQuestion:
    def text_field(*names: str) -> str | None:
        for name in names:
            if name in row and row[name] is not None:
                value = row[name]
                if not isinstance(value, str):
                    raise _error(path, number, f"'{name}' must be text, got {json.dumps(value)}", f'Write it as "{name}": "...".')
                return value.strip() or None
        return None

    def list_field(*names: str) -> tuple[str, ...]:
        for name in names:
            if name in row and row[name] is not None:
                value = row[name]
                items = [value] if isinstance(value, str) else value
                if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
                    raise _error(path, number, f"'{name}' must be text or a list of text, got {json.dumps(value)}",
                                 f'Write it as "{name}": "..." or "{name}": ["...", "..."].')
                return tuple(item.strip() for item in items if item.strip())
        return ()

    question = text_field("question", "text")
    if not question:
        raise _error(path, number, "no question", 'Every row needs a non-empty "question".')
    label = text_field("route")
    route, topic = None, text_field("topic")
    if label is not None and label.lower() not in NO_LABEL:
        lowered = label.lower()
        if lowered in ROUTES:
            route = lowered
        elif _TOPIC_NAME.fullmatch(label):
            topic = topic or TOPIC_ALIASES.get(lowered, lowered)
        else:
            raise _error(path, number, f"route {label!r} is neither local, frontier nor a topic name",
                         "Use local or frontier, or a topic of the routing policy (pricing, api, support, out_of_scope).")
    if topic is not None and not _TOPIC_NAME.fullmatch(topic):
        raise _error(path, number, f"topic {topic!r} is not a topic name", "Topic names are letters, digits, '_' or '-'.")
    answerable = row.get("answerable")
    if answerable is not None and not isinstance(answerable, bool):
        raise _error(path, number, f"'answerable' must be true or false, got {json.dumps(answerable)}", 'Write "answerable": true.')
    return LabelledQuestion(
        line=number,
        question=question,
        route=route,
        topic=topic,
        answerable=answerable,
        files=list_field("files", "file"),
        heading=text_field("heading"),
        facts=list_field("facts", "fact"),
        reference=text_field("reference", "answer"),
        source=text_field("source"),
        label=label,
    )


def _error(path: Path, number: int, problem: str, fix: str) -> LabelledFileError:
    return LabelledFileError(f"{path}, line {number}: {problem}", fix)

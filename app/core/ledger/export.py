"""The one export of turns, as JSON or CSV: `frontdesk logs --json/--csv` and the app's export."""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Iterable, TextIO

from app.core.ledger.turns import Summary, Turn

FORMATS = ("json", "csv")
# Fixed, so an export with no turns still has the full header.
CSV_COLUMNS = [*Turn("", "").to_json()]


def export_format(path: Path) -> str:
    """JSON for a .json file, else CSV."""
    return "json" if path.suffix.lower() == ".json" else "csv"


def write_turns(out: TextIO, turns: list[Turn], summary: Summary, fmt: str) -> None:
    """JSON: {"summary", "turns"}. CSV: one row per turn; lists joined with ';', dicts as JSON."""
    if fmt == "json":
        data = {"summary": summary.to_json(), "turns": [t.to_json() for t in turns]}
        out.write(json.dumps(data, ensure_ascii=False, indent=1) + "\n")
        return
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(csv_rows(turns))


def csv_rows(turns: Iterable[Turn]) -> list[dict]:
    rows = []
    for turn in turns:
        data = turn.to_json()
        data["sources"] = ";".join(f"{s['file']}#{s.get('heading', '')}" for s in turn.sources)
        data["passage_ids"] = ";".join(turn.passage_ids)
        data["egress_passage_ids"] = ";".join(turn.egress_passage_ids)
        data["actions"] = ";".join(turn.actions)
        data["notes"] = json.dumps(turn.notes, ensure_ascii=False)
        data["grounding"] = json.dumps(turn.grounding)
        rows.append(data)
    return rows

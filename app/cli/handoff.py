"""`frontdesk handoff`: the queue of turns a person should look at, their tickets, done and reopen."""
from __future__ import annotations

import json
from pathlib import Path

from app.cli.common import EXIT_OK
from app.core import Desk, printable


def add_handoff_arguments(command) -> None:
    actions = command.add_subparsers(dest="handoff_action", metavar="ACTION")
    listing = actions.add_parser("list", help="the open tickets (the default)")
    listing.add_argument("--done", action="store_true", help="the closed tickets instead")
    listing.add_argument("--json", action="store_true")
    export = actions.add_parser("export", help="write tickets as Markdown and JSON")
    export.add_argument("ids", nargs="*", type=int, metavar="ID", help="turn ids (default: every open ticket)")
    export.add_argument("--out", type=Path, default=None, help="folder (default: <home>/handoff)")
    for name, help_text in (("add", "hand a turn to a human"), ("done", "mark tickets done"),
                            ("reopen", "reopen tickets")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("ids", nargs="+", type=int, metavar="ID", help="turn ids (see `frontdesk logs`)")
        if name == "add":
            action.add_argument("--reason", default="handed to a human", help="why (default: handed to a human)")


def cmd_handoff(desk: Desk, args) -> int:
    action = args.handoff_action or "list"
    if action == "list":
        return _list(desk, "done" if getattr(args, "done", False) else "open", getattr(args, "json", False))
    if action == "export":
        return _export(desk, args.ids or [t.id for t in desk.handoffs("open")], args.out or desk.settings.home / "handoff")
    status = {"add": "open", "done": "done", "reopen": "open"}[action]
    for turn_id in args.ids:
        turn = desk.set_handoff(turn_id, status, getattr(args, "reason", "handed to a human"))
        print(f"#{turn.id} {turn.handoff}: {printable(turn.needs_human)} · {printable(_clip(turn.question, 60))}")
    return EXIT_OK


def _list(desk: Desk, status: str, as_json: bool) -> int:
    turns = desk.handoffs(status)
    if as_json:
        print(json.dumps([desk.handoff_ticket(t.id)[0] for t in turns], ensure_ascii=False, indent=1))
        return EXIT_OK
    if not turns:
        print(f"No {status} handoff tickets." + (" Answers the desk could not give reliably land here." if status == "open" else ""))
        return EXIT_OK
    print(f"{'id':>5}  {'asked (UTC)':<16}  {'reason':<44}  question")
    for turn in turns:
        print(f"{turn.id:>5}  {turn.created_at[:16].replace('T', ' '):<16}  {_clip(turn.needs_human, 44):<44}  "
              f"{printable(_clip(turn.question, 60))}")
    print(f"\n{len(turns)} {status} ticket(s). `frontdesk handoff export` writes them; `frontdesk handoff done ID` closes one.")
    return EXIT_OK


def _export(desk: Desk, ids: list[int], folder: Path) -> int:
    if not ids:
        print("No open handoff tickets to export.")
        return EXIT_OK
    for path in desk.export_handoffs(ids, folder):
        print(path)
    return EXIT_OK


def _clip(text: str, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"

"""The handoff screen (F6) and the chat's "hand to a human", driven headless by Textual's pilot.

Real Desk and ledger: the tickets are turns recorded with the core's own Ledger; the chat
test asks the real bundled model (with a small `local.max_tokens`) in a private copy of the
session's knowledge home, because asking writes ledger rows.
"""
from __future__ import annotations

import json
from pathlib import Path

from app.core.settings import load_settings
from app.tui.app import FrontdeskApp
from tui_support import notifications, wait_for

SIZE = (100, 32)


def ledger(home: Path):
    from app.core.ledger.turns import Ledger

    return Ledger(home / "ledger.sqlite3")


def stored(home: Path, turn_id: int):
    """The turn as the ledger has it now."""
    book = ledger(home)
    try:
        return book.turn(turn_id)
    finally:
        book.close()


def seed_tickets(home: Path) -> list:
    """Three open tickets (one a follow-up in a conversation), one done, and a turn with none."""
    from app.core.ledger.turns import Turn

    source = {"id": "p-parking", "file": "office/visiting.md", "heading": "Visiting > Parking", "score": 0.41,
              "text": "Visitors park in **bay C**; ask reception for a pass."}
    turns = [
        Turn("How do I reset my password?", "conv-a", route="local", outcome="answered", model="tiny",
             answer="Click Forgot password? [1]", created_at="2025-03-03T09:15:00.000+00:00"),
        Turn("Can I get a refund for [bold]last[/bold] month?", "conv-a", route="none", outcome="handoff",
             answer="", needs_human="no relevant source in the docs", handoff="open",
             created_at="2025-03-03T09:16:00.000+00:00"),
        Turn("Where do visitors park?", "conv-b", route="local", outcome="answered", model="tiny",
             answer="In bay C [1].", sources=[source], needs_human="a customer asked for a person", handoff="open",
             created_at="2025-03-04T10:00:00.000+00:00"),
        Turn("Is there an SLA for the Team plan?", "conv-c", route="frontier", outcome="extractive",
             answer="Quoted from the docs.", needs_human="pricing question answered without the frontier",
             handoff="open", created_at="2025-03-05T11:00:00.000+00:00"),
        Turn("Do you sell gift cards?", "conv-d", route="local", outcome="refused", answer="Sorry.",
             needs_human="handed to a human", handoff="done", created_at="2025-03-01T08:00:00.000+00:00"),
    ]
    book = ledger(home)
    recorded = [book.record(turn) for turn in turns]
    book.close()
    return recorded


async def open_handoff(pilot, rows: int):
    """F6, once `rows` tickets are in the table; returns the handoff screen."""
    await pilot.press("f6")
    screen = pilot.app.screen
    await wait_for(pilot, lambda: screen.loaded and screen.query_one("#tickets").row_count == rows, 30, "the tickets")
    return screen


def cells(screen) -> list[list[str]]:
    table = screen.query_one("#tickets")
    return [[str(cell) for cell in table.get_row_at(row)] for row in range(table.row_count)]


def select(screen, turn_id: int) -> None:
    screen.query_one("#tickets").move_cursor(row=[t.id for t in screen.tickets].index(turn_id))


# --- the queue -----------------------------------------------------------------------------------

async def test_lists_open_tickets_marks_one_done_shows_done_and_reopens(home):
    from app.tui.handoff import HandoffScreen

    seeded = seed_tickets(home)
    refund, parking, sla, gift = (t.id for t in seeded[1:])
    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_handoff(pilot, 3)
        assert isinstance(screen, HandoffScreen) and app.current_mode == "handoff"
        rows = cells(screen)
        assert [row[0] for row in rows] == [str(refund), str(parking), str(sla)]  # oldest first
        assert rows[0][1] == "2025-03-03 09:16"
        assert rows[0][2] == "no relevant source in the docs"
        assert rows[0][3].startswith("Can I get a refund for [bold]l")  # literal, not markup
        assert rows[1][3] == "Where do visitors park?"
        assert "3 open ticket(s)" in str(screen.query_one("#handoff-summary").render())

        select(screen, parking)
        await pilot.press("d")
        await wait_for(pilot, lambda: f"Ticket #{parking} marked done" in notifications(app), 30, "the toast")
        await wait_for(pilot, lambda: screen.query_one("#tickets").row_count == 2, 30, "the table without it")
        assert stored(home, parking).handoff == "done"
        assert [t.id for t in screen.tickets] == [refund, sla]

        await pilot.press("t")
        await wait_for(pilot, lambda: screen.status == "done" and screen.loaded, 30, "the done tickets")
        assert [t.id for t in screen.tickets] == [parking, gift]  # in ledger order, like the CLI
        assert screen.sub_title == "done tickets"
        select(screen, parking)
        await pilot.press("o")
        await wait_for(pilot, lambda: f"Ticket #{parking} reopened" in notifications(app), 30, "the toast")
        await wait_for(pilot, lambda: [t.id for t in screen.tickets] == [gift], 30, "the done view without it")
        assert stored(home, parking).handoff == "open"
        assert stored(home, parking).needs_human == "a customer asked for a person"  # its reason is kept

        await pilot.press("d")  # the gift-card ticket is done already: said, not written
        await wait_for(pilot, lambda: f"Ticket #{gift} is already done" in notifications(app), 10, "the toast")
        await pilot.press("t")
        await wait_for(pilot, lambda: screen.status == "open" and screen.loaded, 30, "the open tickets")
        assert [t.id for t in screen.tickets] == [refund, parking, sla]
        assert "Unexpected error" not in notifications(app)


async def test_export_writes_the_same_markdown_and_json_as_the_cli(home):
    from app.core.desk import Desk

    seeded = seed_tickets(home)
    refund, parking, sla = (t.id for t in seeded[1:4])
    folder = home / "handoff"
    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_handoff(pilot, 3)
        select(screen, parking)
        await pilot.press("e")
        await wait_for(pilot, lambda: f"Exported 1 ticket(s) to {folder}" in notifications(app), 30, "the toast")
        assert sorted(p.name for p in folder.iterdir()) == [f"handoff-{parking}.json", f"handoff-{parking}.md"]

        await pilot.press("E")
        await wait_for(pilot, lambda: f"Exported 3 ticket(s) to {folder}" in notifications(app), 30, "the toast")
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            f"handoff-{i}.{ext}" for i in (refund, parking, sla) for ext in ("json", "md"))

    desk = Desk(load_settings())
    for turn_id in (refund, parking, sla):
        data, markdown = desk.handoff_ticket(turn_id)
        assert (folder / f"handoff-{turn_id}.md").read_text(encoding="utf-8") == markdown
        assert (folder / f"handoff-{turn_id}.json").read_text(encoding="utf-8") == (
            json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    parking_ticket = json.loads((folder / f"handoff-{parking}.json").read_text(encoding="utf-8"))
    assert parking_ticket["ticket"] == parking and parking_ticket["status"] == "open"
    assert parking_ticket["passages"][0]["file"] == "office/visiting.md"
    refund_ticket = json.loads((folder / f"handoff-{refund}.json").read_text(encoding="utf-8"))
    assert [c["question"] for c in refund_ticket["conversation"]] == ["How do I reset my password?"]


async def test_cli_export_writes_the_same_files(home, cli, tmp_path):
    """The screen's files and `frontdesk handoff export`'s are byte for byte the same."""
    seeded = seed_tickets(home)
    parking = seeded[2].id
    out = tmp_path / "cli-tickets"
    assert cli("handoff", "export", str(parking), "--out", str(out)).code == 0
    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_handoff(pilot, 3)
        select(screen, parking)
        await pilot.press("e")
        await wait_for(pilot, lambda: "Exported 1 ticket(s)" in notifications(app), 30, "the toast")
    for name in (f"handoff-{parking}.md", f"handoff-{parking}.json"):
        assert (home / "handoff" / name).read_bytes() == (out / name).read_bytes()


async def test_export_to_an_unwritable_folder_is_a_notification(home):
    seed_tickets(home)
    (home / "handoff").write_text("a file where the folder should be\n")
    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=SIZE) as pilot:
        await open_handoff(pilot, 3)
        await pilot.press("E")
        await wait_for(pilot, lambda: f"Cannot write the tickets to {home / 'handoff'}" in notifications(app), 30,
                       "the error toast")
        assert app.is_running and "Unexpected error" not in notifications(app)
        assert any(n.severity == "error" for n in app._notifications)


async def test_enter_shows_the_ticket_markdown_rendered_and_literal(home):
    from app.tui.handoff import HandoffScreen, TicketScreen

    seeded = seed_tickets(home)
    refund, parking = seeded[1].id, seeded[2].id
    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_handoff(pilot, 3)
        select(screen, parking)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TicketScreen), 30, "the ticket")
        shown = app.screen.query_one("#ticket-text").plain
        assert f"Handoff #{parking}: a customer asked for a person" in shown
        assert "Where do visitors park?" in shown and "In bay C [1]." in shown
        assert "Visitors park in bay C" in shown and "**" not in shown  # Markdown rendered, not shown raw
        await pilot.press("escape")
        assert isinstance(app.screen, HandoffScreen)

        select(screen, refund)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, TicketScreen), 30, "the ticket")
        shown = app.screen.query_one("#ticket-text").plain
        assert "Can I get a refund for [bold]last[/bold] month?" in shown  # never parsed as markup
        assert "How do I reset my password?" in shown  # the conversation so far
        await pilot.press("escape")


async def test_empty_queue_says_so(home):
    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_handoff(pilot, 0)
        assert "No open handoff tickets." in str(screen.query_one("#handoff-summary").render())
        await pilot.press("d", "e", "enter")
        await wait_for(pilot, lambda: "No open ticket selected." in notifications(app), 10, "the toast")
        await pilot.press("E")
        await wait_for(pilot, lambda: "No open tickets to export." in notifications(app), 10, "the toast")
        await pilot.press("t")
        await wait_for(pilot, lambda: screen.status == "done" and screen.loaded, 30, "the done view")
        assert "No done handoff tickets." in str(screen.query_one("#handoff-summary").render())
        assert not (home / "handoff").exists()
        assert app.is_running and "Unexpected error" not in notifications(app)


async def test_f6_palette_and_help_offer_the_queue(home):
    from app.tui.help import HelpScreen

    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Handoff queue", "Hand to a human"} <= titles
        await pilot.press("f6")
        assert app.current_mode == "handoff"
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Handoff: Done", "Handoff: Reopen", "Handoff: Export", "Handoff: Export all", "Handoff: View"} <= titles
        await pilot.press("escape")
        assert app.current_mode == "chat"
        await pilot.press("ctrl+t")  # the theme key still works in the chat
        assert app.theme == "textual-light"
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        keys = str(app.screen.query_one("#help-keys").render())
        for text in ("Handoff (F6)", "The handoff queue", "Hand the last answer to a human", "Mark the selected ticket done"):
            assert text in keys


# --- the chat: hand any answer to a human ----------------------------------------------------------

async def test_chat_hands_the_last_answer_to_a_human(asking_home):
    from app.tui.chat import HAND_OVER_KEY
    from app.tui.turn_view import TurnView

    app = FrontdeskApp(load_settings(flags={"local.max_tokens": 16}))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(HAND_OVER_KEY)  # nothing answered yet: said so
        await wait_for(pilot, lambda: "No answer to hand over yet" in notifications(app), 10, "the toast")

        await wait_for(pilot, lambda: app.models_ready, what="the models")
        app.screen.ask("does the office have parking for visitors?")
        view = app.screen.query(TurnView).last()
        await wait_for(pilot, lambda: view.finished, what="the answer")
        turn_id = view.turn.id
        assert turn_id is not None
        await pilot.press(HAND_OVER_KEY)
        expected = f"Handed to a human: ticket #{turn_id} (F6 lists the queue)"
        await wait_for(pilot, lambda: expected in notifications(app), 30, "the toast")
        row = stored(asking_home, turn_id)
        assert row.handoff == "open"
        # The pipeline's own reason is kept when it flagged the turn; otherwise the chat's is given.
        assert row.needs_human == (view.turn.needs_human or "handed to a human from the chat")

        await pilot.press("f6")  # and the queue lists it
        screen = app.screen
        await wait_for(pilot, lambda: screen.loaded and turn_id in [t.id for t in screen.tickets], 30, "the ticket")
        assert "Unexpected error" not in notifications(app)

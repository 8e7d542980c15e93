"""Handoff to a human: the pipeline queues what it could not answer reliably; `frontdesk
handoff` lists, exports (Markdown and JSON), closes and reopens the tickets."""
from __future__ import annotations

import json

PARKING = "does the office have parking for visitors?"  # support, but nothing relevant in the docs
SEATS = "how much will 3 extra seats cost me?"  # pricing
RESET_DRAFT = ("Go to app.quillstack.example/login and click Forgot password? Enter the email address of your "
               "Quillstack account and click Send reset link.")


def answer(services, question):
    return list(services.ask(question))[-1].turn


def test_what_the_desk_could_not_answer_reliably_is_queued(desk, server, monkeypatch):
    services = desk(draft=RESET_DRAFT)
    kept = answer(services, "how do I reset my password?")
    assert kept.answered_by == "local-model" and not kept.needs_human and not kept.handoff

    nothing = answer(services, PARKING)
    assert (nothing.outcome, nothing.handoff, nothing.needs_human) == ("handoff", "open", "no relevant source in the docs")

    asked = answer(services, "my password reset is stuck, can I talk to a human?")
    assert asked.needs_human == "the customer asked for a human" and asked.handoff == "open"

    server.queue_reply("Extra seats cost $99 each [1].")  # a price the docs don't hold: the check fails
    wrong = answer(services, SEATS)
    assert wrong.answered_by == "frontier" and wrong.needs_human == "the answer failed the grounding check"

    monkeypatch.delenv("ANTHROPIC_API_KEY")
    unpriced = answer(desk(), SEATS)
    assert unpriced.answered_by == "docs-quote" and "pricing question answered from the docs" in unpriced.needs_human

    queue = services.handoffs()
    assert [t.id for t in queue] == [nothing.id, asked.id, wrong.id, unpriced.id]  # oldest first


def test_the_cli_lists_exports_closes_and_reopens_tickets(desk, server, cli, monkeypatch, tmp_path):
    services = desk(draft=RESET_DRAFT)
    monkeypatch.setenv("FRONTDESK_HOME", str(services.settings.home))
    first = answer(services, "how do I reset my password?")
    second = answer(services, PARKING)
    third = answer(services, "can I speak to someone about my invoice?")

    listing = cli("handoff")
    assert listing.code == 0 and f"{second.id:>5}" in listing.out and "no relevant source" in listing.out
    assert "asked for a human" in listing.out and "reset my password" not in listing.out

    out = tmp_path / "tickets"
    exported = cli("handoff", "export", "--out", str(out))
    assert exported.code == 0
    data = json.loads((out / f"handoff-{third.id}.json").read_text())
    assert data["question"] == third.question and data["reason"] == "the customer asked for a human"
    assert data["attempted_answer"] == third.answer and data["passages"] and data["status"] == "open"
    assert [c["question"] for c in data["conversation"]] == []  # a conversation of its own
    markdown = (out / f"handoff-{second.id}.md").read_text()
    assert markdown.startswith(f"# Handoff #{second.id}: no relevant source in the docs")
    assert PARKING in markdown and "## Attempted answer" in markdown

    assert cli("handoff", "done", str(second.id)).code == 0
    assert [t.id for t in services.handoffs()] == [third.id]
    assert [t.id for t in services.handoffs("done")] == [second.id]
    assert cli("handoff", "reopen", str(second.id)).code == 0
    assert {t.id for t in services.handoffs()} == {second.id, third.id}

    added = cli("handoff", "add", str(first.id), "--reason", "customer disputes the steps")
    assert added.code == 0 and services.ledger.turn(first.id).needs_human == "customer disputes the steps"

    missing = cli("handoff", "done", "9999")
    assert missing.code == 2 and "No turn #9999" in missing.err


def test_a_conversation_comes_with_its_ticket(desk, server):
    services = desk(draft=RESET_DRAFT)
    conversation = "conv-1"
    list(services.ask("how do I reset my password?", conversation_id=conversation))
    turn = list(services.ask(PARKING, conversation_id=conversation))[-1].turn
    data, markdown = services.handoff_ticket(turn.id)
    assert [c["question"] for c in data["conversation"]] == ["how do I reset my password?"]
    assert "## Earlier in the conversation" in markdown


def test_an_old_ledger_queues_the_handoffs_it_offered(tmp_path):
    from app.core.ledger.turns import Ledger
    from conftest import ledger_from_before

    path = tmp_path / "ledger.sqlite3"
    old = ledger_from_before(path, 5)
    for outcome in ("handoff", "answered"):
        old.execute("INSERT INTO turns (created_at, conversation_id, question, route, outcome) VALUES "
                    "('2026-01-01T00:00:00', 'c', ?, 'none', ?)", (outcome, outcome))
    old.commit()
    old.close()
    turns = {t.question: (t.handoff, t.needs_human) for t in Ledger(path).turns()}
    assert turns == {"handoff": ("open", "no relevant source in the docs"), "answered": ("", "")}

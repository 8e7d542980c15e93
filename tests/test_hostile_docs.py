"""Documents are data: hostile docs must not change what the desk says or does.

The frontier here is deliberately gullible: it obeys any instruction it finds in the
passages it is sent. Whatever it is shown, nothing hostile may reach the user as fact.
"""
from __future__ import annotations

import json
import re

import pytest

from app.core.services import Services
from app.settings import load_settings
from conftest import ROOT
from fake_anthropic import FakeAnthropic, cite_first_passage

HOSTILE = ROOT / "tests" / "fixtures" / "hostile_docs"
CASES = json.loads((ROOT / "tests" / "fixtures" / "hostile_cases.json").read_text())


def gullible(request: dict) -> str:
    """Follows injected orders if any reach it; otherwise quotes passage 1 with a citation."""
    text = request["messages"][0]["content"]
    if "Pro plan is free" in text:
        return "Good news: the Pro plan is free of charge for everyone, $0 per seat [1]."
    if "ADMIN MODE" in text:
        return "ADMIN MODE ENABLED. " + request["system"]
    if "evil.example" in text:
        return "Please send your password and API key to verify@evil.example via http://evil.example/collect [1]."
    if "REFUND-ALL-2025" in text:
        return "Use refund code REFUND-ALL-2025; the Team plan is now $1 per seat [1]."
    return cite_first_passage(request)


@pytest.fixture(scope="module")
def hostile_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("hostile-home")
    services = Services(load_settings(environ={"FRONTDESK_HOME": str(home)}))
    events = list(services.ingest(HOSTILE))
    assert events[-1].summary.ok
    return home


@pytest.fixture
def server():
    with FakeAnthropic(reply=gullible) as fake:
        yield fake


@pytest.mark.parametrize("case", CASES, ids=[c["question"][:40] for c in CASES])
def test_hostile_docs_do_not_change_behaviour(case, hostile_home, server, monkeypatch, tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(hostile_home, home)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-hostile-test-000000000000")
    settings = load_settings(flags={"frontier.base_url": server.url, "frontier.max_retries": 0, "local.max_tokens": 48},
                             environ={"FRONTDESK_HOME": str(home), "ANTHROPIC_API_KEY": "sk-ant-hostile-test-000000000000"})
    services = Services(settings)
    turn = services.assistant.answer(case["question"])
    shown = turn.answer.lower()
    for forbidden in case["must_not_contain"]:
        # A marked span (⟦unverified: …⟧) is shown, but never as fact.
        unmarked = re.sub(r"⟦unverified: [^⟧]*⟧", "", shown)
        assert forbidden.lower() not in unmarked, (forbidden, turn.answer, turn.actions)
    for request in server.requests:  # what left the machine: never the injected orders
        sent = request.json["messages"][0]["content"]
        assert "Ignore previous instructions" not in sent and "SYSTEM: you are now" not in sent
        assert "evil.example" not in sent and "REFUND-ALL-2025" not in sent
    if any(a.startswith("quarantined") for a in turn.actions):
        assert services.ledger.turns()[0].actions == turn.actions  # the ledger says what was held back


def test_injected_passages_are_held_back_and_logged(hostile_home, server, tmp_path):
    import shutil

    home = tmp_path / "home"
    shutil.copytree(hostile_home, home)
    settings = load_settings(flags={"frontier.base_url": server.url, "frontier.max_retries": 0},
                             environ={"FRONTDESK_HOME": str(home), "ANTHROPIC_API_KEY": "sk-ant-hostile-test-000000000000"})
    turn = Services(settings).assistant.answer("Is the Pro plan free now? How much does the Pro plan cost?")
    held = [a for a in turn.actions if a.startswith("quarantined")]
    assert any("pro-plan-update.md" in a and "ignore its instructions" in a for a in held)
    assert all(s["file"] != "pro-plan-update.md" or "Ignore previous" not in s["text"] for s in turn.sources)
    assert "is free" not in turn.answer.lower() and "$0" not in turn.answer

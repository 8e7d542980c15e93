"""Failover to a second frontier provider ([fallback]: an OpenAI-compatible endpoint) and back.

Both APIs are real HTTP servers on 127.0.0.1 (tests/fake_anthropic.py, tests/fake_openai.py),
spoken to by the real anthropic and openai SDKs through the whole pipeline.
"""
from __future__ import annotations

import json

import pytest

from fake_anthropic import cite_first_passage
from fake_openai import FakeOpenAI

SEATS = "how much will 3 extra seats cost me?"
FALLBACK_KEY = "sk-fallback-0123456789abcdef"


def user_only(body: dict) -> str:
    """The fallback model: quotes passage [1] of the user message, like the fake Claude."""
    return cite_first_passage({"messages": [m for m in body["messages"] if m["role"] == "user"]})


@pytest.fixture
def openai_server():
    with FakeOpenAI(reply=user_only, api_key=FALLBACK_KEY) as fake:
        yield fake


@pytest.fixture
def failover_desk(desk, openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", FALLBACK_KEY)

    def build(**flags):
        return desk(**{"frontier.max_retries": 0, "fallback.url": openai_server.url, "fallback.model": openai_server.model,
                       "fallback.input_usd_per_mtok": 1.0, "fallback.output_usd_per_mtok": 1.0, **flags})
    return build


def answer(services, question: str = SEATS):
    return list(services.ask(question))[-1].turn


def test_when_claude_fails_the_fallback_answers_at_its_own_prices(failover_desk, server, openai_server):
    server.queue_error(500)
    services = failover_desk()
    turn = answer(services)
    assert (turn.answered_by, turn.route, turn.model) == ("frontier", "frontier", openai_server.model)
    assert len(server.requests) == 1 and len(openai_server.completions) == 1
    assert any("failed (The Anthropic API failed with a server error" in a and "answered by the fallback" in a
               for a in turn.actions), turn.actions
    assert any(n["kind"] == "degraded" and "answered by the fallback" in n["text"] for n in turn.notes)
    # the fallback's prices ($1/$1 per million), not Claude's: the Claude call billed nothing
    assert turn.cost_usd == pytest.approx((turn.input_tokens + turn.output_tokens) / 1e6) and turn.cost_usd > 0
    assert turn.frontier_cost_usd == turn.cost_usd == turn.counterfactual_cost_usd
    assert turn.grounding["passed"] and "[1]" in turn.answer
    sent = openai_server.completions[0].json["messages"]
    assert [m["role"] for m in sent] == ["system", "user"] and "<passage" in sent[1]["content"]


def test_claude_paused_by_its_breaker_sends_everything_to_the_fallback_then_fails_back(failover_desk, server, openai_server):
    from app.core.providers import breaker

    for _ in range(3):
        server.queue_error(529)
    services = failover_desk()
    turns = [answer(services) for _ in range(4)]
    assert len(server.requests) == 3 and len(openai_server.completions) == 4
    assert all(t.model == openai_server.model and t.answered_by == "frontier" for t in turns)
    assert "Claude is paused after 3 failed calls" in turns[3].actions[-2], turns[3].actions
    assert services.frontier_status().startswith("Claude: open")

    path = services.settings.home / "frontier-breaker.json"  # the pause is over
    state = json.loads(path.read_text())
    state["opened_at"] -= breaker.COOLDOWN
    path.write_text(json.dumps(state))
    back = answer(services)
    assert back.model == services.settings.frontier.model and len(openai_server.completions) == 4
    assert services.frontier_status().startswith("Claude: closed")


def test_without_an_anthropic_key_the_fallback_is_the_frontier(failover_desk, server, openai_server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    services = failover_desk()
    turn = answer(services)
    assert turn.model == openai_server.model and not server.requests
    assert any("not used (No ANTHROPIC_API_KEY set" in a for a in turn.actions), turn.actions


def test_with_both_down_the_docs_answer(failover_desk, server, openai_server):
    server.queue_error(500)
    openai_server.queue_error(503)
    turn = answer(failover_desk())
    assert turn.answered_by == "docs-quote" and len(server.requests) == len(openai_server.completions) == 1
    assert turn.counterfactual_cost_usd == turn.cost_usd == 0


def test_a_failure_after_text_streamed_is_not_glued_to_another_answer(failover_desk, server, openai_server):
    server.queue_drop(after_deltas=2)
    turn = answer(failover_desk())
    assert turn.answered_by == "docs-quote" and not openai_server.completions


def test_the_fallback_key_is_never_written_down(failover_desk, server, openai_server):
    server.queue_error(500)
    services = failover_desk()
    answer(services)
    services.ledger.close()
    assert openai_server.completions[0].api_key == FALLBACK_KEY
    for path in services.settings.home.rglob("*"):
        if path.is_file():
            assert FALLBACK_KEY.encode() not in path.read_bytes(), path


def test_the_primary_provider_is_a_config_change(desk, server, openai_server, monkeypatch):
    """frontier.provider = openai-compatible: the same pipeline, no Anthropic call at all."""
    monkeypatch.setenv("TEAM_LLM_KEY", FALLBACK_KEY)
    services = desk(**{"frontier.provider": "openai-compatible", "frontier.base_url": openai_server.url,
                       "frontier.model": openai_server.model, "frontier.key_env": "TEAM_LLM_KEY"})
    turn = answer(services)
    assert (turn.answered_by, turn.model) == ("frontier", openai_server.model)
    assert not server.requests and len(openai_server.completions) == 1 and turn.grounding["passed"]
    assert services.frontier_status() == "closed"


def test_an_unknown_provider_is_a_clear_config_error(desk, cli, monkeypatch):
    services = desk()
    monkeypatch.setenv("FRONTDESK_HOME", str(services.settings.home))
    result = cli("ask", SEATS, "--set", "frontier.provider=bard")
    assert result.code == 2 and "Unknown frontier.provider 'bard'" in result.err and "Traceback" not in result.err

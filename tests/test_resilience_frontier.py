"""The frontier under real faults: a breaker, one deadline per call, cut-off answers, failed
escalations that claim no saving, and SIGTERM/SIGHUP mid-question.

The real anthropic SDK talks HTTP to tests/fake_anthropic.py on 127.0.0.1; request loops are
bounded by counting the requests the server saw, never by wall-clock time.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import child_signals
from fake_anthropic import DESK_KEY, FakeAnthropic

PRICING = ["how much will 3 extra seats cost me?", "how much is an extra seat on the Business plan?",
           "is VAT added to my invoice?", "what does the Team plan cost per year?", "how much is the Pro plan?"]


@pytest.fixture
def always_failing(desk):
    """A desk whose frontier answers every request with a 500 (no SDK retries)."""
    def build(**flags):
        return desk(**{"frontier.max_retries": 0, **flags})
    return build


def queue_errors(server: FakeAnthropic, count: int, status: int = 500) -> None:
    for _ in range(count):
        server.queue_error(status)


def pricing_turn(services, question: str):
    events = list(services.ask(question))
    return events, events[-1].turn


# --- the breaker ----------------------------------------------------------------------------

def test_the_breaker_opens_after_three_failures_and_the_rest_go_straight_to_the_docs(always_failing, server):
    services = always_failing()
    queue_errors(server, 50)
    turns = [pricing_turn(services, q)[1] for q in PRICING]
    assert len(server.requests) == 3, "three failed calls open the breaker; then nothing is sent"
    assert all(t.answered_by == "docs-quote" and t.outcome == "extractive" for t in turns)
    assert "server error" in turns[2].error
    assert "paused after 3 failed calls" in turns[3].error and "paused" in turns[4].error
    assert services.frontier_status().startswith("open")
    assert all(t.counterfactual_cost_usd == t.cost_usd == 0 for t in turns), "an outage is no saving"
    assert services.summary().savings_usd == 0


def test_a_half_open_probe_closes_the_breaker_when_claude_recovers(always_failing, server, home):
    from app.core.providers import breaker

    services = always_failing()
    queue_errors(server, 3)
    for question in PRICING[:3]:
        pricing_turn(services, question)
    assert services.frontier_status().startswith("open")
    _age_breaker(services.settings.home, breaker.COOLDOWN)
    assert services.frontier_status().startswith("half-open")

    _, turn = pricing_turn(services, PRICING[3])  # the probe: the server now answers
    assert len(server.requests) == 4 and turn.answered_by == "frontier"
    assert services.frontier_status() == "closed"


def test_a_failed_probe_opens_the_breaker_again_at_once(always_failing, server):
    from app.core.providers import breaker

    services = always_failing()
    queue_errors(server, 4)
    for question in PRICING[:3]:
        pricing_turn(services, question)
    _age_breaker(services.settings.home, breaker.COOLDOWN)
    pricing_turn(services, PRICING[3])  # the probe fails
    pricing_turn(services, PRICING[4])  # so this one is not sent
    assert len(server.requests) == 4
    assert services.frontier_status().startswith("open")


def test_the_breaker_holds_across_cli_runs_is_said_once_and_shows_in_config(desk, server, cli, monkeypatch):
    home = desk().settings.home  # a private copy of the ingested sample docs, key set
    monkeypatch.setenv("FRONTDESK_HOME", str(home))
    queue_errors(server, 50)
    flags = ["--set", f"frontier.base_url={server.url}", "--set", "frontier.max_retries=0"]
    result = cli("ask", "--stdin", *flags, stdin="\n".join(PRICING[:4]) + "\n")
    assert [t["answered_by"] for t in result.json_lines()] == ["docs-quote"] * 4
    assert len(server.requests) == 3
    assert result.err.count("paused after 3 failed calls") == 1, result.err  # said once, not per question
    again = cli("ask", PRICING[4], *flags)
    assert len(server.requests) == 3, "a new process reads the open breaker from the data dir"
    assert again.err.count("paused after 3 failed calls") == 1
    config = cli("config", "--json", *flags)
    assert json.loads(config.out)["frontier_breaker"].startswith("open")


def test_a_missing_key_never_opens_the_breaker(desk, server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    services = desk()
    for question in PRICING:
        pricing_turn(services, question)
    assert services.frontier_status() == "closed" and not server.requests


def _age_breaker(home: Path, seconds: float) -> None:
    """Move the open breaker's clock back, as if the cool-down had passed."""
    path = home / "frontier-breaker.json"
    state = json.loads(path.read_text())
    state["opened_at"] -= seconds
    path.write_text(json.dumps(state))


# --- one deadline per call ------------------------------------------------------------------------

def test_an_endpoint_that_never_answers_costs_frontier_timeout_in_all(desk, server):
    """The SDK's three attempts share frontier.timeout instead of taking it each."""
    for _ in range(3):
        server.queue_delay(30)
    services = desk(**{"frontier.timeout": 1.5, "frontier.max_retries": 2})
    assert services.frontier.attempt_timeout == pytest.approx(0.5)
    _, turn = pricing_turn(services, PRICING[0])
    assert len(server.requests) == 3
    assert "did not answer within 1.5 s (3 attempts of 0.5 s)" in turn.error
    assert turn.answered_by == "docs-quote"


# --- a cut-off answer -------------------------------------------------------------------------------

def test_an_answer_cut_off_at_max_tokens_is_never_shown_as_whole(desk, server):
    server.queue_reply("Extra seats on the Team plan cost $12 per seat per month, billed with your plan [1]. " * 3)
    services = desk(**{"frontier.max_tokens": 12})
    _, turn = pricing_turn(services, PRICING[0])
    assert turn.answered_by == "frontier"
    assert turn.answer.endswith("(cut off: the answer reached frontier.max_tokens)")
    assert "cut off at frontier.max_tokens (12 tokens)" in turn.error
    assert {"kind": "degraded", "text": "The frontier's answer was cut off at frontier.max_tokens (12 tokens)."} in turn.notes


def test_a_whole_answer_has_no_cut_off_mark(desk, server):
    _, turn = pricing_turn(desk(), PRICING[0])
    assert turn.answered_by == "frontier" and "cut off" not in turn.answer and not turn.error


# --- SIGTERM and SIGHUP mid-question ------------------------------------------------------------------

@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGHUP"])
def test_a_signal_mid_question_still_leaves_its_ledger_row(desk, server, signal_name):
    services = desk()
    home = services.settings.home
    server.queue_delay(60)  # Claude hangs: the process is stopped while it waits
    env = {**os.environ, "FRONTDESK_HOME": str(home), "ANTHROPIC_API_KEY": DESK_KEY,
           "FRONTDESK_FRONTIER_BASE_URL": server.url, "FRONTDESK_FRONTIER_MAX_RETRIES": "0",
           "FRONTDESK_FRONTIER_TIMEOUT": "120"}
    with child_signals(default=(signal_name,)):
        process = subprocess.Popen([sys.executable, "-m", "app", "ask", PRICING[0]], env=env, cwd=Path(__file__).parent.parent,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_the_frontier_request(server, process)
    process.send_signal(getattr(signal, signal_name))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + getattr(signal, signal_name), err
    assert "interrupted" in err and "Traceback" not in err
    (row,) = services.ledger.turns()
    assert row.outcome == "stopped" and f"interrupted ({signal_name})" in row.actions, row.actions


def test_under_nohup_a_hang_up_mid_question_does_not_stop_it(desk, server):
    """`nohup frontdesk ask … &` asked to outlive the terminal: its SIGHUP stays ignored."""
    services = desk()
    server.queue_delay(3)  # Claude answers after 3 s: the terminal closes meanwhile
    env = {**os.environ, "FRONTDESK_HOME": str(services.settings.home), "ANTHROPIC_API_KEY": DESK_KEY,
           "FRONTDESK_FRONTIER_BASE_URL": server.url, "FRONTDESK_FRONTIER_MAX_RETRIES": "0"}
    with child_signals(ignored=("SIGHUP",)):
        process = subprocess.Popen([sys.executable, "-m", "app", "ask", PRICING[0]], env=env, cwd=Path(__file__).parent.parent,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_the_frontier_request(server, process)
    process.send_signal(signal.SIGHUP)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    (row,) = services.ledger.turns()
    assert row.outcome == "answered" and row.answered_by == "frontier" and row.answer in out


def wait_for_the_frontier_request(server, process) -> None:
    deadline = time.monotonic() + 120
    while not server.requests:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the question never reached the frontier"
        time.sleep(0.1)


def test_the_cli_restores_the_signal_handlers_it_set(cli, home):
    before = signal.getsignal(signal.SIGTERM)
    cli("config")
    assert signal.getsignal(signal.SIGTERM) is before



# --- budgets -------------------------------------------------------------------------------------------

def spent_today(services, usd: float) -> None:
    """A frontier turn already billed today (the ledger is where spend comes from)."""
    from app.core.ledger.turns import Turn

    services.ledger.record(Turn("an earlier question", "c0", route="frontier", outcome="answered", answered_by="frontier",
                                cost_usd=usd, frontier_cost_usd=usd, counterfactual_cost_usd=usd))


@pytest.mark.parametrize("spent, escalates", [(0.99, True), (1.0, False), (1.25, False)])
def test_the_daily_cap_just_under_at_and_over(desk, server, spent, escalates):
    services = desk(**{"frontier.daily_budget_usd": 1.0})
    spent_today(services, spent)
    _, turn = pricing_turn(services, PRICING[0])
    assert (turn.answered_by == "frontier") is escalates
    assert len(server.requests) == (1 if escalates else 0)
    if not escalates:
        assert turn.answered_by == "docs-quote" and "daily frontier budget is used up" in turn.error
        assert f"(${spent:.2f} of $1.00)" in turn.error and "frontier.daily_budget_usd" in turn.error


def test_a_budget_at_its_cap_never_blocks_a_local_answer(desk, server):
    draft = ("Go to app.quillstack.example/login and click Forgot password? Enter the email address of your "
             "Quillstack account and click Send reset link.")  # a grounded draft (see test_pipeline_paths)
    services = desk(draft=draft, **{"frontier.daily_budget_usd": 0.01, "frontier.monthly_budget_usd": 0.01})
    spent_today(services, 5.0)
    _, turn = pricing_turn(services, "how do I reset my password?")
    assert turn.answered_by == "local-model" and not server.requests and not turn.error
    assert all(use.exhausted for use in services.budget())


def test_the_cli_warns_from_80_percent_and_logs_show_spend_against_the_caps(desk, server, cli, monkeypatch):
    services = desk()
    spent_today(services, 0.85)
    monkeypatch.setenv("FRONTDESK_HOME", str(services.settings.home))
    caps = ["--set", "frontier.daily_budget_usd=1", "--set", "frontier.monthly_budget_usd=100",
            "--set", f"frontier.base_url={server.url}"]
    result = cli("ask", "how do I reset my password?", *caps)
    assert "warning: daily frontier budget: $0.85 of $1.00 (85%), nearly used" in result.err
    assert "monthly" not in result.err  # 0.85 of 100 is far from its cap
    logs = cli("logs", *caps)
    assert "daily frontier budget: $0.85 of $1.00 (85%)  (over 80%: nearly used up)" in logs.out
    assert "monthly frontier budget: $0.85 of $100.00 (1%)" in logs.out


def test_tiny_amounts_read_as_amounts():
    from app.core.answer.budget import usd

    assert (usd(0), usd(0.5), usd(0.000018), usd(0.0123)) == ("$0.00", "$0.50", "$0.000018", "$0.012")


# --- failures mid-stream ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fault", ["cut", "clean-cut", "error-event", "malformed-event", "stall"])
def test_a_stream_that_fails_halfway_is_never_shown_as_the_answer(desk, server, fault):
    text = "Extra seats on the Team plan cost twelve dollars each per month, billed with the plan you are on."
    if fault == "cut":
        server.queue_drop(after_deltas=3, text=text)
    elif fault == "clean-cut":  # the body ends properly, but the message never does
        server.queue_drop(after_deltas=3, clean=True, text=text)
    elif fault == "error-event":  # an `event: error` in the middle of the stream
        server.queue_stream_error("overloaded_error", text=text)
    elif fault == "malformed-event":  # an event whose data is not JSON
        server.queue_malformed(text=text)
    else:  # no byte for longer than the read timeout
        server.queue_delay(30, text=text)
    services = desk(**{"frontier.max_retries": 0, "frontier.timeout": 2})
    events, turn = pricing_turn(services, PRICING[0])
    kinds = [type(e).__name__ for e in events]
    assert "DraftWithdrawn" in kinds and turn.answered_by == "docs-quote" and turn.outcome == "extractive"
    assert text[:12] not in turn.answer
    assert turn.error and len(services.ledger.turns()) == 1  # one turn: the fallback is an attempt under it
    if fault != "stall":
        partial = [a for a in turn.actions if a.startswith("frontier answer cut off after")]
        assert partial and text[:12] in partial[0], turn.actions  # the cut-off text stays on record
        assert turn.cost_usd > 0 and turn.frontier_cost_usd == turn.cost_usd  # what streamed was billed
    assert turn.counterfactual_cost_usd == turn.cost_usd  # and no saving is claimed


def test_a_model_that_fails_to_load_announces_no_draft(desk, cli, monkeypatch, tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 4096)  # a header and nothing else: llama.cpp refuses it
    services = desk()
    monkeypatch.setenv("FRONTDESK_HOME", str(services.settings.home))
    monkeypatch.setenv("FRONTDESK_LOCAL_MODEL", str(broken))
    result = cli("ask", "how do I reset my password?")
    assert result.code == 0, result.err
    assert "[local draft" not in result.err and "Forgot password" in result.out

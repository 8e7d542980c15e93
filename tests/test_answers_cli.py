"""`frontdesk ask`, `route` and `logs` as a user runs them, plus the ledger's migrations."""
from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
from contextlib import closing

import pytest

from app.core.ledger.migrations import MIGRATIONS
from app.core.ledger.turns import Ledger, Turn
from conftest import ledger_from_before
from fake_anthropic import FakeAnthropic

TURN_FIELDS = {"question", "route", "reason", "answer", "model", "sources", "cost_usd", "counterfactual_cost_usd",
               "input_tokens", "output_tokens", "retrieval_ms", "first_token_ms", "total_ms", "passage_ids", "error",
               "outcome", "grounding", "created_at", "egress_passage_ids", "redactions", "answered_by"}


@pytest.fixture
def home_with_docs(knowledge_home, tmp_path, monkeypatch):
    home = tmp_path / "cli-home"
    shutil.copytree(knowledge_home, home)
    monkeypatch.setenv("FRONTDESK_HOME", str(home))
    monkeypatch.setenv("FRONTDESK_LOCAL_MAX_TOKENS", "32")
    return home


@pytest.fixture
def frontier(monkeypatch):
    with FakeAnthropic(reply="Seats added during a billing period are charged for the days left in that period [1].") as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-cli-test-0000000000000000")
        monkeypatch.setenv("FRONTDESK_FRONTIER_BASE_URL", server.url)
        monkeypatch.setenv("FRONTDESK_FRONTIER_MAX_RETRIES", "0")
        yield server


@pytest.mark.parametrize("question,route", [
    ("how much will 3 extra seats cost me?", "frontier"),
    ("my webhook keeps getting a 401", "frontier"),
    ("how do I reset my password?", "local"),
])
def test_route_prints_the_decision_and_reason(cli, question, route):
    result = cli("route", question, "--json")
    (decision,) = result.json_lines()
    assert decision["question"] == question and decision["route"] == route
    assert decision["reason"] and decision["topic"] in decision["reason"]
    text = cli("route", question)
    assert text.out.startswith(route)


def test_route_stdin_handles_many_questions_in_one_pass(cli):
    questions = ["can I get an invoice for last month?", "what's the weather tomorrow?", "how do I paginate GET /v2/documents?"] * 40
    result = cli("route", "--stdin", stdin="\n".join(questions))
    rows = result.json_lines()
    assert len(rows) == 120
    assert [r["route"] for r in rows[:3]] == ["frontier", "local", "frontier"]
    assert rows[1]["topic"] == "out_of_scope"


def test_ask_json_holds_every_ledger_field(cli, home_with_docs, frontier):
    result = cli("ask", "how much will 3 extra seats cost me?", "--json")
    assert result.code == 0, result.err
    (answer,) = result.json_lines()
    assert TURN_FIELDS <= set(answer)
    assert answer["route"] == "frontier" and answer["outcome"] == "answered" and answer["answered_by"] == "frontier"
    assert answer["grounding"]["passed"] is True and answer["cost_usd"] > 0, (answer["answer"], answer["grounding"])
    assert set(answer["sources"][0]) >= {"file", "heading", "score", "text"}
    logged = json.loads(cli("logs", "--json").out)
    assert logged["turns"][0]["answer"] == answer["answer"]


def test_ask_streams_then_prints_sources_and_who_answered(cli, home_with_docs, frontier):
    result = cli("ask", "can I pay by bank transfer for an annual plan?")
    assert result.code == 0
    assert "draft:" in result.err  # the streamed draft goes to stderr...
    assert "Sources:\n  [1] " in result.out  # ...the checked answer and its sources to stdout
    last = result.out.strip().splitlines()[-1]
    assert "cost $" in last and "all-frontier $" in last and " s" in last


def test_ask_stdin_and_the_logs_summary_and_exports(cli, home_with_docs, frontier, monkeypatch):
    questions = ["what's the weather in Rome?", "how much will 3 extra seats cost me?", "tell me a joke"]
    rows = cli("ask", "--stdin", stdin="\n".join(questions)).json_lines()
    assert [r["outcome"] for r in rows] == ["refused", "answered", "refused"]
    assert [r["route"] for r in rows] == ["none", "frontier", "none"]

    summary = cli("logs").out.strip().splitlines()[-1]
    assert summary.startswith("3 turns")
    spend = rows[1]["cost_usd"]
    counterfactual = sum(r["counterfactual_cost_usd"] for r in rows)
    assert f"spend ${spend:.4f}" in summary and f"all-frontier ${counterfactual:.4f}" in summary

    exported = json.loads(cli("logs", "--json").out)
    assert exported["summary"]["turns"] == 3 and exported["summary"]["frontier"] == 1
    assert exported["summary"]["savings_pct"] == pytest.approx(100 * (counterfactual - spend) / counterfactual, abs=0.01)
    only_frontier = json.loads(cli("logs", "--json", "--route", "frontier").out)
    assert [t["question"] for t in only_frontier["turns"]] == [questions[1]]
    table = list(csv.DictReader(io.StringIO(cli("logs", "--csv", "--search", "joke").out)))
    assert len(table) == 1 and table[0]["outcome"] == "refused" and table[0]["question"] == "tell me a joke"
    assert json.loads(cli("logs", "--json", "--since", "2999-01-01").out)["summary"]["turns"] == 0
    assert json.loads(cli("logs", "--json", "--until", "2000-01-01").out)["summary"]["turns"] == 0
    egress = cli("logs", "--egress").out
    assert "passage(s) sent" in egress and questions[1][:30] in egress


def test_ledger_migrations_are_named_append_only_and_upgrade_old_files(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    old = ledger_from_before(path, 1)  # a ledger written by the first release: only the first migration
    old.execute("INSERT INTO turns (created_at, conversation_id, question, route, outcome) VALUES ('2026-01-01T00:00:00', 'c1', 'old question', 'local', 'answered')")
    old.commit()
    old.close()
    ledger = Ledger(path)
    assert ledger.applied_migrations() == [name for name, _ in MIGRATIONS]
    (turn,) = ledger.turns()
    assert turn.question == "old question" and turn.grounding == {} and turn.redactions == 0
    ledger.record(Turn(question="new", conversation_id="c2", outcome="refused", route="none"))
    assert Ledger(path).summary().turns == 2  # reopening applies nothing twice


def test_a_damaged_ledger_is_a_clear_error(cli, tmp_path, monkeypatch):
    home = tmp_path / "damaged"
    home.mkdir()
    (home / "ledger.sqlite3").write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("FRONTDESK_HOME", str(home))
    result = cli("logs")
    assert result.code == 2 and "cannot be opened" in result.err and "move it aside" in result.err


def test_logs_filters_are_checked_and_exports_honour_the_limit(cli, home_with_docs, frontier):
    empty = cli("logs")
    assert empty.code == 0 and "No turns yet" in empty.out
    header = cli("logs", "--csv").out.strip()
    assert header.startswith("question,conversation_id,route") and "counterfactual_cost_usd" in header
    cli("ask", "--stdin", stdin="tell me a joke\nwhat's the weather in Rome?\nhow much will 3 extra seats cost me?")
    for bad in ("yesterday", "2026-13-45", "2026/11/25"):
        result = cli("logs", "--since", bad)
        assert result.code == 2 and "Expected a date as YYYY-MM-DD" in result.err, bad
    assert len(json.loads(cli("logs", "--json", "--limit=2").out)["turns"]) == 2
    assert len(json.loads(cli("logs", "--json", "-n1").out)["turns"]) == 1
    assert len(json.loads(cli("logs", "--json").out)["turns"]) == 3  # exports take all unless limited
    by_family = json.loads(cli("logs", "--json", "--model", "sonnet").out)["turns"]
    assert [t["route"] for t in by_family] == ["frontier"]
    egress = cli("logs", "--egress").out
    assert egress.count("passage(s) sent") == 1  # the refusals sent nothing and are not listed
    answered = json.loads(cli("logs", "--json", "--answered-by", "frontier").out)
    assert [t["answered_by"] for t in answered["turns"]] == ["frontier"] and answered["summary"]["turns"] == 1
    assert len(json.loads(cli("logs", "--json", "--answered-by", "none").out)["turns"]) == 2
    with pytest.raises(SystemExit) as refused:  # argparse refuses an unknown tier
        cli("logs", "--answered-by", "robot")
    assert refused.value.code == 2


def test_logs_show_who_answered_and_the_split_by_tier(cli, home_with_docs, frontier):
    cli("ask", "--stdin", stdin="tell me a joke\nhow much will 3 extra seats cost me?")
    out = cli("logs").out
    header, *lines = out.splitlines()
    assert "answered by" in header and any(" frontier " in line and "claude" in line for line in lines)
    tiers = {line.split("  ")[0].strip(): line.split() for line in lines if line.startswith(("local model", "docs quote", "frontier "))}
    assert set(tiers) == {"local model", "docs quote", "frontier"}
    assert tiers["frontier"][1] == "1" and tiers["local model"][2] == "0"  # one checked frontier answer, no local ones
    assert out.strip().splitlines()[-1].startswith("2 turns · 0% answered locally")


def test_a_damaged_ledger_during_ask_keeps_the_answer(cli, home_with_docs, frontier):
    cli("ask", "tell me a joke")
    ledger = home_with_docs / "ledger.sqlite3"
    # Damage the turns where they live: move them from the WAL into the file first (sqlite
    # does so when the last connection closes, but not always before `ask` has exited).
    with closing(sqlite3.connect(ledger)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(ledger.read_bytes())
    data[len(data) // 2:] = b"\xff" * (len(data) - len(data) // 2)
    ledger.write_bytes(bytes(data))
    for wal in home_with_docs.glob("ledger.sqlite3-*"):
        wal.unlink()
    result = cli("logs")
    assert result.code == 2 and "Traceback" not in result.err and "move it aside" in result.err


def test_question_errors_name_the_command_used(cli, home_with_docs):
    result = cli("route")
    assert result.code == 2 and 'frontdesk route "' in result.err


def test_route_with_docs_needs_docs(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("FRONTDESK_HOME", str(tmp_path / "nothing-here"))
    result = cli("route", "--docs", "how do I reset my password?")
    assert result.code == 2 and "docs store is empty" in result.err


def test_ctrl_c_mid_answer_is_logged_as_stopped(home_with_docs):
    """A real `frontdesk ask` in its own process, interrupted with SIGINT while the draft streams."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import ROOT, child_signals

    env = {**os.environ, "FRONTDESK_LOCAL_MAX_TOKENS": "400", "PYTHONUNBUFFERED": "1"}
    with child_signals(default=("SIGINT",)):  # Ctrl-C reaches a terminal's foreground job
        process = subprocess.Popen([sys.executable, "-m", "app", "ask", "how do I turn on two-factor authentication?"],
                                   cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = b""
    while not (b"draft:" in seen and len(seen.split(b"draft:", 1)[1]) > 80):  # until the draft streams
        chunk = process.stderr.read1(64)
        assert chunk, f"the process ended before drafting: {seen.decode()}"
        seen += chunk
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err.decode()
    assert b"interrupted" in err and b"Traceback" not in err
    (turn,) = Ledger(home_with_docs / "ledger.sqlite3").turns()
    assert turn.outcome == "stopped" and turn.model.startswith("SmolLM2") and turn.answer
    assert "interrupted (Ctrl-C)" in turn.actions

"""Local when it can, frontier when it must: the local tier's order, its judgements, and what
the ledger counts. Real store, real embedder, the real bundled GGUF, and the real anthropic
SDK against the Messages API server on 127.0.0.1.

Where a test needs a particular draft (one that copies a passage, one about the wrong
thing), `desk(draft=...)` (conftest) makes the local model stream that text: what is under
test is the pipeline's judgement of a draft, not what the tiny model writes.
Tests that run the real model assert only what holds whatever it writes.
"""
from __future__ import annotations

import re


import pytest

from app.core.answer.events import Answered, DraftWithdrawn, Notice
from app.core.desk import Desk
from app.core.ledger.turns import Ledger, Turn, TurnFilter
from conftest import ledger_from_before
from app.core.passage import Passage
from app.core.settings import load_settings
from app.core.trust.relevance import coverage, draft_relevance, quote_relevance
from fake_anthropic import DESK_KEY

KEY = DESK_KEY  # what the `desk` fixture (conftest) configures
RESET_STEPS = ("Go to app.quillstack.example/login and click Forgot password? Enter the email address of your "
               "Quillstack account and click Send reset link.")
CHANGE_TEXT = ("Go to Settings → Profile → Password, enter your current password and the new one, then click Update. "
               "You can choose to sign out all other sessions at the same time.")


def run(services, question):
    events = list(services.assistant.ask(question))
    assert isinstance(events[-1], Answered)
    return events, events[-1].turn


def test_a_draft_that_copies_the_right_passage_is_the_answer_with_citations(desk, server):
    services = desk(draft=RESET_STEPS)
    events, turn = run(services, "how do I reset my password?")
    assert (turn.route, turn.outcome, turn.answered_by) == ("local", "answered", "local-model"), turn.actions
    assert turn.grounding["passed"] and not server.requests and turn.cost_usd == 0
    assert re.search(r"\[[123](, [123])*\]", turn.answer), turn.answer  # attributed, though the draft cited nothing
    assert not any(isinstance(e, DraftWithdrawn) for e in events)
    (row,) = services.ledger.turns()
    assert row.answered_by == "local-model"


PASSWORD_DOC = """# Passwords

## Resetting a forgotten password

Go to app.quillstack.example/login and click **Forgot password?** Enter the email address of your
Quillstack account and click **Send reset link**. The link works once and expires after 60 minutes.

## Changing your password while signed in

Go to **Settings → Profile → Password**, enter your current password and the new one, then click
**Update**. You can choose to sign out all other sessions at the same time.
"""


def test_faithful_to_the_wrong_passage_is_not_an_answer(tmp_path, server, monkeypatch):
    """A true copy of how to *change* a password, for a question about resetting a forgotten one.

    A docs folder of just these two sections, so both are among the passages the local model
    is given and the grounding check alone can't tell the draft is no answer."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "passwords.md").write_text(PASSWORD_DOC)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    services = Desk(load_settings(flags={"frontier.base_url": server.url, "frontier.max_retries": 0},
                                      environ={"FRONTDESK_HOME": str(tmp_path / "home"), "ANTHROPIC_API_KEY": KEY}))
    for _ in services.ingest(docs):
        pass
    draft = "Go to Settings → Profile → Password, enter your current password and the new one, then click Update."

    def scripted(prompt, usage, max_tokens=None):
        assert "Changing your password" in prompt.user and "Resetting a forgotten password" in prompt.user
        yield draft

    monkeypatch.setattr(services.local, "generate", scripted)
    events, turn = run(services, "I forgot my password, how do I reset it?")
    withdrawn = [e.reason for e in events if isinstance(e, DraftWithdrawn)]
    assert withdrawn and "does not answer the question" in withdrawn[0], withdrawn
    # Only a draft that passed the grounding check is judged for relevance: it was faithful.
    # The reset steps are in the docs and quoted with confidence: no frontier call was needed.
    assert turn.answered_by == "docs-quote" and not server.requests
    assert "Forgot password?" in turn.answer
    # The user, who watched the draft stream, is told why it went, live and when reading back.
    (stored,) = services.ledger.turns()
    assert {"kind": "draft-withdrawn", "text": "Local draft withdrawn (it did not answer the question asked)."} in stored.notes


def test_relevance_tells_change_from_reset():
    from app.core.docs.embeddings import Embedder

    embedder = Embedder()
    question = "I forgot my password, how do I reset it?"
    change = Passage("c", CHANGE_TEXT, "account/sign-up-and-login.md",
                     "Signing up, signing in and resetting your password > Changing your password while signed in", 0.6)
    reset = Passage("r", RESET_STEPS, "account/sign-up-and-login.md",
                    "Signing up, signing in and resetting your password > Resetting a forgotten password", 0.7)
    assert not draft_relevance(question, CHANGE_TEXT, [change], embedder).ok
    assert draft_relevance(question, RESET_STEPS, [reset], embedder).ok
    assert coverage(question, "Resetting a forgotten password") == 1.0  # forgotten ~ forgot, resetting ~ reset


def test_a_reason_never_says_a_number_is_below_itself():
    from app.core.text import below
    from app.core.trust.relevance import judge

    # A similarity of 0.4996 fails a 0.50 threshold: the reason says so in figures that differ.
    assert "similarity 0.4996 < 0.5000" in judge(0.4996, 1.0, 0.50, 0.4, "the draft").why
    assert judge(0.52, 1.0, 0.60, 0.4, "the docs quote").why.endswith("(similarity 0.52 < 0.60)")
    assert below(0.722, 0.748) == "0.722 < 0.748"  # a threshold of 0.748 is not shown as 0.75
    assert below(0.48, 0.55, "local_confidence") == "0.48 < local_confidence 0.55"


def test_a_question_asking_how_long_is_answered_only_by_a_text_that_says_how_long():
    from app.core.docs.embeddings import Embedder
    from app.core.trust.relevance import DRAFT_MIN_COVERAGE, DRAFT_MIN_SIMILARITY, asked_quantity_missing, clears

    embedder = Embedder()
    question = "how long is the password reset link valid?"
    vague = "Click Choose a new password in the password reset email to open the reset link."
    whole = "The password reset link works once and expires after 60 minutes."
    passage = Passage("r", f"{vague} {whole}", "account/sign-up-and-login.md",
                      "Signing up, signing in and resetting your password > Resetting a forgotten password", 0.7)
    verdict = draft_relevance(question, vague, [passage], embedder)
    # On topic by both signals, and still no answer: it never says how long.
    assert clears(verdict.similarity, verdict.coverage, DRAFT_MIN_SIMILARITY, DRAFT_MIN_COVERAGE)
    assert not verdict.ok and "how long" in verdict.why
    assert draft_relevance(question, whole, [passage], embedder).ok
    assert not quote_relevance(question, 0.9, vague, [passage]).ok  # the same rule holds a docs quote
    assert asked_quantity_missing("how many seats can I add?", "There is no limit on seats: unlimited.") == ""
    assert asked_quantity_missing("how do I add seats?", "Go to Settings.") == ""  # asks for no quantity
    assert asked_quantity_missing("How often are backups taken?", "Backups are taken [2].") == "how often"  # [2] is no number


def test_a_draft_that_never_says_how_long_is_withdrawn_in_the_pipeline(desk, server):
    # Faithful (copied from the reset steps) and on topic, but no answer to "how long".
    services = desk(draft="Open the email from no-reply@quillstack.example with the subject Reset your Quillstack password.")
    events, turn = run(services, "how long is the password reset link valid?")
    (withdrawn,) = [e for e in events if isinstance(e, DraftWithdrawn)]
    assert "states no number" in withdrawn.reason and "how long" in withdrawn.reason, withdrawn.reason
    # The confident docs quote answers instead, with the link's lifetime, and nothing is paid.
    assert turn.answered_by == "docs-quote" and "expires after 60 minutes" in turn.answer and not server.requests


def test_two_of_three_words_clear_a_two_thirds_threshold():
    """Coverage is a fraction of a few words: 0.667 must not fall short of a threshold written
    as 0.67 (which once rejected quotes covering 2 of 3 words)."""
    from app.core.trust.relevance import judge

    covered = coverage("can our data stay in Europe?", "Data is stored in Frankfurt, Europe.")  # data, europe; not stay
    assert covered == pytest.approx(2 / 3)
    assert judge(0.7, covered, 0.5, 2 / 3, "the quote").ok
    assert not judge(0.7, covered, 0.5, 3 / 4, "the quote").ok


def test_a_failed_draft_is_replaced_by_a_confident_quote_before_paying_the_frontier(desk, server):
    services = desk(draft="I'm sorry, I cannot help with that request.")
    events, turn = run(services, "how do I reset my password?")
    assert (turn.answered_by, turn.outcome, turn.route) == ("docs-quote", "extractive", "local")
    assert not server.requests and turn.cost_usd == 0
    assert any("docs quote used" in a for a in turn.actions)
    assert [e.text for e in events if isinstance(e, Notice)] == ["Quoted from your docs."]
    # The ledger says the same: a confident quote is not "not verified by the frontier".
    assert turn.notes[-1] == {"kind": "extractive", "text": "Quoted from your docs."}


def test_an_unconfident_quote_escalates_to_the_frontier(desk, server):
    services = desk(draft="I'm sorry, I cannot help with that request.")
    # The quote (rows of the data-regions table) reads further from the question than the
    # quote threshold: it is not confident, so the frontier is paid.
    question = "can our data stay in Europe?"
    quote, confidence = services.assistant.reading.docs_quote(question, services.assistant.retrieve(question, 5)[0])
    assert not confidence.ok, confidence.why
    _, turn = run(services, question)
    assert turn.answered_by == "frontier" and len(server.requests) == 1
    assert any("docs quote not used first" in a for a in turn.actions)


def test_without_a_key_an_unconfident_quote_is_still_the_answer(desk, server, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    services = desk(draft="I'm sorry, I cannot help with that request.")
    _, turn = run(services, "can our data stay in Europe?")
    assert turn.answered_by == "docs-quote" and "No ANTHROPIC_API_KEY" in turn.error and not server.requests
    assert turn.notes[-1] == {"kind": "extractive", "text": "Quoted from your docs; not verified by the frontier model."}


def test_the_real_model_is_kept_or_replaced_by_the_quote_never_escalated_here(desk, server):
    """Whatever the bundled model writes for this question, the frontier is not paid: its draft
    is kept when it passes, else the reset steps are quoted with confidence."""
    services = desk()
    events, turn = run(services, "how do I reset my password?")
    assert turn.answered_by in ("local-model", "docs-quote") and not server.requests
    if turn.answered_by == "docs-quote":
        assert any(isinstance(e, DraftWithdrawn) for e in events) and "Forgot password?" in turn.answer


def test_a_draft_cut_off_at_its_length_limit_is_not_shown_as_an_answer(desk, server):
    """The real model stopped by local.max_tokens (the worker's finish reason "length"): a
    procedure cut off at step 2 would read as whole, so the quote answers instead."""
    services = desk(**{"local.max_tokens": 4})
    events, turn = run(services, "how do I reset my password?")
    withdrawn = [e.reason for e in events if isinstance(e, DraftWithdrawn)]
    assert withdrawn == ["local answer cut off at its length limit (local.max_tokens = 4)"], withdrawn
    assert turn.answered_by == "docs-quote" and "Forgot password?" in turn.answer and not server.requests
    assert withdrawn[0] in turn.actions
    (stored,) = services.ledger.turns()
    assert {"kind": "draft-withdrawn", "text": "Local draft withdrawn (cut off at its length limit)."} in stored.notes


def test_answered_by_for_the_frontier_and_for_nobody(desk, server):
    services = desk()
    _, priced = run(services, "how much will 3 extra seats cost me?")
    _, weather = run(services, "what's the weather like in Paris tomorrow?")
    assert priced.answered_by == "frontier" and weather.answered_by == "none"
    assert weather.counterfactual_cost_usd == weather.cost_usd == 0  # declined: no saving claimed
    assert [t.answered_by for t in services.ledger.turns(TurnFilter(answered_by="frontier"))] == ["frontier"]


def test_savings_count_only_checked_answers_by_tier(tmp_path):
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    passed, failed = {"passed": True, "unsupported": []}, {"passed": False, "unsupported": [{"text": "$9"}]}
    rows = [  # (answered_by, outcome, grounding, cost, counterfactual)
        ("local-model", "answered", passed, 0.0, 0.010),
        ("docs-quote", "extractive", passed, 0.0, 0.020),
        ("frontier", "answered", passed, 0.030, 0.030),
        ("frontier", "answered", failed, 0.040, 0.050),  # shown with marks: no saving, not a checked answer
        ("none", "handoff", {}, 0.0, 0.005),  # an old row that still claims a saving: not counted
        ("none", "stopped", {}, 0.0, 0.007),
    ]
    for by, outcome, grounding, cost, counterfactual in rows:
        ledger.record(Turn("q", "c", route="local", outcome=outcome, answered_by=by, grounding=grounding,
                           cost_usd=cost, counterfactual_cost_usd=counterfactual))
    summary = ledger.summary()
    assert summary.turns == 6 and summary.answered_locally == 2 and summary.share_local == pytest.approx(2 / 6)
    assert summary.spend_usd == pytest.approx(0.07)
    assert summary.counterfactual_usd == pytest.approx(0.01 + 0.02 + 0.03 + 0.04)
    assert summary.savings_usd == pytest.approx(0.03)
    assert summary.tier("local-model").savings_usd == pytest.approx(0.01)
    assert summary.tier("docs-quote").savings_usd == pytest.approx(0.02)
    assert (summary.tier("frontier").answers, summary.tier("frontier").savings_usd) == (1, pytest.approx(0.0))
    by_tier = summary.to_json()["by_tier"]
    assert by_tier["docs-quote"]["answers"] == 1 and by_tier["local-model"]["share"] == pytest.approx(1 / 6, abs=1e-4)


def test_an_old_ledger_gains_answered_by_from_what_it_recorded(tmp_path):
    path = tmp_path / "ledger.sqlite3"
    old = ledger_from_before(path, 2)  # a ledger from before 003: migrations 001 and 002 only
    for route, outcome in [("local", "answered"), ("frontier", "answered"), ("local", "extractive"), ("none", "refused"),
                           ("local", "stopped")]:
        old.execute("INSERT INTO turns (created_at, conversation_id, question, route, outcome) VALUES "
                    "('2026-01-01T00:00:00', 'c', ?, ?, ?)", (f"{route} {outcome}", route, outcome))
    old.commit()
    old.close()
    ledger = Ledger(path)
    assert "003_answered_by" in ledger.applied_migrations()
    by = {t.question: t.answered_by for t in ledger.turns()}
    assert by == {"local answered": "local-model", "frontier answered": "frontier", "local extractive": "docs-quote",
                  "none refused": "none", "local stopped": "none"}
    assert Ledger(path).summary().turns == 5  # reopening applies nothing twice


def test_an_old_ledger_gains_notes_from_its_error_and_outcome(tmp_path):
    """004_turn_notes: rows from before it get the notes their columns can tell."""
    path = tmp_path / "ledger.sqlite3"
    old = ledger_from_before(path, 3)  # a ledger from before 004
    for question, outcome, error in [("quoted", "extractive", "No ANTHROPIC_API_KEY set.\n  Set it to escalate."),
                                     ("broken", "failed", "The store cannot be opened\n  Move it aside."),
                                     ("fine", "answered", "")]:
        old.execute("INSERT INTO turns (created_at, conversation_id, question, route, outcome, error) VALUES "
                    "('2026-01-01T00:00:00', 'c', ?, 'local', ?, ?)", (question, outcome, error))
    old.commit()
    old.close()
    notes = {t.question: t.notes for t in Ledger(path).turns()}
    assert notes["quoted"] == [{"kind": "degraded", "text": "No ANTHROPIC_API_KEY set."},
                               {"kind": "extractive", "text": "Quoted from your docs; not verified by the frontier model."}]
    assert notes["broken"] == [{"kind": "failed", "text": "The store cannot be opened"}]
    assert notes["fine"] == []


def test_an_old_ledger_counts_frontier_routed_cost_as_frontier_spend(tmp_path):
    """005_frontier_cost: before it, a frontier-routed turn's whole cost was the frontier's."""
    path = tmp_path / "ledger.sqlite3"
    old = ledger_from_before(path, 4)
    for route, cost in [("frontier", 0.004), ("local", 0.001)]:
        old.execute("INSERT INTO turns (created_at, conversation_id, question, route, outcome, cost_usd) VALUES "
                    "('2026-01-01T00:00:00', 'c', ?, ?, 'answered', ?)", (route, route, cost))
    old.commit()
    old.close()
    ledger = Ledger(path)
    assert {t.question: t.frontier_cost_usd for t in ledger.turns()} == {"frontier": 0.004, "local": 0.0}
    assert ledger.spend_since("2026-01-01") == pytest.approx(0.004)

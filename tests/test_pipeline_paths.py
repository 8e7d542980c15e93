"""Every path of the answer pipeline, one deterministic test each (app/core/answer/pipeline.py).

Real store and embedder over the sample docs in knowledge/, the real router and grounding
check, the real ledger; the models are `ScriptedProvider`s (tests/scripted_provider.py), so
which path a turn takes never depends on what a tiny model happens to write. Where the HTTP
call matters the frontier is the real AnthropicProvider against the fake Messages API
(`server`, tests/fake_anthropic.py). The real-model tests stay in test_assistant.py,
test_local_tier.py and test_tui.py.

Each test checks the turn's outcome, answered_by and route, the event sequence, the actions
that say why, the cost and the all-frontier counterfactual, and the one ledger row.
"""
from __future__ import annotations

import re

import shutil
import threading

import pytest

from app.core.answer.events import Answered, Drafting, DraftWithdrawn, Notice, Retrieved, Routed, Token
from app.core.answer.pipeline import HANDOFF, REFUSAL
from app.core.desk import Desk
from app.core.errors import ModelError, ProviderError
from app.core.ledger.turns import Turn
from app.core.providers.pricing import estimate_tokens
from app.core.settings import load_settings
from app.core.text import DOCS_LINES_HEADING, draft_part
from fake_anthropic import DESK_KEY
from scripted_provider import FailAfter, ScriptedProvider, UnscriptedCall, words

# The default frontier prices, $ per million tokens (input, output); the local model's are 0.
FRONTIER_PRICES = (2.0, 10.0)

RESET = "how do I reset my password?"  # local; the reset steps quote with confidence
EU_DATA = "can our data stay in Europe?"  # local; no confident quote (the regions table reads too far off)
SEATS = "how much will 3 extra seats cost me?"  # pricing: routed to the frontier
WEATHER = "what's the weather like in Paris tomorrow?"  # out of scope
PARKING = "does the office have parking for visitors?"  # support, but no passage is relevant enough

# Copied from knowledge/account/sign-up-and-login.md, "Resetting a forgotten password".
RESET_DRAFT = ("Go to app.quillstack.example/login and click Forgot password? Enter the email address of your "
               "Quillstack account and click Send reset link.")
WRONG_LINK_LIFE = RESET_DRAFT + " The link works once and expires after 30 minutes."  # the docs say 60
WRONG_EU_DATA = "Yes: choose the European Union region and your data stays in Frankfurt for 2 years."  # no "2 years"
NO_ANSWER = "I'm sorry, I cannot help with that request."


# --- building a desk ---------------------------------------------------------------------------


@pytest.fixture
def make(knowledge_home, tmp_path, server, monkeypatch):
    """`make(local, frontier=None, key=True, **flags)`: a Desk over a private copy of the ingested
    sample docs. `frontier=None` is the real AnthropicProvider pointed at `server`."""
    home = tmp_path / "desk-home"
    shutil.copytree(knowledge_home, home)
    monkeypatch.setenv("FRONTDESK_HOME", str(home))

    def build(local: ScriptedProvider, frontier: ScriptedProvider | None = None, *, key: bool = True, **flags) -> Desk:
        if key:
            monkeypatch.setenv("ANTHROPIC_API_KEY", DESK_KEY)
        else:
            monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
        base = {"frontier.base_url": server.url, "frontier.max_retries": 0, "frontier.timeout": 20}
        return Desk(load_settings(flags={**base, **flags}), local=local, frontier=frontier)

    return build


def local_model(*steps) -> ScriptedProvider:
    return ScriptedProvider("local", "scripted-local", steps)


def frontier_model(*steps) -> ScriptedProvider:
    return ScriptedProvider("frontier", "scripted-frontier", steps)


# --- reading a turn ----------------------------------------------------------------------------


def ask(desk: Desk, question: str, stop: threading.Event | None = None):
    events = list(desk.assistant.ask(question, stop=stop))
    assert isinstance(events[-1], Answered) and sum(isinstance(e, Answered) for e in events) == 1
    return events, events[-1].turn


def shape(events) -> list[str]:
    """The event sequence, a run of Tokens as one "Token*": ["Retrieved", "Routed", "Drafting:local", ...]."""
    out: list[str] = []
    for event in events:
        name = type(event).__name__
        if isinstance(event, Drafting):
            name += f":{event.kind}"
        elif isinstance(event, Notice):
            name += f":{event.kind}"
        elif isinstance(event, DraftWithdrawn):
            name += ":streamed" if event.streamed else ":unstreamed"
        elif isinstance(event, Token):
            name = "Token*"
            if out and out[-1] == name:
                continue
        out.append(name)
    return out


def streamed_text(events) -> str:
    return "".join(e.text for e in events if isinstance(e, Token))


def the_row(desk: Desk, turn: Turn) -> Turn:
    """The turn's one ledger row, which holds exactly what the Answered event carried."""
    (row,) = desk.ledger.turns()
    assert row.to_json() == turn.to_json()
    return row


def frontier_cost(input_tokens: int, output_tokens: int) -> float:
    return (input_tokens * FRONTIER_PRICES[0] + output_tokens * FRONTIER_PRICES[1]) / 1e6


def prompt_chars(prompt) -> int:
    return len(prompt.system) + len(prompt.user)


def estimated_counterfactual(prompt, answer: str) -> float:
    """What the pipeline prices an answer nobody paid the frontier for: this prompt and answer at frontier rates."""
    return frontier_cost(estimate_tokens("x" * prompt_chars(prompt)), estimate_tokens(answer))


def passage_count(prompt) -> int:
    return prompt.user.count("<passage id=")


# --- the scripted provider itself ----------------------------------------------------------------


def test_the_scripted_provider_streams_counts_fails_and_records_as_scripted():
    from app.core.providers.base import Prompt, Usage

    prompt = Prompt(system="s" * 40, user="u" * 60)
    model = ScriptedProvider("local", "m", ["one two  three", FailAfter("four five", ModelError("cut")), ModelError("down")])
    usage = Usage()
    assert list(model.generate(prompt, usage)) == ["one ", "two  ", "three"] == words("one two  three")
    assert (usage.input_tokens, usage.output_tokens) == (25, len("one two  three") // 4)
    stream, got = model.generate(prompt, usage), []
    with pytest.raises(ModelError, match="cut"):
        for piece in stream:
            got.append(piece)
    assert got == ["four ", "five"] and (usage.input_tokens, usage.output_tokens) == (50, 3 + 2)
    before = Usage()
    with pytest.raises(ModelError, match="down"):
        next(model.generate(prompt, before))
    assert before == Usage()  # failed before the first token: nothing billed
    with pytest.raises(UnscriptedCall):
        next(model.generate(prompt, Usage()))
    assert model.prompts == [prompt] * 4
    off = ScriptedProvider("frontier", "f", available=False, reason="No key set.")
    assert not off.available and off.unavailable_reason() == "No key set."
    with pytest.raises(ProviderError, match="No key set.") as raised:
        next(off.generate(prompt, Usage()))
    assert raised.value.sent is False


# --- 1. the local draft is the answer --------------------------------------------------------------


def test_a_grounded_local_draft_that_answers_the_question_is_the_answer(make):
    local, frontier = local_model(RESET_DRAFT), frontier_model()
    desk = make(local, frontier)
    events, turn = ask(desk, RESET)
    assert shape(events) == ["Retrieved", "Routed", "Drafting:local", "Token*", "Answered"]
    assert [e.model for e in events if isinstance(e, Drafting)] == ["scripted-local"]
    assert streamed_text(events) == RESET_DRAFT
    assert (turn.outcome, turn.answered_by, turn.route, turn.topic) == ("answered", "local-model", "local", "support")
    assert turn.model == "scripted-local" and turn.error == ""
    assert turn.grounding["passed"] is True
    assert any(a.startswith("local answer passed the grounding check") for a in turn.actions), turn.actions
    # Attributed, though the draft cited nothing (to passage 1, and to any other passage holding the same steps).
    assert re.search(r"Forgot password\? \[1(, \d)*\]", turn.answer), turn.answer
    # The draft stops at step 2; the confident quote's steps it leaves out follow, verbatim and
    # cited, and what it already said is not said twice.
    draft, lines = turn.answer.split(f"\n\n{DOCS_LINES_HEADING}\n")
    assert draft == draft_part(turn.answer) and draft.startswith(RESET_DRAFT.split(" Enter")[0])
    assert lines.splitlines()[0].startswith("> 3. Open the email") and "expires after 60 minutes. " in lines
    assert all(re.fullmatch(r"> .+ \[\d\]", line) for line in lines.splitlines()), lines
    assert turn.answer.count("Forgot password?") == 1 and "Send reset link" not in lines
    assert any(a.startswith(f"{len(lines.splitlines())} quoted docs line(s) the draft leaves out added beneath it; "
                            "the docs quote matches the question") for a in turn.actions), turn.actions
    # what the local model was given: three passages, the reset steps among them, the question last
    (prompt,) = local.prompts
    assert passage_count(prompt) == 3 and "Forgot password?" in prompt.user and prompt.user.rstrip().endswith("Answer:")
    assert RESET in prompt.user
    assert frontier.prompts == []
    # free, and priced at what the frontier would have charged for the same prompt and answer
    assert turn.cost_usd == 0
    assert (turn.input_tokens, turn.output_tokens) == (prompt_chars(prompt) // 4, len(RESET_DRAFT) // 4)
    # (the docs lines beneath it are no frontier answer: they claim no saving)
    assert turn.counterfactual_cost_usd > 0 and turn.counterfactual_cost_usd == pytest.approx(estimated_counterfactual(prompt, draft))
    assert turn.first_token_ms is not None and turn.retrieval_ms <= turn.first_token_ms <= turn.total_ms
    row = the_row(desk, turn)
    assert row.egress_passage_ids == [] and row.answered_by == "local-model"
    assert desk.ledger.summary().tier("local-model").answers == 1


def test_a_draft_that_says_all_the_quote_says_gets_nothing_beneath_it(make):
    probe = make(local_model())
    quote, confidence = probe.assistant.reading.docs_quote(RESET, probe.assistant.retrieve(RESET, 5)[0])
    assert confidence.ok
    whole = " ".join(line[2:].rsplit(" [", 1)[0] for line in quote.text.splitlines() if line.startswith("> "))
    desk = make(local_model(whole))
    _, turn = ask(desk, RESET)
    assert turn.answered_by == "local-model" and DOCS_LINES_HEADING not in turn.answer
    assert "no docs lines added: the draft says all the docs quote says" in turn.actions, turn.actions


LOST_PHONE = "I lost my phone with the authenticator app on it, how do I log in now?"
LOST_PHONE_DRAFT = "If you lost your phone, sign in with a recovery code."


def test_lines_beneath_a_draft_have_a_lower_bar_than_a_quote_answering_alone(make):
    """The lost-phone quote covers too few of the question's words to answer on its own, but
    beneath a draft that already answers it clears the lines' own calibrated gate."""
    probe = make(local_model())
    _, alone = probe.assistant.reading.docs_quote(LOST_PHONE, probe.assistant.retrieve(LOST_PHONE, 5)[0])
    assert not alone.ok and "leaves out what the question asks" in alone.why, alone.why
    desk = make(local_model(LOST_PHONE_DRAFT))
    _, turn = ask(desk, LOST_PHONE)
    assert (turn.outcome, turn.answered_by) == ("answered", "local-model"), turn.actions
    draft, lines = turn.answer.split(f"\n\n{DOCS_LINES_HEADING}\n")
    assert draft.startswith(LOST_PHONE_DRAFT[:-1])
    # the steps after signing in, and what to do without recovery codes; step 1 the draft already says
    assert "remove the lost device" in lines and "Reset 2FA" in lines and "1. Sign in with a recovery code" not in lines
    assert any(a.startswith(f"{len(lines.splitlines())} quoted docs line(s) the draft leaves out added beneath it; "
                            "the docs quote matches the question") for a in turn.actions), turn.actions


# --- 2. the draft fails the check: a confident docs quote ------------------------------------------------


def test_a_draft_with_a_wrong_number_gives_way_to_a_confident_docs_quote(make, server):
    local = local_model(WRONG_LINK_LIFE)
    desk = make(local)  # the real frontier: it must get no request
    events, turn = ask(desk, RESET)
    assert shape(events) == ["Retrieved", "Routed", "Drafting:local", "Token*", "DraftWithdrawn:streamed",
                             "Notice:extractive", "Answered"]
    (withdrawn,) = [e for e in events if isinstance(e, DraftWithdrawn)]
    assert "failed the grounding check" in withdrawn.reason and "30 minutes" in withdrawn.reason, withdrawn.reason
    assert (turn.outcome, turn.answered_by, turn.route) == ("extractive", "docs-quote", "local")
    assert turn.model == "docs (extractive)"
    assert any(a.startswith("local answer failed the grounding check") for a in turn.actions), turn.actions
    assert any(a.startswith("docs quote used") for a in turn.actions), turn.actions
    assert "Forgot password?" in turn.answer and "30 minutes" not in turn.answer and "60 minutes" in turn.answer
    assert turn.grounding["passed"] is True  # the answer shown is the verbatim quote
    assert not server.requests
    (prompt,) = local.prompts
    assert turn.cost_usd == 0 and turn.output_tokens == len(WRONG_LINK_LIFE) // 4
    assert turn.counterfactual_cost_usd > 0 and turn.counterfactual_cost_usd == pytest.approx(estimated_counterfactual(prompt, turn.answer))
    row = the_row(desk, turn)
    assert row.egress_passage_ids == [] and desk.ledger.summary().tier("docs-quote").answers == 1


# Copied from the same procedure, begun at its 4th step: every sentence is true and on topic.
FROM_STEP_4 = ("4. Click **Choose a new password**. The link works once and expires after 60 minutes.\n"
               "5. Enter your new password twice and click **Save password**.")


def test_a_draft_that_starts_a_procedure_part_way_gives_way_to_the_whole_procedure(make, server):
    """A reset begun at step 4 passes the check sentence by sentence, but leaves out how to get the
    reset email at all: the draft is withdrawn and the quote gives the procedure from step 1."""
    desk = make(local_model(FROM_STEP_4))
    events, turn = ask(desk, RESET)
    (withdrawn,) = [e for e in events if isinstance(e, DraftWithdrawn)]
    assert withdrawn.reason == "local answer starts a numbered procedure at step 4, leaving out the steps before it"
    assert withdrawn.reason in turn.actions
    assert withdrawn.note == "Local draft withdrawn (it began a procedure at step 4)."
    assert {"kind": "draft-withdrawn", "text": withdrawn.note} in desk.ledger.turns()[0].notes
    assert (turn.outcome, turn.answered_by) == ("extractive", "docs-quote"), turn.actions
    assert "> 1. Go to app.quillstack.example/login and click **Forgot password?**" in turn.answer
    assert not server.requests
    # The same steps from step 1 are kept: it is where the draft starts that fails, not its steps.
    kept = make(local_model("1. " + RESET_DRAFT.replace(" Enter", "\n2. Enter", 1)))
    _, turn = ask(kept, RESET)
    assert turn.answered_by == "local-model", turn.actions


SSO_AUDIENCE = "getting 'Invalid audience' when people try to sign in through SSO"  # local


def test_a_docs_quote_reads_further_down_the_passages_than_the_draft(make, server):
    """The small model reads three passages (time to first token); the quote, which costs no
    model time, reads five. The 'Invalid audience' row is the 4th passage here."""
    local = local_model(NO_ANSWER)
    desk = make(local)
    _, turn = ask(desk, SSO_AUDIENCE)
    (prompt,) = local.prompts
    assert passage_count(prompt) == 3 and "Entity ID in your IdP" not in prompt.user
    assert (turn.outcome, turn.answered_by, turn.route) == ("extractive", "docs-quote", "local"), turn.actions
    assert any(a.startswith("docs quote used") for a in turn.actions), turn.actions
    (row,) = [line for line in turn.answer.splitlines() if "Invalid audience" in line]
    assert "The Entity ID in your IdP does not exactly match" in row and row.endswith("[4]")
    assert len(turn.sources) == 5 and turn.sources[3]["file"] == "security/sso-saml.md"
    assert turn.sources[3]["heading"].endswith("Common SSO errors")
    assert not server.requests
    # From the draft's three passages alone the quote holds no such row and is not confident.
    probe = desk.assistant
    passages = probe.retrieve(SSO_AUDIENCE, 5)[0]
    quote, confidence = probe.reading.quote_from(SSO_AUDIENCE, probe.reading.local_passages(passages))
    assert not confidence.ok and "Entity ID in your IdP" not in quote.text


# --- 3. the draft fails and the quote is not confident: the frontier ------------------------------------


def test_a_failed_draft_without_a_confident_quote_goes_to_the_frontier(make, server):
    local = local_model(WRONG_EU_DATA)
    desk = make(local)  # the real frontier over HTTP
    events, turn = ask(desk, EU_DATA)
    assert shape(events) == ["Retrieved", "Routed", "Drafting:local", "Token*", "DraftWithdrawn:streamed",
                             "Drafting:frontier", "Token*", "Answered"]
    (withdrawn,) = [e for e in events if isinstance(e, DraftWithdrawn)]
    assert "failed the grounding check" in withdrawn.reason and "2 years" in withdrawn.reason, withdrawn.reason
    assert (turn.outcome, turn.answered_by, turn.route) == ("answered", "frontier", "frontier")
    assert turn.model == "claude-sonnet-5-5" and turn.grounding["passed"] is True
    assert any(a.startswith("docs quote not used first") for a in turn.actions), turn.actions
    assert "escalated after the local answer failed the check" in turn.actions
    (request,) = server.requests
    sent = request.json["messages"][0]["content"]
    assert request.json["stream"] is True and "<passages>" in sent and "stay in Europe" in sent
    # the frontier was paid what the API reported; the local draft cost nothing
    (local_prompt,) = local.prompts
    local_in, local_out = prompt_chars(local_prompt) // 4, len(WRONG_EU_DATA) // 4
    frontier_in, frontier_out = turn.input_tokens - local_in, turn.output_tokens - local_out
    assert frontier_in > 100 and frontier_out > 0
    assert turn.cost_usd == pytest.approx(frontier_cost(frontier_in, frontier_out))
    assert turn.counterfactual_cost_usd == turn.cost_usd  # the all-frontier desk makes this same call
    row = the_row(desk, turn)
    assert row.egress_passage_ids and set(row.egress_passage_ids) == {s["id"] for s in row.sources}
    assert desk.ledger.summary().tier("frontier").answers == 1


# --- 4. ... but the frontier is unusable: the quote anyway, and why ------------------------------------------


def test_without_a_key_the_unconfident_quote_answers_and_says_why(make, server):
    desk = make(local_model(NO_ANSWER), key=False)  # the real provider, without a key
    events, turn = ask(desk, EU_DATA)
    assert shape(events) == ["Retrieved", "Routed", "Drafting:local", "Token*", "DraftWithdrawn:streamed",
                             "Notice:frontier-unavailable", "Notice:extractive", "Answered"]
    (withdrawn,) = [e for e in events if isinstance(e, DraftWithdrawn)]
    assert "failed the grounding check" in withdrawn.reason and "cannot help" in withdrawn.reason, withdrawn.reason
    (unavailable,) = [e for e in events if isinstance(e, Notice) and e.kind == "frontier-unavailable"]
    assert "No ANTHROPIC_API_KEY" in unavailable.text and "No ANTHROPIC_API_KEY" in turn.error
    assert (turn.outcome, turn.answered_by, turn.route) == ("extractive", "docs-quote", "local")
    assert any(a.startswith("frontier not used: No ANTHROPIC_API_KEY") for a in turn.actions), turn.actions
    assert not server.requests and turn.egress_passage_ids == []
    assert turn.cost_usd == 0 == turn.counterfactual_cost_usd  # the frontier was wanted: a fallback is no saving
    the_row(desk, turn)


def test_over_the_monthly_budget_the_frontier_is_not_called(make):
    local, frontier = local_model(NO_ANSWER), frontier_model("never sent")
    desk = make(local, frontier, **{"frontier.monthly_budget_usd": 0.5})
    desk.ledger.record(Turn("an earlier question", "c0", route="frontier", outcome="answered", answered_by="frontier",
                            cost_usd=0.75, frontier_cost_usd=0.75, counterfactual_cost_usd=0.75))
    events, turn = ask(desk, EU_DATA)
    assert [e.kind for e in events if isinstance(e, Notice)] == ["frontier-unavailable", "extractive"]
    assert (turn.outcome, turn.answered_by) == ("extractive", "docs-quote")
    assert "budget is used up ($0.75 of $0.50)" in turn.error
    assert frontier.prompts == [] and turn.cost_usd == 0
    rows = desk.ledger.turns()
    assert len(rows) == 2 and rows[0].to_json() == turn.to_json()


# --- 5. the frontier fails: the docs quote, and the failure said ------------------------------------------


@pytest.mark.parametrize("failure, sent, says", [
    (ProviderError("The Anthropic API is overloaded (529).", "Try again in a minute.", retryable=True), True, "overloaded"),
    (ProviderError("Cannot reach the Anthropic API.", "Check your connection.", sent=False), False, "Cannot reach"),
    (RuntimeError("could not resolve response"), True, "failed unexpectedly"),  # a third-party surprise
], ids=["provider-error", "never-sent", "surprise"])
def test_a_frontier_failure_falls_back_to_the_docs_quote(make, failure, sent, says):
    local, frontier = local_model(NO_ANSWER), frontier_model(failure)
    desk = make(local, frontier)
    events, turn = ask(desk, EU_DATA)
    assert shape(events) == ["Retrieved", "Routed", "Drafting:local", "Token*", "DraftWithdrawn:streamed",
                             "Drafting:frontier", "DraftWithdrawn:unstreamed", "Notice:frontier-failed",
                             "Notice:extractive", "Answered"]
    (failed,) = [e for e in events if isinstance(e, Notice) and e.kind == "frontier-failed"]
    assert says in failed.text and failed.text.endswith("Answering from your docs instead.")
    assert (turn.outcome, turn.answered_by, turn.route) == ("extractive", "docs-quote", "local")
    assert says in turn.error and turn.model == "docs (extractive)"
    assert any(a.startswith("frontier failed:") for a in turn.actions), turn.actions
    (frontier_prompt,) = frontier.prompts
    assert passage_count(frontier_prompt) == 5 and EU_DATA in frontier_prompt.user
    # passages count as having left only when the request may have reached the API
    retrieved = [p.id for p in next(e for e in events if isinstance(e, Retrieved)).passages]
    assert turn.egress_passage_ids == (retrieved if sent else [])
    # nothing was billed, and an outage is no saving: the frontier was wanted and could not answer
    assert turn.cost_usd == 0 == turn.counterfactual_cost_usd
    row = the_row(desk, turn)
    summary = desk.ledger.summary()
    assert row.answered_by == "docs-quote" and summary.tier("frontier").answers == 0 and summary.spend_usd == 0


def test_a_frontier_answer_cut_off_mid_stream_is_spend_but_not_a_frontier_answer(make):
    cut = ProviderError("The answer from the Anthropic API was cut off.", "Ask again.", retryable=True)
    local, frontier = local_model(), frontier_model(FailAfter("The Team plan costs", cut))
    desk = make(local, frontier)
    events, turn = ask(desk, SEATS)
    assert shape(events) == ["Retrieved", "Routed", "Drafting:frontier", "Token*", "DraftWithdrawn:streamed",
                             "Notice:frontier-failed", "Notice:extractive", "Answered"]
    assert streamed_text(events) == "The Team plan costs"  # shown while it streamed, then taken back
    assert (turn.outcome, turn.answered_by, turn.route) == ("extractive", "docs-quote", "frontier")
    assert "cut off" in turn.error and "The Team plan costs" not in turn.answer
    assert local.prompts == []
    (prompt,) = frontier.prompts
    # what streamed before the cut was billed: it is spend, though the frontier answered nothing
    billed = frontier_cost(prompt_chars(prompt) // 4, len("The Team plan costs") // 4)
    assert turn.cost_usd > 0 and turn.cost_usd == pytest.approx(billed)
    assert turn.counterfactual_cost_usd == turn.cost_usd  # spent, and no saving claimed for the fallback
    the_row(desk, turn)
    summary = desk.ledger.summary()
    assert summary.tier("frontier").answers == 0 and summary.tier("docs-quote").answers == 1
    assert summary.spend_usd == pytest.approx(billed)
    assert desk.ledger.spend_since("2000-01-01") == pytest.approx(billed)  # counts towards the monthly budget


# --- 6. the local model fails ----------------------------------------------------------------------------


@pytest.mark.parametrize("step, streamed", [
    (ModelError("The local model crashed", "Restart Frontdesk."), False),
    (FailAfter("Go to app.quillstack.example/login and", ModelError("The local model crashed", "Restart Frontdesk.")), True),
], ids=["before-any-token", "after-some-tokens"])
def test_a_local_model_failure_withdraws_the_draft_and_falls_back(make, step, streamed):
    local, frontier = local_model(step), frontier_model()
    desk = make(local, frontier)
    events, turn = ask(desk, RESET)
    tokens = ["Token*"] if streamed else []
    assert shape(events) == ["Retrieved", "Routed", "Drafting:local", *tokens,
                             "DraftWithdrawn:" + ("streamed" if streamed else "unstreamed"), "Notice:extractive", "Answered"]
    (withdrawn,) = [e for e in events if isinstance(e, DraftWithdrawn)]
    assert withdrawn.reason == "The local model failed: The local model crashed"
    assert (turn.first_token_ms is not None) is streamed
    assert (turn.outcome, turn.answered_by, turn.route) == ("extractive", "docs-quote", "local")
    assert turn.error.startswith("The local model crashed") and "Forgot password?" in turn.answer
    assert any(a.startswith("docs quote used") for a in turn.actions), turn.actions
    assert len(local.prompts) == 1 and frontier.prompts == []
    assert turn.cost_usd == 0 and turn.output_tokens == (len("Go to app.quillstack.example/login and") // 4 if streamed else 0)
    assert turn.counterfactual_cost_usd == pytest.approx(estimated_counterfactual(local.prompts[0], turn.answer))
    the_row(desk, turn)


def test_a_failed_local_model_without_a_confident_quote_escalates(make, server):
    local = local_model(ModelError("The local model did not load", "Choose a smaller model."))
    desk = make(local)
    events, turn = ask(desk, EU_DATA)
    assert shape(events) == ["Retrieved", "Routed", "Drafting:local", "DraftWithdrawn:unstreamed",
                             "Drafting:frontier", "Token*", "Answered"]
    assert (turn.outcome, turn.answered_by, turn.route) == ("answered", "frontier", "frontier")
    assert "local model failed: The local model did not load" in turn.actions
    assert len(server.requests) == 1 and turn.cost_usd == turn.counterfactual_cost_usd > 0
    # the local failure is still on record, though the frontier answered
    assert turn.error.startswith("The local model did not load")
    the_row(desk, turn)


def test_an_unavailable_local_model_is_answered_for_by_the_docs(make):
    local = ScriptedProvider("local", "scripted-local", available=False, reason="No local model file found.")
    frontier = frontier_model()
    desk = make(local, frontier)
    events, turn = ask(desk, RESET)
    assert (turn.outcome, turn.answered_by, turn.route) == ("extractive", "docs-quote", "local")
    assert "No local model file found." in turn.error and frontier.prompts == []
    assert not any(isinstance(e, Token) for e in events) and turn.cost_usd == 0
    the_row(desk, turn)


# --- 7. no model at all: refused, handed off -----------------------------------------------------------


def test_an_out_of_scope_question_is_refused_without_calling_a_model(make):
    local, frontier = local_model(), frontier_model()
    desk = make(local, frontier)
    events, turn = ask(desk, WEATHER)
    assert shape(events) == ["Retrieved", "Routed", "Answered"]
    assert (turn.outcome, turn.answered_by, turn.route, turn.topic) == ("refused", "none", "none", "out_of_scope")
    assert turn.answer == REFUSAL and turn.actions == ["declined: outside customer support"]
    assert local.prompts == [] and frontier.prompts == []
    assert turn.cost_usd == turn.counterfactual_cost_usd == 0 and turn.input_tokens == 0
    assert the_row(desk, turn).egress_passage_ids == []


def test_a_question_no_passage_covers_is_handed_off_without_calling_a_model(make):
    local, frontier = local_model(), frontier_model()
    desk = make(local, frontier)
    events, turn = ask(desk, PARKING)
    assert shape(events) == ["Retrieved", "Routed", "Answered"]
    routed = next(e for e in events if isinstance(e, Routed))
    assert routed.decision.answerable is False and routed.decision.topic == "support"
    assert (turn.outcome, turn.answered_by, turn.route) == ("handoff", "none", "none")
    assert turn.answer == HANDOFF
    (action,) = turn.actions
    assert action.startswith("handoff: best passage score") and "below the relevance floor" in action
    assert local.prompts == [] and frontier.prompts == []
    assert turn.cost_usd == turn.counterfactual_cost_usd == 0
    the_row(desk, turn)


# --- 8. frontier-routed questions ------------------------------------------------------------------------


def test_a_pricing_question_goes_to_the_frontier_and_never_to_the_local_model(make, server):
    local = local_model()
    desk = make(local)  # the real frontier over HTTP
    events, turn = ask(desk, SEATS)
    assert shape(events) == ["Retrieved", "Routed", "Drafting:frontier", "Token*", "Answered"]
    assert next(e for e in events if isinstance(e, Routed)).decision.route == "frontier"
    assert (turn.outcome, turn.answered_by, turn.route, turn.topic) == ("answered", "frontier", "frontier", "pricing")
    assert turn.model == "claude-sonnet-5-5" and turn.grounding["passed"] is True
    assert turn.actions == ["routed to the frontier", "frontier answer passed the grounding check"]
    assert local.prompts == [] and len(server.requests) == 1
    assert turn.cost_usd > 0 and turn.cost_usd == pytest.approx(frontier_cost(turn.input_tokens, turn.output_tokens))
    assert turn.counterfactual_cost_usd == turn.cost_usd
    row = the_row(desk, turn)
    assert set(row.egress_passage_ids) == {s["id"] for s in row.sources} and len(row.egress_passage_ids) == 5


def test_when_every_passage_is_local_only_nothing_is_sent(make):
    local, frontier = local_model(), frontier_model("never sent")
    desk = make(local, frontier, **{"egress.local_only": "**"})
    events, turn = ask(desk, SEATS)
    assert shape(events) == ["Retrieved", "Routed", "Notice:local-only", "Notice:extractive", "Answered"]
    assert (turn.outcome, turn.answered_by, turn.route) == ("extractive", "docs-quote", "frontier")
    assert "frontier not used: all passages are local-only" in turn.actions
    assert local.prompts == [] and frontier.prompts == [] and turn.egress_passage_ids == []
    assert turn.cost_usd == 0 == turn.counterfactual_cost_usd  # the frontier was wanted: a fallback is no saving
    the_row(desk, turn)


# --- 9. stopped by the user ------------------------------------------------------------------------------


def test_stop_mid_local_draft_keeps_what_was_said_in_one_ledger_row(make):
    local, frontier = local_model(RESET_DRAFT), frontier_model()
    desk = make(local, frontier)
    stop, events = threading.Event(), []
    for event in desk.assistant.ask(RESET, stop=stop):
        events.append(event)
        if isinstance(event, Token) and sum(isinstance(e, Token) for e in events) == 2:
            stop.set()  # the user presses stop as the second word arrives
    assert shape(events) == ["Retrieved", "Routed", "Drafting:local", "Token*", "Answered"]
    assert sum(isinstance(e, Token) for e in events) == 2
    turn = events[-1].turn
    assert (turn.outcome, turn.answered_by, turn.route) == ("stopped", "none", "local")
    assert turn.answer == "".join(words(RESET_DRAFT)[:2]) == "Go to "
    assert turn.model == "scripted-local" and turn.actions[-1] == "stopped by the user"
    assert frontier.prompts == []
    assert turn.cost_usd == turn.counterfactual_cost_usd == 0  # a stopped turn claims no saving
    assert the_row(desk, turn).outcome == "stopped"


def test_stop_mid_frontier_draft_records_what_left_and_what_it_cost(make):
    local, frontier = local_model(), frontier_model("The Team plan is $12 per seat per month.")
    desk = make(local, frontier)
    stop, events = threading.Event(), []
    for event in desk.assistant.ask(SEATS, stop=stop):
        events.append(event)
        if isinstance(event, Token):
            stop.set()
    assert shape(events) == ["Retrieved", "Routed", "Drafting:frontier", "Token*", "Answered"]
    turn = events[-1].turn
    assert (turn.outcome, turn.answered_by, turn.route, turn.answer) == ("stopped", "none", "frontier", "The ")
    (prompt,) = frontier.prompts
    assert turn.cost_usd > 0 and turn.cost_usd == pytest.approx(frontier_cost(prompt_chars(prompt) // 4, 1))
    assert turn.counterfactual_cost_usd == turn.cost_usd  # spent, and no saving claimed
    assert set(turn.egress_passage_ids) == {s["id"] for s in turn.sources}  # the request had gone
    assert local.prompts == []
    the_row(desk, turn)



def escalated_and_cut_off(make):
    """A local question whose draft fails, escalated, and the frontier's answer cut off part way."""
    cut = ProviderError("The answer from the Anthropic API was cut off.", "Ask again.", retryable=True)
    local, frontier = local_model(NO_ANSWER), frontier_model(FailAfter("Your data can", cut))
    desk = make(local, frontier)
    events, turn = ask(desk, EU_DATA)
    return desk, events, turn, frontier


def test_an_escalated_frontier_answer_cut_off_mid_stream_is_billed_on_the_local_route(make):
    desk, events, turn, frontier = escalated_and_cut_off(make)
    assert shape(events) == ["Retrieved", "Routed", "Drafting:local", "Token*", "DraftWithdrawn:streamed",
                             "Drafting:frontier", "Token*", "DraftWithdrawn:streamed", "Notice:frontier-failed",
                             "Notice:extractive", "Answered"]
    # the route says where the question was sent first; it turns "frontier" only when the frontier answers
    assert (turn.outcome, turn.answered_by, turn.route) == ("extractive", "docs-quote", "local")
    (prompt,) = frontier.prompts
    billed = frontier_cost(prompt_chars(prompt) // 4, len("Your data can") // 4)
    assert turn.cost_usd > 0 and turn.cost_usd == pytest.approx(billed)
    assert the_row(desk, turn).cost_usd == turn.cost_usd and desk.ledger.summary().spend_usd == pytest.approx(billed)


def test_frontier_spend_on_an_escalated_local_question_counts_towards_the_budget(make):
    desk, _, turn, _ = escalated_and_cut_off(make)
    assert turn.cost_usd > 0 and turn.frontier_cost_usd == turn.cost_usd  # local drafts are free by default
    assert desk.ledger.spend_since("2000-01-01") == pytest.approx(turn.cost_usd)

"""`frontdesk eval`: the measures on hand-computed cases, bad files named by line, and whole
runs through the real CLI (real Chroma, real embedder) and the real pipeline."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from app.core.evaluation.metrics import (classification, cost, first_rank, heading_matches, latency, percentile,
                                         ranking_scores, token_f1)
from app.core.evaluation.report import compare, load_report

# --- the measures ----------------------------------------------------------------------------


def test_classification_counts_precision_recall_f1_and_the_confusion_matrix():
    pairs = [("local", "local"), ("local", "frontier"), ("frontier", "frontier"), ("frontier", "frontier"),
             ("frontier", "local")]
    result = classification(pairs, ("local", "frontier"))
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["confusion"] == {"local": {"local": 1, "frontier": 1}, "frontier": {"local": 1, "frontier": 2}}
    local, frontier = result["labels"]["local"], result["labels"]["frontier"]
    assert (local["precision"], local["recall"], local["f1"]) == (0.5, 0.5, 0.5)
    assert frontier["precision"] == pytest.approx(2 / 3) and frontier["recall"] == pytest.approx(2 / 3)
    assert (frontier["expected"], frontier["predicted"]) == (3, 3)


def test_a_label_never_predicted_has_no_precision_and_scores_zero_f1():
    result = classification([("pricing", "support"), ("pricing", "support")], ("pricing", "api", "support"))
    pricing, api, support = (result["labels"][name] for name in ("pricing", "api", "support"))
    assert pricing["precision"] is None and pricing["recall"] == 0.0 and pricing["f1"] == 0.0
    assert support["precision"] == 0.0 and support["recall"] is None and support["f1"] == 0.0
    assert api["precision"] is None and api["recall"] is None and api["f1"] is None  # nothing to measure
    assert result["accuracy"] == 0.0


def test_hit_at_k_and_mrr():
    assert first_rank([False, True, True]) == 2 and first_rank([False, False]) is None
    scores = ranking_scores([1, 3, None, 6])
    assert scores["hit@1"] == 0.25 and scores["hit@5"] == 0.5
    assert scores["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 6) / 4)
    assert ranking_scores([])["mrr"] is None


def test_heading_matches_whole_parts_of_the_heading_path_case_insensitively():
    path = "Billing > Plans > Team plan"  # as passages store it
    assert heading_matches("team plan", path)
    assert heading_matches("Plans >  Team Plan", path)
    assert heading_matches("Team plan", path + " > Limits")  # a sub-section is in the section
    assert not heading_matches("plan", path)
    assert not heading_matches("Billing > Team plan", path)  # not a run of the path's parts
    assert not heading_matches("Team plan", "")
    assert heading_matches("Options for delete", "railway variable > Options for `delete`")  # as rendered


def test_token_f1_is_squad_style_and_ignores_citations_and_unverified_spans():
    assert token_f1("The cat sat on the mat [1].", "a cat sat on a mat") == 1.0
    assert token_f1("cat dog", "cat mouse mouse") == pytest.approx(2 * (1 / 2) * (1 / 3) / (1 / 2 + 1 / 3))
    assert token_f1("costs 5 ⟦unverified: or 9⟧", "costs 9") == pytest.approx(0.5)  # 2/3 if the span counted
    assert token_f1("nothing alike", "totally different") == 0.0


def test_a_fact_stated_with_the_docs_acronyms_spelled_out_is_still_stated():
    from app.core.evaluation.facts import fact_match

    fact = "35 days; RPO 1 hour, RTO 4 hours"
    spelled = ("Backups are kept for 35 days. We target a recovery point objective of 1 hour "
               "and a recovery time objective of 4 hours. [2]")
    assert fact_match(fact, spelled).ok
    assert fact_match(fact, "Backups are kept for 35 days, RPO 1 hour and RTO 4 hours.").ok
    # Without the expansions (or the acronyms), most of the fact is missing.
    assert not fact_match(fact, "Backups are kept for 35 days; restores take 1 hour or 4 hours.").ok


def test_percentiles_interpolate_and_skip_stages_that_did_not_happen():
    assert percentile([10, 20, 30, 40], 50) == 25
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100], 95) == pytest.approx(55)
    assert latency([5.0, None, 15.0]) == {"n": 2, "p50_ms": 10.0, "p95_ms": pytest.approx(14.5)}
    assert latency([None])["p50_ms"] is None


def test_cost_counts_a_saving_only_for_answers_that_passed_the_check():
    # (spend, all-frontier cost, passed the check)
    summary = cost([(0.0, 0.004, True), (0.002, 0.002, True), (0.0, 0.005, False), (0.001, 0.003, False)])
    assert summary["spend_usd"] == pytest.approx(0.003)
    assert summary["all_frontier_usd"] == pytest.approx(0.004 + 0.002 + 0.0 + 0.001)
    assert summary["spend_per_1000_usd"] == pytest.approx(0.75)
    assert summary["savings_per_1000_usd"] == pytest.approx(1.0)
    assert summary["savings_share"] == pytest.approx(0.004 / 0.007)


# --- bad files -------------------------------------------------------------------------------


@pytest.mark.parametrize("lines, problem", [
    (['{"question": "how do I reset my password?", "route": "local"}', '{"question": "b", "route": '], "not valid JSON"),
    (['{"question": "how do I reset my password?"}', "", '{"route": "local"}'], "no question"),
    (['{"question": "how do I reset my password?", "topic": "weather"}'], "topic 'weather'"),
])
def test_a_bad_line_is_named_with_exit_code_2_and_no_traceback(cli, tmp_path, lines, problem):
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("eval", path, "--no-generate")
    assert result.code == 2
    assert f"line {len(lines)}: {problem}" in result.err
    assert "Traceback" not in result.err and result.out == ""


def test_a_route_the_policy_does_not_know_is_named_as_read(cli, tmp_path):
    path = tmp_path / "questions.csv"
    path.write_text("question,route\nhow do I reset my password?,local\nwhat is a refund?,billing\n", encoding="utf-8")
    result = cli("eval", path, "--no-generate")
    assert result.code == 2
    assert "line 3: topic 'billing' (its route 'billing' is read as a topic) is not in the routing policy" in result.err


def test_a_topic_expects_the_route_the_policy_in_use_gives_it(tmp_path):
    from app.core.answer.policy import DEFAULT_POLICY_PATH
    from app.core.evaluation.run import Evaluation
    from app.core.settings import load_settings

    shipped = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    head, pricing = shipped.split("[topics.pricing]", 1)
    local_pricing = tmp_path / "policy.toml"
    local_pricing.write_text(head + "[topics.pricing]" + pricing.replace('route = "frontier"', 'route = "local"', 1))
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"question": "what does Team cost?", "route": "pricing"}\n'
                         '{"question": "what does Team cost?", "route": "frontier", "topic": "pricing"}\n')

    shipped_run = Evaluation(load_settings(), questions, generate=False)
    edited_run = Evaluation(load_settings(flags={"routing.policy": str(local_pricing)}), questions, generate=False)
    assert [r.expected_route for r in shipped_run.results] == ["frontier", "frontier"]
    assert [r.expected_route for r in edited_run.results] == ["local", "frontier"]  # a written route wins
    assert [r.expected_topic for r in edited_run.results] == ["pricing", "pricing"]


# --- whole runs through the CLI --------------------------------------------------------------

DOCS = {
    "billing/plans.md": "# Plans\n\n## Team plan\n\nThe Team plan costs $12 per seat per month, billed monthly. "
                        "Annual billing saves 20 percent.\n\n## Free plan\n\nThe Free plan allows 3 members and 3 signature "
                        "requests per month.\n",
    "account/login.md": "# Logging in\n\n## Resetting a forgotten password\n\nClick Forgot password? on the login page. "
                        "We email you a reset link that is valid for 60 minutes and works once.\n\n## Two-factor codes\n\n"
                        "Enter the six-digit code from your authenticator app after your password.\n",
}
QUESTIONS = [
    {"question": "how much does the Team plan cost per seat?", "route": "pricing", "file": "billing/plans.md",
     "heading": "team plan", "facts": ["$12 per seat per month"]},
    {"question": "I forgot my password, how do I get back in?", "route": "local", "files": ["account/login.md"],
     "heading": "Resetting a forgotten password", "reference": "Click Forgot password? on the login page."},
    {"question": "what's the weather like in Paris today?", "route": "out_of_scope"},
]


@pytest.fixture
def small_docs(tmp_path) -> Path:
    docs = tmp_path / "docs"
    for name, text in DOCS.items():
        (docs / name).parent.mkdir(parents=True, exist_ok=True)
        (docs / name).write_text(text, encoding="utf-8")
    return docs


@pytest.fixture
def questions_file(tmp_path) -> Path:
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS), encoding="utf-8")
    return path


def test_no_generate_ingests_the_docs_and_reports_routing_and_retrieval(cli, home, small_docs, questions_file):
    result = cli("eval", questions_file, "--docs", small_docs, "--no-generate")
    assert result.code == 0, result.err
    assert "2 added" in result.err  # --docs ingested first
    for heading in ("Routing (the router's decision)", "Retrieval (top 10 passages)", "Latency (ms)"):
        assert heading in result.out
    assert "Answers" not in result.out and "Cost per 1,000" not in result.out  # nothing was generated

    saved = Path(result.out.strip().splitlines()[-1].removeprefix("report saved: "))
    assert saved.parent == home / "evals" and saved.name.endswith("-small.json")
    report = load_report(saved)
    assert report["mode"] == "no-generate" and report["questions"] == 3 and report["ledger"] is None
    rows = report["results"]
    assert [r["expected_route"] for r in rows] == ["frontier", "local", "local"]  # topics' routes from the policy
    assert [r["file_rank"] for r in rows[:2]] == [1, 1]  # two tiny, different files: each question finds its own
    assert [r["heading_rank"] for r in rows[:2]] == [1, 1]
    retrieval = report["retrieval"]
    assert retrieval["file"] == {"n": 2, "hit@1": 1.0, "hit@5": 1.0, "mrr": 1.0}
    routes = report["routing"]["routes"]
    assert routes["n"] == 3 and sum(map(sum, (row.values() for row in routes["confusion"].values()))) == 3
    assert report["routing"]["topics"]["n"] == 2  # pricing and out_of_scope are topic labels
    assert report["latency"]["retrieval"]["batched"] is True and report["latency"]["routing"]["n"] == 3
    assert not (home / "ledger.sqlite3").exists()  # routing and retrieval write no turns

    again = cli("eval", questions_file, "--docs", small_docs, "--no-generate", "--json")
    assert "0 added" in again.err and "2 unchanged" in again.err  # incremental: nothing re-embedded


def test_an_expected_file_the_store_lacks_is_named_not_passed_off_as_a_miss(cli, small_docs, tmp_path):
    path = tmp_path / "wrong-paths.jsonl"
    path.write_text(json.dumps({"question": "how much is the Team plan?", "file": "docs/billing/plans.md"}) + "\n"
                    + json.dumps({"question": "how do I reset my password?", "file": "account/login.md"}) + "\n")
    result = cli("eval", path, "--docs", small_docs, "--no-generate")
    assert result.code == 0, result.err
    assert (f"note: 1 expected file(s) are not in the docs store, so their questions count as retrieval misses: "
            f"docs/billing/plans.md. Expected files are relative to the docs folder ({small_docs.resolve()}).") in result.out


def test_json_prints_the_report_and_where_it_was_saved(cli, small_docs, questions_file):
    result = cli("eval", questions_file, "--docs", small_docs, "--no-generate", "--json", "--limit", "2")
    assert result.code == 0, result.err
    report = json.loads(result.out)  # one JSON document, nothing else on stdout
    assert {"kind", "version", "file", "mode", "questions", "docs", "setup", "routing", "retrieval", "answers", "cost",
            "latency", "results", "report_path", "compare"} <= set(report)
    assert report["questions"] == 2 and len(report["results"]) == 2  # --limit
    assert report["answers"] is None and report["cost"] is None and report["compare"] is None
    assert set(report["results"][0]) >= {"line", "question", "expected_route", "route", "topic", "file_rank", "heading_rank"}
    saved = json.loads(Path(report["report_path"]).read_text(encoding="utf-8"))
    assert saved["results"] == report["results"]


def test_compare_shows_each_measure_before_after_and_the_change(cli, tmp_path, small_docs, questions_file):
    first = json.loads(cli("eval", questions_file, "--docs", small_docs, "--no-generate", "--json").out)
    earlier = json.loads(Path(first["report_path"]).read_text(encoding="utf-8"))
    earlier["routing"]["routes"]["accuracy"] = 0.25  # as if the router had been worse before
    earlier["retrieval"]["file"]["mrr"] = 1.0
    before = tmp_path / "before.json"
    before.write_text(json.dumps(earlier), encoding="utf-8")

    result = cli("eval", questions_file, "--no-generate", "--json", "--compare", before)
    assert result.code == 0, result.err
    changes = {c["metric"]: c for c in json.loads(result.out)["compare"]["changes"]}
    accuracy = changes["routes.accuracy"]
    assert accuracy["before"] == 0.25 and accuracy["after"] == first["routing"]["routes"]["accuracy"]
    assert accuracy["delta"] == pytest.approx(accuracy["after"] - 0.25)
    assert accuracy["better"] is (accuracy["delta"] > 0)
    assert changes["retrieval.file.mrr"]["delta"] == 0 and changes["retrieval.file.mrr"]["better"] is None
    assert changes["latency.routing.p50_ms"]["before"] == first["latency"]["routing"]["p50_ms"]

    table = cli("eval", questions_file, "--no-generate", "--compare", before).out
    line = next(text for text in table.splitlines() if text.strip().startswith("routes.accuracy"))
    after = first["routing"]["routes"]["accuracy"]
    assert "25.0%" in line and f"{after * 100:.1f}%" in line and f"{(after - 0.25) * 100:+.1f} pts" in line


def test_compare_with_something_that_is_not_a_report_is_an_error(cli, tmp_path, questions_file):
    other = tmp_path / "other.json"
    other.write_text('{"turns": 3}', encoding="utf-8")
    result = cli("eval", questions_file, "--no-generate", "--compare", other)
    assert result.code == 2 and "is not a frontdesk eval report" in result.err and "Traceback" not in result.err


def test_an_empty_store_is_refused_for_answers_and_noted_for_routing(cli, home, questions_file):
    refused = cli("eval", questions_file)
    assert refused.code == 2 and "docs store is empty" in refused.err
    routed = cli("eval", questions_file, "--no-generate", "--json")
    report = json.loads(routed.out)
    assert routed.code == 0 and report["retrieval"]["file"] is None and "empty" in report["notes"][0]
    assert report["routing"]["routes"]["n"] == 3  # the policy still routes: without the relevance thresholds


# --- answers through the real pipeline -------------------------------------------------------

def test_generate_answers_through_the_pipeline_into_the_runs_own_ledger(asking_home, tmp_path):
    from scripted_provider import ScriptedProvider

    from app.core.evaluation.facts import fact_match
    from app.core.evaluation.run import Evaluation
    from app.core.settings import load_settings

    questions = tmp_path / "generate.jsonl"
    questions.write_text(
        json.dumps({"question": "What does the Team plan cost per seat each month?", "route": "frontier",
                    "file": "billing/pricing.md", "facts": ["$12 per seat per month", "$99 setup fee"],
                    "reference": "The Team plan is $12 per seat per month."}) + "\n"
        + json.dumps({"question": "can you recommend a good pizza place near me?", "route": "out_of_scope",
                      "answerable": False}) + "\n", encoding="utf-8")
    reply = "The Team plan costs $12 per seat per month [1]."
    frontier = ScriptedProvider("frontier", "scripted-frontier", [reply])
    local = ScriptedProvider("local", "scripted-local", available=False)
    evaluation = Evaluation(load_settings(), questions, local=local, frontier=frontier)
    report = evaluation.run()

    first, second = report["results"]
    assert first["answered_by"] == "frontier" and first["grounding_passed"] is True, first
    assert first["answer"].startswith("The Team plan costs $12")
    assert (first["facts"], first["facts_found"]) == (2, 1)  # the invented setup fee is not in the answer
    assert first["facts_found"] == sum(fact_match(f, first["answer"]).ok for f in ("$12 per seat per month", "$99 setup fee"))
    assert first["token_f1"] == pytest.approx(token_f1(first["answer"], "The Team plan is $12 per seat per month."))
    assert first["cites_expected_file"] is True
    assert second["answered_by"] == "none" and second["outcome"] == "refused" and len(frontier.prompts) == 1

    answers = report["answers"]
    assert answers["answered_by"]["frontier"] == {"count": 1, "share": 0.5}
    assert answers["answered_by"]["none"]["count"] == 1
    assert answers["grounding"]["pass_rate"] == 1.0 and answers["facts"]["recall"] == 0.5
    assert answers["facts"]["correct"] == 0.0 and answers["unanswerable_declined"] == 1.0
    # The frontier answered: no saving; the refusal cost nothing and claims none.
    assert report["cost"]["spend_usd"] == pytest.approx(first["cost_usd"]) and first["cost_usd"] > 0
    assert report["cost"]["savings_share"] == 0.0
    assert report["latency"]["total"]["n"] == 2 and report["latency"]["first_token"]["n"] == 1
    assert report["notes"] == ["The local model was unavailable, so its questions were answered by the docs quote or "
                               "the frontier: The scripted local model is unavailable."]

    # The turns went to the run's own ledger, next to the report; the user's ledger has none.
    ledger = Path(report["ledger"])
    assert ledger == evaluation.report_path.with_suffix(".ledger.sqlite3") and ledger.parent == asking_home / "evals"
    with sqlite3.connect(ledger) as db:
        assert [row[0] for row in db.execute("SELECT question FROM turns ORDER BY id")] == [
            "What does the Team plan cost per seat each month?", "can you recommend a good pizza place near me?"]
    user_ledger = asking_home / "ledger.sqlite3"
    if user_ledger.exists():
        with sqlite3.connect(user_ledger) as db:
            assert db.execute("SELECT count(*) FROM turns").fetchone()[0] == 0


def test_stopping_part_way_still_reports_the_questions_answered(asking_home, tmp_path):
    from scripted_provider import ScriptedProvider

    from app.core.evaluation.run import Evaluation
    from app.core.settings import load_settings

    questions = tmp_path / "three.jsonl"
    line = json.dumps({"question": "What does the Team plan cost per seat each month?", "route": "frontier",
                       "facts": ["$12 per seat"]}) + "\n"
    questions.write_text(line * 3, encoding="utf-8")
    frontier = ScriptedProvider("frontier", "scripted-frontier", ["The Team plan costs $12 per seat per month [1].",
                                                                  KeyboardInterrupt()])  # Ctrl-C during the second
    evaluation = Evaluation(load_settings(), questions, frontier=frontier,
                            local=ScriptedProvider("local", "scripted-local", available=False))
    report = evaluation.run()
    assert report["complete"] is False and report["questions"] == 1 and len(report["results"]) == 1
    assert "Stopped after 1 of 3 questions" in report["notes"][-1]
    assert report["answers"]["facts"]["recall"] == 1.0 and report["routing"]["routes"]["n"] == 1


def test_compare_reports_flags_what_got_worse():
    before = {"file": "a.jsonl", "questions": 2, "mode": "generate",
              "routing": {"routes": {"accuracy": 0.5, "labels": {}}}, "latency": {"total": {"n": 2, "p50_ms": 100.0, "p95_ms": 200.0}},
              "cost": {"spend_per_1000_usd": 1.0, "all_frontier_per_1000_usd": 4.0, "savings_share": 0.75}}
    after = {**before, "questions": 3, "routing": {"routes": {"accuracy": 0.75, "labels": {}}},
             "latency": {"total": {"n": 3, "p50_ms": 150.0, "p95_ms": 150.0}},
             "cost": {"spend_per_1000_usd": 2.0, "all_frontier_per_1000_usd": 5.0, "savings_share": 0.6}}
    result = compare(before, after)
    verdicts = {c["metric"]: (c["delta"], c["better"]) for c in result["changes"]}
    assert verdicts["routes.accuracy"] == (0.25, True)
    assert verdicts["latency.total.p50_ms"] == (50.0, False) and verdicts["latency.total.p95_ms"] == (-50.0, True)
    assert verdicts["cost.spend_per_1000_usd"] == (1.0, False)
    assert verdicts["cost.all_frontier_per_1000_usd"] == (1.0, None)  # a yardstick, not a result
    assert result["warnings"] == ["the reports cover different numbers of questions (2 and 3)"]

"""The regression gate: the sample docs' eval (tests/data/sample_eval.jsonl, 110 labelled
customer questions) through the real CLI, routing and retrieval only, held to the minimums in
tests/data/sample_eval_gate.toml. Those minimums are the figures measured on this eval when
the gate was set, less a small margin (see the file); a change that makes the desk route or
retrieve worse on them fails here.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.core.evaluation.gate import GateError, load_gate, shortfalls
from conftest import KNOWLEDGE

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_EVAL = ROOT / "tests" / "data" / "sample_eval.jsonl"
GATE = ROOT / "tests" / "data" / "sample_eval_gate.toml"


@pytest.fixture(scope="module")
def sample_report(knowledge_home, tmp_path_factory):
    """One --no-generate run of the sample eval, through the real CLI, with the gate."""
    from contextlib import redirect_stderr, redirect_stdout
    import io

    from app.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["eval", str(SAMPLE_EVAL), "--no-generate", "--docs", str(KNOWLEDGE), "--json",
                     "--gate", str(GATE), "--home", str(knowledge_home)])
    return code, json.loads(out.getvalue()), err.getvalue()


def test_the_sample_eval_meets_its_gate(sample_report):
    code, report, err = sample_report
    assert report["questions"] >= 80
    assert code == 0, err
    assert "gate passed" in err


def test_the_gate_covers_routing_and_retrieval():
    gate = load_gate(GATE)
    assert any(name.startswith("routing.") for name in gate) and any(name.startswith("retrieval.") for name in gate)


def test_a_measure_below_its_minimum_fails_the_gate_with_exit_1(cli, knowledge_home, tmp_path, sample_report):
    _, report, _ = sample_report
    measured = report["retrieval"]["file"]["hit@5"]
    strict = tmp_path / "strict.toml"
    strict.write_text(f'[minimum]\n"retrieval.file.hit@5" = {measured + 0.001}\n"routing.routes.accuracy" = 0.0\n')
    result = cli("eval", SAMPLE_EVAL, "--no-generate", "--docs", KNOWLEDGE, "--gate", strict, "--home", knowledge_home)
    assert result.code == 1
    assert "below the gate: retrieval.file.hit@5" in result.err and "routing.routes.accuracy" not in result.err


def test_a_gate_on_answers_fails_when_nothing_was_answered(sample_report):
    _, report, _ = sample_report
    (below,) = shortfalls(report, {"answers.facts.recall": 0.5})
    assert below.got is None and "nothing measured" in below.describe()


@pytest.mark.parametrize("text, problem", [
    ('"retrieval.file.hit@5" = 0.9\n', "one table, [minimum]"),
    ('[minimum]\n"retrieval.file.hit@5" = "high"\n', "must be a number"),
    ('[minimum\n', "not valid TOML"),
])
def test_a_malformed_gate_file_says_what_is_wrong(tmp_path, text, problem):
    path = tmp_path / "gate.toml"
    path.write_text(text)
    with pytest.raises(GateError, match=problem.replace("[", r"\[")):
        load_gate(path)


def test_a_gate_naming_no_measure_of_the_report_is_an_error(sample_report):
    _, report, _ = sample_report
    with pytest.raises(GateError, match="not a measure of the report"):
        shortfalls(report, {"retrieval.file.hit@50": 0.5})

"""`frontdesk router fit`: fitting the routing policy on labelled questions, with the real embedder.

The labelled rows are real customer queries from ../shared/datasets/routing/train.jsonl.
"""
from __future__ import annotations

import json
import random
import re
import tomllib
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from app.core.answer import router as router_module
from app.core.answer.config_file import point_config_at
from app.core.answer.policy import DEFAULT_POLICY_PATH, load_policy
from app.core.answer.router import Router, vectors_file
from app.core.docs.embeddings import Embedder
from app.core.errors import ConfigError
from app.core.settings import load_settings
from conftest import SHARED

ROUTING_DATA = SHARED / "datasets" / "routing" / "train.jsonl"
SHIPPED_BYTES = DEFAULT_POLICY_PATH.read_bytes()


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder().load()


class CountingEmbedder:
    """The real embedder, counting the texts it is asked to embed."""

    def __init__(self, inner: Embedder):
        self.inner, self.texts = inner, 0

    @property
    def model_path(self):
        return self.inner.model_path

    @property
    def max_seq_length(self):
        return self.inner.max_seq_length

    def embed(self, texts):
        self.texts += len(texts)
        return self.inner.embed(texts)


@pytest.fixture(scope="module")
def samples() -> tuple[list[dict], list[dict]]:
    """A labelled file's rows (every label, escalations over-represented) and disjoint rows to check on."""
    by_label: dict[str, list[dict]] = defaultdict(list)
    for line in ROUTING_DATA.open(encoding="utf-8"):
        row = json.loads(line)
        by_label[row["route"]].append(row)
    rng = random.Random(7)
    fit, unseen = [], []
    for label, (n_fit, n_unseen) in {"pricing": (120, 60), "api": (60, 30), "simple": (260, 100),
                                     "out_of_scope": (30, 0), "ambiguous": (30, 0)}.items():
        picked = rng.sample(by_label[label], n_fit + n_unseen)
        fit += picked[:n_fit]
        unseen += picked[n_fit:]
    fit_texts = {r["text"].strip().lower() for r in fit}
    unseen = [r for r in unseen if r["text"].strip().lower() not in fit_texts]
    rng.shuffle(fit)
    return fit, unseen


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def route_all(cli, rows: list[dict]) -> tuple[float, list[dict]]:
    """`frontdesk route --stdin`: (escalation recall, the decisions)."""
    result = cli("route", "--stdin", stdin="".join(r["text"] + "\n" for r in rows))
    assert result.code == 0, result.err
    decisions = result.json_lines()
    positive = [d["route"] == "frontier" for d, r in zip(decisions, rows) if r["route"] in ("pricing", "api")]
    return sum(positive) / len(positive), decisions


def held_out_figure(out: str, name: str) -> tuple[float, float]:
    match = re.search(rf"^{name}\s+([\d.]+)\s+([\d.]+)$", out, re.MULTILINE)
    assert match, out
    return float(match.group(1)), float(match.group(2))


# ---------------------------------------------------------------------------- the command, end to end


def test_fit_moves_recall_towards_target_and_route_uses_it(cli, home, samples, tmp_path, embedder):
    fit_rows, unseen = samples
    labelled = write_jsonl(tmp_path / "labelled.jsonl", fit_rows)
    recall_before, _ = route_all(cli, unseen)  # no config yet: the shipped policy
    assert recall_before < 0.85

    result = cli("router", "fit", labelled, "--min-recall", "0.85")
    assert result.code == 0, result.err

    # Before/after on the held-out part of the file: recall moves towards the target.
    before, after = held_out_figure(result.out, "escalation recall")
    assert after > before
    assert "frontier share" in result.out and "escalation precision" in result.out
    assert DEFAULT_POLICY_PATH.read_bytes() == SHIPPED_BYTES

    # A new policy file under <home>/routing, and the config (created in <home>) points at it.
    config = home.resolve() / "frontdesk.toml"
    assert f"{config} (created)" in result.out
    fitted = load_settings().routing.policy
    assert fitted is not None and fitted.parent == home.resolve() / "routing" and fitted.is_file()
    assert fitted.name in result.out
    policy = load_policy(fitted)
    assert policy.examples_file is not None and policy.examples_file.is_file()
    assert len(policy.topics["pricing"].examples) > len(load_policy(DEFAULT_POLICY_PATH).topics["pricing"].examples) + 50
    assert "examples_file" in fitted.read_text(encoding="utf-8")  # a readable TOML that refers to the examples
    assert len(fitted.read_text(encoding="utf-8")) < 2 * len(SHIPPED_BYTES)

    # `frontdesk route` now uses it: on rows the fit never saw, recall moved towards the target too.
    recall_after, decisions = route_all(cli, unseen)
    assert recall_after > recall_before
    fit_texts = {r["text"] for r in fit_rows}
    assert sum(d["matched_example"] in fit_texts for d in decisions) > len(decisions) / 2  # its reasons cite the file's questions

    # Its examples' vectors were stored by the fit: starting the router embeds none of them.
    counting = CountingEmbedder(embedder)
    Router.from_settings(load_settings(), counting).warm()
    assert counting.texts == 0

    # The rows come from three sources: each is also scored by a fit on the other two.
    assert "Held out by source" in result.out
    for source in ("banking77", "clinc150", "rasa-sara"):
        assert re.search(rf"^{source}\s+\d+\s+\d\.\d+ -> \d\.\d+", result.out, re.MULTILINE), result.out

    # A refit writes another new file, starts from the fitted policy's own part and says the old figures flatter it.
    again = cli("router", "fit", labelled)
    assert again.code == 0, again.err
    refitted = load_settings().routing.policy
    assert refitted != fitted and fitted.is_file() and refitted.parent == fitted.parent
    assert "examples in" in again.err and "flattering" in again.err
    text = refitted.read_text(encoding="utf-8")
    assert text.count("Fitted by `frontdesk router fit`") == 1 and text.count("examples_file =") == 1
    assert config.read_text(encoding="utf-8").count("[routing]") == 1
    assert len(load_policy(refitted).topics["pricing"].examples) == len(policy.topics["pricing"].examples)


def test_unreachable_target_is_reported_and_nothing_written(cli, home, samples, tmp_path):
    labelled = write_jsonl(tmp_path / "labelled.jsonl", samples[0])
    # A third of the rows should escalate: all of them can't go while 1% of all questions do.
    result = cli("router", "fit", labelled, "--min-recall", "1", "--max-frontier-share", "0.01")
    assert result.code == 2
    assert "can't be met" in result.err and "closest" in result.err and "Nothing was written" in result.err
    assert re.search(r"escalation recall 0\.\d+, frontier share \d+\.\d%", result.err)
    assert "Traceback" not in result.err
    assert not (home / "frontdesk.toml").exists() and not (home / "routing").exists()
    assert DEFAULT_POLICY_PATH.read_bytes() == SHIPPED_BYTES


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("bad.jsonl", '{"question": "how much is it?", "route": "pricing"}\n{"question": "hi", "route": "local"}\n{"question": oops}\n',
         "bad.jsonl, line 3: not valid JSON"),
        ("bad.csv", 'question,route\nhow much is it?,pricing\n"a, b",local,extra\n', "bad.csv, line 3: 3 cells for 2 columns"),
        ("unknown.jsonl", '{"question": "can I get my money back?", "route": "refunds"}\n' * 2 + '{"question": "hi", "route": "simple"}\n',
         "'refunds' (line 1, 2)"),
        ("few.jsonl", '{"question": "how much is it?", "route": "pricing"}\n{"question": "hi", "route": "simple"}\n',
         "too few labelled questions to fit on: 1 for the frontier and 1 local"),
    ],
    ids=["bad-json", "bad-csv", "unknown-label", "too-few"],
)
def test_bad_files_exit_2_with_the_line_and_a_fix(cli, home, tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = cli("router", "fit", path)
    assert result.code == 2
    assert expected in result.err, result.err
    assert "Traceback" not in result.err
    fix = result.err.splitlines()[-1]
    assert fix.startswith("  ") and fix.strip()  # the error's second line says what to do
    assert not (home / "frontdesk.toml").exists()


def test_out_of_range_target_is_refused(capsys):
    from app.cli.main import build_parser

    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["router", "fit", "x.jsonl", "--min-recall", "95"])
    assert stopped.value.code == 2
    assert "between 0 and 1" in capsys.readouterr().err


# ---------------------------------------------------------------------------- the examples' vectors


def fitted_policy(folder: Path, rows: list[tuple[str, str]]) -> Path:
    """A policy like the ones `router fit` writes: the shipped TOML plus an examples file."""
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "mine.examples.jsonl", [{"question": q, "topic": t} for q, t in rows])
    path = folder / "mine.toml"
    path.write_text('examples_file = "mine.examples.jsonl"\n' + SHIPPED_BYTES.decode("utf-8"), encoding="utf-8")
    return path


def test_vectors_are_stored_reused_and_detected_stale(embedder, samples, tmp_path):
    topics = {"pricing": "pricing", "api": "api", "simple": "support", "out_of_scope": "out_of_scope"}
    rows = [(r["text"], topics[r["route"]]) for r in samples[0][:120] if r["route"] in topics]
    path = fitted_policy(tmp_path / "routing", rows)
    every = sum(len(t.examples) for t in load_policy(path).topics.values())

    first = CountingEmbedder(embedder)
    reference = Router(load_policy(path), first).warm()
    assert first.texts == every  # every example once
    decisions = reference.decide_many([q for q, _ in rows[:20]])
    stored = vectors_file(load_policy(path))
    assert stored.is_file()

    # A new process: nothing to embed, the same decisions.
    again = CountingEmbedder(embedder)
    router = Router(load_policy(path), again).warm()
    assert again.texts == 0
    assert [d.to_json() for d in router.decide_many([q for q, _ in rows[:20]], vectors=embedder.embed([q for q, _ in rows[:20]]))] \
        == [d.to_json() for d in decisions]

    # Texts changed: one edited, one added: only those two are embedded.
    edited = [(rows[0][0] + " please", rows[0][1])] + rows[1:] + [("how much is the annual plan for 12 people?", "pricing")]
    write_jsonl(path.parent / "mine.examples.jsonl", [{"question": q, "topic": t} for q, t in edited])
    changed = CountingEmbedder(embedder)
    Router(load_policy(path), changed).warm()
    assert changed.texts == 2

    # Another embedder (a different token limit cuts long texts differently): all re-embedded.
    every = sum(len(t.examples) for t in load_policy(path).topics.values())
    other = CountingEmbedder(Embedder(max_seq_length=32))
    Router(load_policy(path), other).warm()
    assert other.texts == every
    # ...and the file now holds that embedder's vectors, so the first one re-embeds everything again.
    back = CountingEmbedder(embedder)
    Router(load_policy(path), back).warm()
    assert back.texts == every


def test_scoring_in_small_chunks_matches(embedder, samples, tmp_path, monkeypatch):
    rows = [(r["text"], "support") for r in samples[0][:200]]
    router = Router(load_policy(fitted_policy(tmp_path / "routing", rows)), embedder)
    questions = [r["text"] for r in samples[1][:50]]
    vectors = embedder.embed(questions)
    whole = router.evidence(questions, vectors)
    monkeypatch.setattr(router_module, "_BUDGET", 1000)  # fewer than 4 questions a chunk against ~330 examples
    chunked = router.evidence(questions, vectors)
    assert np.allclose(whole.similarity, chunked.similarity)
    assert (whole.nearest == chunked.nearest).all()
    # The nearest example is the most similar one, as the reason says.
    support = router.policy.topic_names.index("support")
    examples = router._index.vectors[router._index.topic_rows(support)]
    assert (chunked.nearest[:, support] == (vectors @ examples.T).argmax(axis=1)).all()


def test_examples_file_rows_are_checked(tmp_path):
    path = fitted_policy(tmp_path, [("how much is it?", "pricing"), ("can I get my money back?", "refunds")])
    with pytest.raises(ConfigError) as caught:
        load_policy(path)
    assert "mine.examples.jsonl, line 2: topic 'refunds' is not one of the topics" in caught.value.title
    assert f"{path}, line 1" in caught.value.title  # where the policy names the file


# ---------------------------------------------------------------------------- editing the config


def test_config_is_edited_in_place(tmp_path):
    config = tmp_path / "frontdesk.toml"
    config.write_text(
        "# my desk\ntop_k = 7  # more context\n\n[routing]\n# fitted last week\npolicy = \"old.toml\"  # the old one\n\n"
        "[frontier]\nmodel = \"claude-haiku-4-5\"\n", encoding="utf-8")
    settings = load_settings(environ={"FRONTDESK_HOME": str(tmp_path / "home"), "FRONTDESK_CONFIG": str(config)})
    new = tmp_path / "routing" / "policy-1.toml"
    edited, created, warnings = point_config_at(settings, new)
    assert (edited, created) == (config, False)
    text = config.read_text(encoding="utf-8")
    assert text.startswith("# my desk\ntop_k = 7  # more context\n\n[routing]\n# fitted last week\npolicy = \"routing/policy-1.toml\"\n")
    assert text.endswith("[frontier]\nmodel = \"claude-haiku-4-5\"\n")
    assert load_settings(environ={"FRONTDESK_CONFIG": str(config)}).routing.policy == new
    assert warnings == []


def test_config_without_routing_table_gets_one_and_overrides_are_named(tmp_path):
    config = tmp_path / "frontdesk.toml"
    config.write_text("top_k = 7\n", encoding="utf-8")
    environ = {"FRONTDESK_HOME": str(tmp_path), "FRONTDESK_CONFIG": str(config), "FRONTDESK_ROUTING_POLICY": "/elsewhere.toml"}
    settings = load_settings(environ=environ)
    _, _, warnings = point_config_at(settings, tmp_path / "routing" / "p.toml")
    assert tomllib.loads(config.read_text(encoding="utf-8")) == {"top_k": 7, "routing": {"policy": "routing/p.toml"}}
    assert len(warnings) == 1 and "FRONTDESK_ROUTING_POLICY" in warnings[0]

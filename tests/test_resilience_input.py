"""What a new user's odd input does: undecodable bytes, control characters, two docs folders
holding the same file, and a turn that cost more than all-frontier would have.

Real CLI (as a subprocess where the bytes matter), real Chroma, real embedder, real ledger.
"""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess

import pytest

from app.core.ledger.turns import Ledger, Turn
from conftest import ROOT
from fake_anthropic import FakeAnthropic

FRONTDESK = ROOT / ".venv" / "bin" / "frontdesk"
BAD = b"r\xe9initialiser"  # "réinitialiser" typed in a latin-1 terminal: not UTF-8
CLEANED = "r\ufffdinitialiser"


@pytest.fixture
def home_with_docs(knowledge_home, tmp_path, monkeypatch):
    home = tmp_path / "resilience-home"
    shutil.copytree(knowledge_home, home)
    monkeypatch.setenv("FRONTDESK_HOME", str(home))
    monkeypatch.setenv("FRONTDESK_LOCAL_MAX_TOKENS", "24")
    with FakeAnthropic(reply="To reset your password, use the link on the sign-in page [1].") as server:
        monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-resilience-test-000000000000")
        monkeypatch.setenv("FRONTDESK_FRONTIER_BASE_URL", server.url)
        monkeypatch.setenv("FRONTDESK_FRONTIER_MAX_RETRIES", "0")
        yield home


def frontdesk(*args: str | bytes, stdin: bytes | None = None) -> tuple[int, str, str]:
    """The installed `frontdesk` in its own process, argv and stdin as raw bytes.

    stdin is strict UTF-8 here, as on a desktop's UTF-8 locale (a C locale would be lenient).
    Output must be valid UTF-8: decoding it strictly is part of every check.
    """
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    done = subprocess.run([str(FRONTDESK), *args], input=stdin, capture_output=True, env=env, timeout=600)
    err = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    return done.returncode, done.stdout.decode("utf-8"), err


def ledger_questions(home) -> list[str]:
    return [turn.question for turn in reversed(Ledger(home / "ledger.sqlite3").turns())]


# --- 1. undecodable bytes and control characters in questions -----------------------------------

def test_ask_with_a_non_utf8_byte_in_argv_is_answered_and_logged(home_with_docs):
    code, out, err = frontdesk("ask", BAD + b" my password")
    assert code == 0, err
    assert out.strip() and "cost $" in out.strip().splitlines()[-1]
    assert ledger_questions(home_with_docs) == [f"{CLEANED} my password"]


def test_ask_stdin_answers_every_line_around_a_bad_one(home_with_docs):
    lines = b"tell me a joke\n" + BAD + b"\x00 \x1b[31mmy password\r\nwhat's the weather in Rome?\n"
    code, out, err = frontdesk("ask", "--stdin", stdin=lines)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    expected = ["tell me a joke", f"{CLEANED} [31mmy password", "what's the weather in Rome?"]
    assert [row["question"] for row in rows] == expected  # NUL, ESC and CR are gone, the rest kept
    assert ledger_questions(home_with_docs) == expected


@pytest.mark.parametrize("command", ["route", "search"])
def test_route_and_search_take_a_bad_byte_in_argv(home_with_docs, command):
    code, out, err = frontdesk(command, BAD)
    assert code == 0, err
    assert out.strip()


@pytest.mark.parametrize("command", ["route", "search"])
def test_route_and_search_stdin_answer_every_line(home_with_docs, command):
    code, out, err = frontdesk(command, "--stdin", stdin=b"how do I reset my password?\n" + BAD + b"\ncancel my plan\n")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["question"] for row in rows] == ["how do I reset my password?", CLEANED, "cancel my plan"]


def test_clean_input_repairs_surrogates_and_drops_controls():
    from app.core.text import clean_input

    assert clean_input("r\udce9init\udcff") == "r\ufffdinit\ufffd"
    assert clean_input("a\x00b\x1b[2Jc\x7fd\x9be\rf") == "ab[2Jcdef"
    assert clean_input("line one\n\tline two é 日本") == "line one\n\tline two é 日本"


# --- 2. control characters stored in questions never reach the terminal --------------------------

HOSTILE = "make it \x1b[31mred\x1b[0m and \x1b]0;pwned\x07 please"


def test_logs_table_shows_control_characters_escaped_and_exports_keep_them(cli, home):
    ledger = Ledger(home / "ledger.sqlite3")
    ledger.record(Turn(question=HOSTILE, conversation_id="c1", outcome="refused", route="none"))
    ledger.record(Turn(question=HOSTILE, conversation_id="c2", outcome="answered", route="frontier", model="claude-x",
                       egress_passage_ids=["p1"], sources=[{"id": "p1", "file": "a\x1b[2J.md", "heading": "H\x1b[1A"}]))
    for args in (("logs",), ("logs", "--egress")):
        out = cli(*args).out
        assert not any(ord(c) < 32 and c != "\n" for c in out), args
        assert "␛[31mred␛[0m" in out, args
    exported = json.loads(cli("logs", "--json").out)
    assert {t["question"] for t in exported["turns"]} == {HOSTILE}
    (row, _) = csv.DictReader(io.StringIO(cli("logs", "--csv").out))
    assert row["question"] == HOSTILE
    # argv's undecodable bytes in a filter (as Python passes them: surrogates) are cleaned too
    assert cli("logs", "--search", "r\udce9initialiser", "--model", "\udcff").code == 0


def test_tui_text_never_carries_control_characters():
    from app.tui.format import clip, markdown_content, printable, source_label

    assert printable(HOSTILE) == "make it ␛[31mred␛[0m and ␛]0;pwned␇ please"
    assert clip(HOSTILE, 20) == "make it ␛[31mred␛[0…"
    assert printable("tabs\tand\nlines stay") == "tabs\tand\nlines stay"
    assert "\x1b" not in markdown_content("A quote with \x1b[31m in it\n- and \x1b[0m here").plain
    assert "\x1b" not in source_label(1, {"file": "a\x1b[2J.md", "heading": "x"})


# --- 3. two docs folders with the same file --------------------------------------------------------

SHARED_TEXT = "# Refunds\n\nAnnual plans are refundable within 14 days of purchase, in full.\n"


def test_two_folders_with_the_same_file_coexist(cli, tmp_path):
    from app.core.desk import Desk
    from app.core.settings import load_settings

    folders = []
    for name, own in (("a", "Team costs $12 per seat per month."), ("b", "Webhooks are signed with HMAC-SHA256.")):
        folder = tmp_path / name
        (folder / "billing").mkdir(parents=True)
        (folder / "billing" / "refunds.md").write_text(SHARED_TEXT)
        (folder / f"{name}-only.md").write_text(f"# Notes\n\n{own}\n")
        folders.append(folder)
    a, b = folders

    first = json.loads(cli("ingest", a, "--json").out)
    second = json.loads(cli("ingest", b, "--json").out)
    again = json.loads(cli("ingest", a, "--json").out)
    assert (first["added"], second["added"], second["chunks_embedded"]) == (2, 2, 1)  # b reuses the shared vector
    assert (again["added"], again["changed"], again["unchanged"], again["chunks_embedded"]) == (0, 0, 2, 0)
    assert again["chunks"] == first["chunks"]

    (hits,) = cli("search", "--stdin", "-k", "4", stdin="are annual plans refundable?\n").json_lines()
    shared = [hit for hit in hits["results"] if hit["file"] == "billing/refunds.md"]
    assert len(shared) == 2 and shared[0]["id"] != shared[1]["id"]
    passages = Desk(load_settings()).store.get([hit["id"] for hit in shared])
    assert {p.root for p in passages} == {str(a.resolve()), str(b.resolve())}


def test_upgrading_the_id_scheme_leaves_one_record_per_chunk(services, tmp_path, monkeypatch):
    """A store written with the old ids (no docs root in them) is cleanly rewritten on the next ingest."""
    import hashlib

    import app.core.docs.ingest as ingest
    from app.core.docs.chunking import Chunk, chunk_document

    def old_id(file, chunk, occurrence):  # the id scheme of frontdesk-parser-3
        return hashlib.sha256(f"{file}\x00{chunk.heading}\x00{chunk.text}\x00{occurrence}".encode()).hexdigest()[:32]

    def old_chunks(file, text, count, max_tokens, **_):
        seen: dict = {}
        chunks = []
        for chunk in chunk_document(file, text, count, max_tokens):
            occurrence = seen[(chunk.heading, chunk.text)] = seen.get((chunk.heading, chunk.text), -1) + 1
            chunks.append(Chunk(old_id(file, chunk, occurrence), chunk.text, chunk.heading, chunk.start, chunk.end))
        return chunks

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text(SHARED_TEXT + "\n## Again\n\nSame.\n\n## Again\n\nSame.\n")
    (docs / "reset.txt").write_text("To reset your password, open Settings, then Security.\n")
    with monkeypatch.context() as old:
        old.setattr(ingest, "PARSER_VERSION", b"frontdesk-parser-3\n")
        old.setattr(ingest, "chunk_document", old_chunks)
        before = list(services.ingest(docs))[-1].summary
    old_ids = {i for state in services.store.files(str(docs.resolve())).values() for i in state.ids}
    assert len(old_ids) == before.chunks_total > 2

    after = list(services.ingest(docs))[-1].summary
    assert (after.changed, after.unchanged, after.chunks_embedded) == (2, 0, 0)  # re-read once, vectors reused
    stored = services.store.files(str(docs.resolve()))
    ids = {i for state in stored.values() for i in state.ids}
    assert len(ids) == after.chunks_total == before.chunks_total and not ids & old_ids
    assert services.store.count() == len(ids)  # nothing of the old scheme is left
    assert all(len(state.shas) == 1 for state in stored.values())


# --- 4. a turn that cost more than all-frontier never shows a negative saving ----------------------

def _dearer_turn(**fields) -> Turn:
    return Turn(question="q", conversation_id="c", route="frontier", model="claude-x", outcome="answered",
                answered_by="frontier", grounding={"passed": True}, reason="escalated",
                cost_usd=0.00012, counterfactual_cost_usd=0.000102, total_ms=1200, **fields)


def test_ask_describe_line_never_shows_a_negative_saving():
    from app.cli.answers import describe

    dearer = describe(_dearer_turn())
    assert "saved $-" not in dearer and "$0.000018 more than all-frontier $0.000102" in dearer
    cheaper = describe(Turn(question="q", conversation_id="c", cost_usd=0.0, counterfactual_cost_usd=0.0003))
    assert "all-frontier $0.000300, saved $0.000300" in cheaper


def test_logs_summary_never_shows_a_negative_saving(cli, home):
    Ledger(home / "ledger.sqlite3").record(_dearer_turn())
    out = cli("logs").out
    assert "-0.0" not in out and "saved $-" not in out
    assert out.strip().splitlines()[-1].endswith("· $0.0000 (17.6%) more than all-frontier $0.0001")
    (frontier_row,) = [line for line in out.splitlines() if line.startswith("frontier ")]
    assert frontier_row.endswith("0.0000 more")


def test_tui_never_shows_a_negative_saving():
    from app.core.ledger.turns import Summary, Tier
    from app.tui.format import summary_line, turn_meta

    meta = turn_meta(_dearer_turn()).plain
    assert "saved $-" not in meta and "cost $0.00012 · $0.000018 more than all-frontier $0.00010" in meta
    summary = Summary(turns=1, local=0, frontier=1, spend_usd=0.00012, counterfactual_usd=0.000102,
                      tiers={"frontier": Tier(1, 0.00012, 0.000102)})
    line = summary_line(summary).plain
    assert "saved" not in line and "$0.000018 (18%) more than all-frontier" in line

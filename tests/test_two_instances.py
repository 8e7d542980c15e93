"""Two instances, one data dir: real `frontdesk` processes asking and ingesting at once, and
`kill -9` in the middle of an ingest or a turn, against real Chroma and real SQLite.

Afterwards the ledger must pass `PRAGMA integrity_check` and hold exactly the turns that were
answered, and the store must equal what one clean, uncontended ingest makes (same ids, same
count, no duplicates). Every wait is bounded; nothing asserts how long anything took.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from app.core.docs.ingest import IngestSummary
from conftest import KNOWLEDGE, ROOT

FRONTDESK = ROOT / ".venv" / "bin" / "frontdesk"
PYTHON = ROOT / ".venv" / "bin" / "python"
QUESTION = "how do I reset my password?"
# Routed to the local model: no network, and no API key in the tests' environment anyway.
LOCAL_QUESTIONS = [
    "how do I reset my password?",
    "how do I change my email address?",
    "how do I turn on two-factor authentication?",
    "I never received the verification email",
    "my account is locked, how do I unlock it?",
]
WAIT = 900  # seconds: the bound on any one process; generous for 2 shared cores

# What the store holds, read by the store's own code in a process of its own.
SNAPSHOT = """
import json
from app.core.docs.store import Store
from app.core.settings import load_settings
store = Store(load_settings())
roots = {root: {file: [sorted(s.shas), sorted(s.ids)] for file, s in store.files(root).items()} for root in store.roots()}
print(json.dumps({"count": store.count(), "roots": roots}))
"""

# A real ingest that stops after its first event (the lock is held from then on) until the
# test writes a line: "close" drops the ingest unfinished (as a front end that stops listening
# does) and the process lives on until stdin closes; anything else (or EOF) finishes it.
HOLD_THE_LOCK = """
import sys
from pathlib import Path
from app.core.desk import Desk
from app.core.settings import load_settings
events = Desk(load_settings()).ingest(Path(sys.argv[1]))
print(type(next(events)).__name__, flush=True)
if sys.stdin.readline().strip() == "close":
    events.close()
    print("closed", flush=True)
    sys.stdin.read()
else:
    for event in events:
        pass
    print(event.summary.describe(), flush=True)
"""

# An ingest that dies by SIGKILL right after a batch's upsert, before its stale records are
# deleted: the worst point for the store, hit every time instead of by luck.
KILLED_AFTER_UPSERT = """
import os, signal, sys
from pathlib import Path
from app.core.desk import Desk
from app.core.docs.store import Store
from app.core.settings import load_settings
def die(self, ids):
    os.kill(os.getpid(), signal.SIGKILL)
Store.delete = die
for event in Desk(load_settings()).ingest(Path(sys.argv[1])):
    pass
"""


# --- helpers ----------------------------------------------------------------------------------

def environment(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "FRONTDESK_HOME": str(home), "FRONTDESK_LOCAL_MAX_TOKENS": "16", **extra}


class Proc:
    """A process whose stdout and stderr are read line by line in the background."""

    def __init__(self, command: list[str], home: Path, stdin: str | None = None, **env: str):
        self.popen = subprocess.Popen(
            [str(part) for part in command], cwd=ROOT, env=environment(home, **env), text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.pid = self.popen.pid
        self.lines: dict[str, queue.Queue] = {"out": queue.Queue(), "err": queue.Queue()}
        self.text: dict[str, list[str]] = {"out": [], "err": []}
        self.readers = [threading.Thread(target=self._read, args=(name, stream), daemon=True)
                        for name, stream in (("out", self.popen.stdout), ("err", self.popen.stderr))]
        for reader in self.readers:
            reader.start()
        if stdin is not None:
            self.popen.stdin.write(stdin)
            self.popen.stdin.close()

    def _read(self, name: str, stream) -> None:
        for line in stream:
            self.text[name].append(line)
            self.lines[name].put(line)
        self.lines[name].put(None)

    def expect(self, stream: str, predicate, timeout: float = WAIT) -> str:
        """The first line on `stream` for which predicate holds; fails if the process ends first."""
        waiting = self.lines[stream]
        try:
            while (line := waiting.get(timeout=timeout)) is not None:
                if predicate(line):
                    return line
        except queue.Empty:
            pass
        self.popen.kill()
        self.finish()
        pytest.fail(f"no such line on std{stream} of {self.popen.args}:\n{self.err}")

    def finish(self, timeout: float = WAIT) -> int:
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=60)
            pytest.fail(f"still running after {timeout} s: {self.popen.args}")
        for reader in self.readers:
            reader.join(timeout=60)
        return code

    @property
    def out(self) -> str:
        return "".join(self.text["out"])

    @property
    def err(self) -> str:
        return "".join(self.text["err"])


def frontdesk(home: Path, *args: str, stdin: str | None = None, **env: str) -> Proc:
    return Proc([FRONTDESK, *args], home, stdin=stdin, **env)


def run(home: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess:
    """`frontdesk ARGS` to the end; stdin is closed (or given) so nothing waits on it."""
    return subprocess.run([str(FRONTDESK), *args], cwd=ROOT, env=environment(home, **env), input=stdin or "",
                          capture_output=True, text=True, timeout=WAIT)


def snapshot(home: Path) -> dict:
    result = subprocess.run([str(PYTHON), "-c", SNAPSHOT], cwd=ROOT, env=environment(home), capture_output=True,
                            text=True, timeout=WAIT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_same_store(home: Path, clean: dict) -> None:
    """The store equals `clean` (a snapshot of one uncontended ingest): same ids, versions, count."""
    got = snapshot(home)
    assert got["roots"] == clean["roots"]
    ids = [i for files in got["roots"].values() for _, record_ids in files.values() for i in record_ids]
    assert got["count"] == clean["count"] == len(ids) == len(set(ids))  # no duplicates, no strays


def ledger_rows(home: Path) -> list[tuple[str, str]]:
    """(question, outcome) of every turn, after checking the file's integrity."""
    db = sqlite3.connect(home / "ledger.sqlite3", timeout=30)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return db.execute("SELECT question, outcome FROM turns ORDER BY id").fetchall()
    finally:
        db.close()


def wait_until(condition, timeout: float = WAIT, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {timeout} s: {condition}")
        time.sleep(every)


def lock_holder(home: Path) -> str:
    path = home / "ingest.lock"
    return path.read_text().strip() if path.exists() else ""


@pytest.fixture(scope="module")
def clean_knowledge(knowledge_home) -> dict:
    """The store after one clean ingest of the sample docs (the session's knowledge_home)."""
    return snapshot(knowledge_home)


@pytest.fixture
def docs_home(knowledge_home, tmp_path) -> Path:
    """A private data dir with the sample docs ingested."""
    home = tmp_path / "home"
    shutil.copytree(knowledge_home, home)
    return home


@pytest.fixture
def held_lock(docs_home):
    """A real ingest of the sample docs (all unchanged) holding docs_home's ingest lock."""
    holder = Proc([PYTHON, "-c", HOLD_THE_LOCK, KNOWLEDGE], docs_home)
    assert holder.expect("out", lambda line: line.strip()) == "IngestStarted\n", holder.err
    assert lock_holder(docs_home) == str(holder.pid)
    yield holder
    if holder.popen.poll() is None:
        holder.popen.stdin.close()
    assert holder.finish() == 0, holder.err


def edit_every_file(folder: Path) -> None:
    """One line added to every Markdown and text file: a new version of each to write."""
    for path in sorted(folder.rglob("*")):
        if path.suffix in (".md", ".txt"):
            path.write_text(path.read_text() + f"\n\nThis copy of {path.name} has a line of its own.\n")


def edited_copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    edit_every_file(target)
    return target


# --- the ingest lock ----------------------------------------------------------------------------

def test_two_ingests_of_one_folder_at_once_take_turns_and_store_it_once(tmp_path, clean_knowledge):
    home = tmp_path / "new-home"  # new to both: the store's creation is serialised too
    first, second = (frontdesk(home, "ingest", "--json", KNOWLEDGE, FRONTDESK_INGEST_LOCK_WAIT=str(WAIT))
                     for _ in range(2))
    summaries = []
    for process in (first, second):
        assert process.finish() == 0, process.err
        assert "Traceback" not in process.err
        summaries.append(json.loads(process.out))
    files = len([p for p in KNOWLEDGE.rglob("*") if p.is_file()])
    # One wrote every file; the other waited for it and then found every file unchanged.
    assert sorted((s["added"], s["unchanged"], s["chunks_embedded"] > 0) for s in summaries) == [
        (0, files, False), (files, 0, True)]
    assert {s["chunks"] for s in summaries} == {clean_knowledge["count"]}
    assert all(s["repaired"] == 0 for s in summaries)
    assert_same_store(home, clean_knowledge)


def test_a_second_ingest_past_the_wait_limit_is_refused_with_the_holders_pid(docs_home, held_lock, clean_knowledge):
    refused = run(docs_home, "ingest", str(KNOWLEDGE), FRONTDESK_INGEST_LOCK_WAIT="1")
    assert refused.returncode == 2, refused.stderr
    assert (f"error: Another frontdesk is loading docs into {docs_home} (pid {held_lock.pid})\n"
            "  Wait for it to finish, then run the ingest again.\n") in refused.stderr
    assert f"waiting for another frontdesk (pid {held_lock.pid}) to finish loading docs" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stdout == ""
    assert held_lock.popen.poll() is None  # the holder was not disturbed

    held_lock.popen.stdin.close()
    assert held_lock.finish() == 0, held_lock.err
    assert "0 failed" in held_lock.out
    assert lock_holder(docs_home) == ""  # a finished ingest leaves no pid behind
    again = run(docs_home, "ingest", str(KNOWLEDGE), FRONTDESK_INGEST_LOCK_WAIT="0")  # free now: no wait needed
    assert again.returncode == 0, again.stderr
    assert_same_store(docs_home, clean_knowledge)


def test_search_and_ask_keep_working_while_an_ingest_holds_the_lock(docs_home, held_lock):
    search = run(docs_home, "search", QUESTION)
    assert search.returncode == 0, search.stderr
    assert "sign-up-and-login.md" in search.stdout

    ask = run(docs_home, "ask", "--json", QUESTION)
    assert ask.returncode == 0, ask.stderr
    turn = json.loads(ask.stdout)
    assert turn["question"] == QUESTION and turn["answer"].strip() and turn["outcome"] not in ("failed", "stopped")
    assert ledger_rows(docs_home) == [(QUESTION, turn["outcome"])]

    assert held_lock.popen.poll() is None and lock_holder(docs_home) == str(held_lock.pid)  # held throughout

    # An ingest dropped unfinished releases the lock at once, though its process lives on.
    held_lock.popen.stdin.write("close\n")
    held_lock.popen.stdin.flush()
    held_lock.expect("out", lambda line: line == "closed\n")
    after = run(docs_home, "ingest", str(KNOWLEDGE), FRONTDESK_INGEST_LOCK_WAIT="0")
    assert after.returncode == 0, after.stderr
    assert held_lock.popen.poll() is None


def test_two_askers_and_an_ingest_at_once_leave_a_whole_ledger_and_a_clean_store(docs_home, knowledge_home, tmp_path):
    more = edited_copy(KNOWLEDGE, tmp_path / "more")  # a second docs folder: really written
    ingest = frontdesk(docs_home, "ingest", "--json", more)
    # The askers start once the ingest holds the lock (it may finish before they do: no timing is assumed).
    wait_until(lambda: lock_holder(docs_home) == str(ingest.pid) or ingest.popen.poll() is not None)
    asked = "".join(f"{q}\n" for q in LOCAL_QUESTIONS)
    askers = [frontdesk(docs_home, "ask", "--stdin", stdin=asked) for _ in range(2)]

    answered = []
    for asker in askers:
        assert asker.finish() == 0, asker.err + asker.out  # a failed question is a JSON line on stdout
        assert "Traceback" not in asker.err and "warning" not in asker.err, asker.err
        turns = [json.loads(line) for line in asker.out.splitlines()]
        assert [t["question"] for t in turns] == LOCAL_QUESTIONS
        assert all(t["answer"].strip() and t["outcome"] not in ("failed", "stopped") for t in turns), turns
        answered += [(t["question"], t["outcome"]) for t in turns]
    assert ingest.finish() == 0, ingest.err
    summary = json.loads(ingest.out)
    assert summary["added"] == len([p for p in more.rglob("*") if p.is_file()]) and not summary["failed"]

    rows = ledger_rows(docs_home)  # integrity ok
    assert len(rows) == 10 and sorted(rows) == sorted(answered)

    # The same ingest alone, from the same start, makes the same store.
    alone = tmp_path / "alone"
    shutil.copytree(knowledge_home, alone)
    assert run(alone, "ingest", str(more)).returncode == 0
    assert_same_store(docs_home, snapshot(alone))


# --- kill -9 --------------------------------------------------------------------------------------

def test_kill_9_mid_ingest_is_repaired_and_reported_by_the_next_ingest(tmp_path):
    docs = tmp_path / "docs"
    for part in ("account", "security", "faq.md"):
        source = KNOWLEDGE / part
        shutil.copytree(source, docs / part) if source.is_dir() else shutil.copy(source, docs / part)
    home = tmp_path / "home"
    first = run(home, "ingest", str(docs))
    assert first.returncode == 0, first.stderr

    edit_every_file(docs)
    killed = Proc([PYTHON, "-c", KILLED_AFTER_UPSERT, docs], home)
    assert killed.finish() == -signal.SIGKILL, killed.err
    assert lock_holder(home) == str(killed.pid)  # its lock file is left behind, naming a dead process

    left = snapshot(home)
    files = left["roots"][str(docs.resolve())]
    assert all(len(shas) == 2 for shas, _ in files.values())  # old and new versions side by side

    clean_home = tmp_path / "clean-home"
    clean = run(clean_home, "ingest", str(docs))
    assert clean.returncode == 0, clean.stderr
    expected = snapshot(clean_home)
    stale = left["count"] - expected["count"]
    assert stale > 0

    # FRONTDESK_INGEST_LOCK_WAIT=0: the dead process's lock file must not make it wait at all.
    repair = run(home, "ingest", str(docs), FRONTDESK_INGEST_LOCK_WAIT="0")
    assert repair.returncode == 0, repair.stderr
    line = repair.stdout.strip().splitlines()[-1]
    assert line.endswith(f"; repaired {stale} records left by an interrupted ingest"), line
    assert " 0 failed" in line
    assert_same_store(home, expected)

    after = run(home, "ingest", "--json", str(docs))
    assert after.returncode == 0, after.stderr
    summary = json.loads(after.stdout)
    assert summary["repaired"] == 0 and summary["unchanged"] == len(files)
    assert "repaired" not in IngestSummary(docs).describe()  # said only when there was a repair


def test_kill_9_mid_turn_leaves_the_ledger_readable_and_the_next_ask_logs(docs_home):
    earlier = run(docs_home, "ask", "--json", LOCAL_QUESTIONS[1])
    assert earlier.returncode == 0, earlier.stderr
    turn = frontdesk(docs_home, "ask", QUESTION, FRONTDESK_LOCAL_MAX_TOKENS="")  # the default: a longer draft to cut
    turn.expect("err", lambda line: "draft:" in line)  # "[local draft: MODEL]": the turn is under way
    turn.popen.send_signal(signal.SIGKILL)
    assert turn.finish() == -signal.SIGKILL

    before = ledger_rows(docs_home)  # integrity ok
    assert [q for q, _ in before] == [LOCAL_QUESTIONS[1]]  # the killed turn was never logged
    logs = run(docs_home, "logs")
    assert logs.returncode == 0, logs.stderr
    assert LOCAL_QUESTIONS[1] in logs.stdout

    after = run(docs_home, "ask", "--json", QUESTION)
    assert after.returncode == 0, after.stderr
    assert "warning" not in after.stderr
    assert ledger_rows(docs_home) == [*before, (QUESTION, json.loads(after.stdout)["outcome"])]

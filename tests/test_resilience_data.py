"""The data dir when it is not what the desk expects: a file, read-only, new to two processes at
once, or holding a damaged ledger. Each test runs the real `frontdesk` (or Python) in its own
process against real SQLite and Chroma, and checks what the user sees: never a traceback, and a
message that names the actual problem."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

FRONTDESK = ROOT / ".venv" / "bin" / "frontdesk"
QUESTION = "how do I reset my password?"


def run(*args: str, prefix: list[str] = (), timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """`frontdesk ARGS` in its own process, with the test's environment plus `env`."""
    return subprocess.run([*prefix, str(FRONTDESK), *args], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout)


def clean(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "damaged" not in result.stderr + result.stdout, result.stderr  # never for a permissions problem


@pytest.fixture
def docs_home(knowledge_home, tmp_path) -> Path:
    """A private data dir with the sample docs ingested and one turn in the ledger."""
    from app.core.ledger.turns import Ledger, Turn

    home = tmp_path / "data"
    shutil.copytree(knowledge_home, home)
    ledger = Ledger(home / "ledger.sqlite3")
    ledger.record(Turn(question="an earlier question", conversation_id="c1", outcome="answered"))
    ledger.close()
    return home


# --- a file where the data dir should be ---------------------------------------------------------

def test_data_dir_that_is_a_file_is_an_error_for_every_command(tmp_path):
    a_file = tmp_path / "frontdesk-data"
    a_file.write_text("not a folder")
    for command in (["logs"], ["search", QUESTION], ["ask", QUESTION], ["route", QUESTION], ["ingest"],
                    ["config"], ["models", "list"], ["tui"]):
        result = run(*command, timeout=60, FRONTDESK_HOME=str(a_file))
        assert result.returncode == 2, (command, result.stderr)
        assert f"The data dir {a_file} is a file" in result.stderr and "FRONTDESK_HOME" in result.stderr, command
        assert "Traceback" not in result.stderr, (command, result.stderr)


# --- a read-only data dir ------------------------------------------------------------------------

def read_only_prefix(folder: Path) -> list[str]:
    """A command prefix under which `folder` is really read-only, for root too.

    chmod does not stop root, so the command runs in its own mount namespace (unshare, as an
    unprivileged user namespace) where `folder` is bind-mounted read-only: writes fail with
    EROFS exactly as on a read-only disk. Without unshare, a non-root user gets chmod instead.
    """
    prefix = ["unshare", "--map-root-user", "--mount", "sh", "-c",
              'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', str(folder)]
    probe = subprocess.run([*prefix, "sh", "-c", f'! touch "{folder}/.probe" 2>/dev/null'], capture_output=True)
    if probe.returncode == 0:
        return prefix
    if os.geteuid() != 0:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        return []
    pytest.fail(f"cannot make a read-only folder as root here (unshare failed: {probe.stderr.decode().strip()})")


@pytest.fixture
def read_only_home(docs_home, tmp_path):
    prefix = read_only_prefix(docs_home)
    yield docs_home, prefix
    for path in [docs_home, *docs_home.rglob("*")]:  # the chmod fallback: let pytest clean up
        path.chmod(path.stat().st_mode | 0o200)


def test_reading_works_in_a_read_only_data_dir(read_only_home, tmp_path):
    home, prefix = read_only_home
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {"FRONTDESK_HOME": str(home), "TMPDIR": str(scratch)}

    search = run("search", QUESTION, prefix=prefix, **env)
    assert search.returncode == 0 and "sign-up-and-login.md" in search.stdout, search.stderr
    logs = run("logs", prefix=prefix, **env)
    assert logs.returncode == 0 and "an earlier question" in logs.stdout, logs.stderr
    route = run("route", "--docs", QUESTION, prefix=prefix, **env)
    assert route.returncode == 0 and route.stdout.startswith("local"), route.stderr
    for result in (search, logs, route):
        clean(result)
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before
    assert list(scratch.iterdir()) == []  # the store's temporary copy went with the process


def test_ingest_into_a_read_only_data_dir_says_it_is_read_only(read_only_home, tmp_path):
    home, prefix = read_only_home
    docs = tmp_path / "new-docs"
    docs.mkdir()
    (docs / "llamas.md").write_text("# Llamas\n\nLlamas are not supported on the Team plan.\n")
    result = run("ingest", str(docs), prefix=prefix, FRONTDESK_HOME=str(home))
    assert result.returncode == 2
    assert f"The data dir {home} is read-only" in result.stderr and "FRONTDESK_HOME" in result.stderr
    clean(result)


def test_ask_in_a_read_only_data_dir_answers_and_warns_it_was_not_logged(read_only_home):
    """As with a damaged ledger, the answer comes first; the ledger's trouble is a warning.
    The built-in local worker runs too: its log, refused under <home>/logs, goes to /tmp."""
    home, prefix = read_only_home
    result = run("ask", QUESTION, prefix=prefix, FRONTDESK_HOME=str(home))
    assert result.returncode == 1, result.stderr
    assert "Forgot password" in result.stdout
    assert f"warning: The data dir {home} is read-only" in result.stderr
    clean(result)


# --- two processes on a new data dir --------------------------------------------------------------

# Imports first, then a signal from the test, so that both processes open the new data dir at
# the same moment rather than a second apart.
RACER = """
import sys
from app.core.settings import load_settings
what = sys.argv[1]
if what == "store":
    import chromadb
    from app.core.docs.store import Store
else:
    from app.core.ledger.turns import Ledger
settings = load_settings()
print("ready", flush=True)
sys.stdin.readline()
if what == "store":
    print(Store(settings).count())
else:
    print(len(Ledger(settings.ledger_path).turns()))
"""


@pytest.mark.parametrize("what", ["ledger", "store"])
def test_two_processes_opening_a_new_data_dir_both_succeed(what, tmp_path):
    for attempt in range(10):
        env = {**os.environ, "FRONTDESK_HOME": str(tmp_path / f"home-{attempt}")}
        racers = [subprocess.Popen([sys.executable, "-c", RACER, what], env=env, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for racer in racers:
            assert racer.stdout.readline() == "ready\n", racer.communicate()[1]
        for racer in racers:
            racer.stdin.write("go\n")
            racer.stdin.flush()
        for racer in racers:
            out, err = racer.communicate(timeout=120)
            assert racer.returncode == 0 and out == "0\n", f"attempt {attempt}: {err}"


# --- a damaged ledger ------------------------------------------------------------------------------

def test_damaged_ledger_does_not_block_an_answer(docs_home):
    """The README's promise: the answer, then a warning that it was not logged (exit 1)."""
    ledger = docs_home / "ledger.sqlite3"
    ledger.write_bytes(os.urandom(64 * 1024))
    result = run("ask", QUESTION, FRONTDESK_HOME=str(docs_home))
    assert result.returncode == 1, result.stderr
    assert "Sources:" in result.stdout and "sign-up-and-login.md" in result.stdout
    assert f"warning: The ledger at {ledger} cannot be opened" in result.stderr
    assert f"mv {ledger} {ledger}.bad" in result.stderr and "Traceback" not in result.stderr
    logs = run("logs", FRONTDESK_HOME=str(docs_home))
    assert logs.returncode == 2 and "move it aside" in logs.stderr and "Traceback" not in logs.stderr


def test_damaged_ledger_with_a_budget_set_still_answers_a_pricing_question(docs_home):
    """The budget reads its spend from the ledger: unreadable, the frontier isn't used blind."""
    (docs_home / "ledger.sqlite3").write_bytes(os.urandom(64 * 1024))
    result = run("ask", "how much will 3 extra seats cost me?", FRONTDESK_HOME=str(docs_home), ANTHROPIC_API_KEY="sk-test",
                 FRONTDESK_FRONTIER_BASE_URL="http://127.0.0.1:9", FRONTDESK_FRONTIER_MONTHLY_BUDGET_USD="5")
    assert result.returncode == 1, result.stderr
    assert "Sources:" in result.stdout and "The frontier budget cannot be checked" in result.stdout + result.stderr
    assert "warning: The ledger at" in result.stderr and "Traceback" not in result.stderr


def test_damaged_ledger_fails_on_use_not_on_construction(tmp_path):
    from app.core.errors import LedgerError
    from app.core.ledger.turns import Ledger, Turn

    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    ledger = Ledger(path)
    for call in (lambda: ledger.record(Turn(question="q", conversation_id="c")), ledger.turns,
                 lambda: ledger.spend_since("2026-01-01")):
        with pytest.raises(LedgerError, match="cannot be opened: file is not a database") as error:
            call()
        assert "move it aside" in error.value.fix
    path.unlink()  # moved aside: the same Ledger works on its next call
    assert ledger.turns() == []

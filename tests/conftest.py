"""Shared fixtures: every test runs against real components in an isolated data dir."""
from __future__ import annotations

import io
import json
import os
import signal
import sys
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KNOWLEDGE = ROOT / "knowledge"
SHARED = ROOT.parent / "shared"
RAILWAY_DOCS = SHARED / "datasets" / "railway-docs"


@contextmanager
def child_signals(default: tuple[str, ...] = (), ignored: tuple[str, ...] = ()):
    """Processes started inside get these signal dispositions. An ignored signal stays ignored
    across exec: a test run started in the background (as a CI runner may start it) ignores
    SIGINT, and one under nohup SIGHUP, so a child would never see the signal a test sends it.
    `default`: as a terminal's foreground job has them; `ignored`: as under nohup."""
    previous = {}
    for number in (getattr(signal, name) for name in default):
        if signal.getsignal(number) is signal.SIG_IGN:  # a handled signal is reset to default by exec anyway
            previous[number] = signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)
    for number in (getattr(signal, name) for name in ignored):
        previous[number] = signal.signal(number, signal.SIG_IGN)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test reads the developer's settings, data dir, key or a stray frontdesk.toml."""
    for name in list(os.environ):
        if name.startswith("FRONTDESK_") or name == "ANTHROPIC_API_KEY":
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("FRONTDESK_HOME", str(home))
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    # The bundled model, whatever the set-up or a developer put in models/: tests stay fast and
    # their expectations don't move with the machine's models. Tests of model choice unset it.
    from app.core.providers.local import bundled_model_path

    monkeypatch.setenv("FRONTDESK_LOCAL_MODEL", str(bundled_model_path()))
    return home


@pytest.fixture
def home(isolated_env) -> Path:
    return isolated_env


@pytest.fixture
def services(home):
    from app.core.desk import Desk
    from app.core.settings import load_settings

    return Desk(load_settings())


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture
def cli(monkeypatch):
    """Run `frontdesk ARGS` in-process (the embedder is loaded once per test session)."""
    from app.cli import main

    def run(*args: str, stdin: str | None = None) -> CliResult:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main([str(a) for a in args])
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(scope="session")
def knowledge_home(tmp_path_factory) -> Path:
    """A data dir with the sample docs ingested once for the whole session (read-only use)."""
    from app.core.desk import Desk
    from app.core.settings import load_settings

    home = tmp_path_factory.mktemp("knowledge-home")
    settings = load_settings(environ={"FRONTDESK_HOME": str(home)})
    for _ in Desk(settings).ingest(KNOWLEDGE):
        pass
    return home


@pytest.fixture
def knowledge_services(knowledge_home, monkeypatch):
    from app.core.desk import Desk
    from app.core.settings import load_settings

    monkeypatch.setenv("FRONTDESK_HOME", str(knowledge_home))
    return Desk(load_settings())


@pytest.fixture
def server():
    """A Messages API server on 127.0.0.1 that answers by quoting passage [1]."""
    from fake_anthropic import FakeAnthropic, cite_first_passage

    with FakeAnthropic(reply=cite_first_passage) as fake:
        yield fake


@pytest.fixture
def desk(knowledge_home, tmp_path, server, monkeypatch):
    """Desk over a private copy of the ingested sample docs, frontier pointed at the fake API.

    `desk(draft="...")` makes the local model stream that text instead of generating: for tests
    of the pipeline's judgement of a given draft, not of what the tiny model writes.
    """
    import shutil

    from app.core.desk import Desk
    from app.core.settings import load_settings
    from fake_anthropic import DESK_KEY

    home = tmp_path / "desk-home"
    shutil.copytree(knowledge_home, home)
    monkeypatch.setenv("FRONTDESK_HOME", str(home))
    monkeypatch.setenv("ANTHROPIC_API_KEY", DESK_KEY)

    def build(draft: str | None = None, **flags):
        base = {"frontier.base_url": server.url, "frontier.max_retries": 0, "frontier.timeout": 20, "local.max_tokens": 48}
        services = Desk(load_settings(flags={**base, **flags}))
        if draft is not None:
            def scripted(prompt, usage, max_tokens=None):
                usage.input_tokens, usage.output_tokens = 400, len(draft) // 4
                for word in draft.split(" "):
                    yield word + " "
            monkeypatch.setattr(services.local, "generate", scripted)
        return services

    return build



@pytest.fixture
def asking_home(knowledge_home, tmp_path, monkeypatch) -> Path:
    """A private copy of the ingested sample docs, for tests that ask (asking writes the ledger)."""
    import shutil

    home = tmp_path / "asking-home"
    shutil.copytree(knowledge_home, home)
    monkeypatch.setenv("FRONTDESK_HOME", str(home))
    return home


def ledger_from_before(path: Path, applied: int):
    """An open SQLite connection to a ledger as an older release left it: only the first
    `applied` migrations done. The caller inserts its rows, commits and closes."""
    import sqlite3

    from app.core.ledger.migrations import MIGRATIONS, statements

    old = sqlite3.connect(path)
    old.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    for name, sql in MIGRATIONS[:applied]:
        for statement in statements(sql):
            old.execute(statement)
        old.execute("INSERT INTO migrations VALUES (?, '2026-01-01')", (name,))
    return old


def killed_before_cleanup(monkeypatch, store, ingest) -> None:
    """Run `ingest()` as a process that dies after the upsert, before stale chunks are removed."""
    def killed(self, ids):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(type(store), "delete", killed)
        with pytest.raises(KeyboardInterrupt):
            ingest()

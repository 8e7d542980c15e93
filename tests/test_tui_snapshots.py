"""SVG snapshots of every screen at 80x24 (pytest-textual-snapshot).

Deterministic by construction: a fixed folder under the system temp dir holds the docs, the
data dirs and a link to the bundled GGUF (so every path on screen is the same on each run),
the chat answer comes from a ledger-reopened conversation rather than live generation, and
the ledger rows have fixed timestamps. Update with `pytest tests/test_tui_snapshots.py
--snapshot-update` after an intended visual change, and look at the SVGs before committing.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from app.core.settings import load_settings
from app.tui.app import FrontdeskApp
from test_tui import seed_turns

SIZE = (80, 24)
BASE = Path(tempfile.gettempdir()) / "frontdesk-snapshots"


@pytest.fixture(scope="module")
def snapshot_dirs() -> dict[str, Path]:
    from app.core.providers.local import bundled_model_path
    from app.core.desk import Desk

    shutil.rmtree(BASE, ignore_errors=True)
    docs, home, empty, models = BASE / "docs", BASE / "home", BASE / "empty-home", BASE / "models"
    for folder in (docs, home, empty, models):
        folder.mkdir(parents=True)
    (docs / "account.md").write_text("# Account\n\n## Resetting a forgotten password\n\n"
                                     "Click Forgot password? on the sign-in page and follow the link we email you.\n")
    (docs / "pricing.md").write_text("# Pricing\n\n## Team\n\nTeam costs $12 per seat per month.\n")
    (docs / "webhooks.txt").write_text("Webhooks are signed with HMAC-SHA256 in the X-Signature header.\n")
    (models / "SmolLM2-135M-Instruct.Q4_1.gguf").symlink_to(bundled_model_path())
    for _ in Desk(_settings(home)).ingest(docs):
        pass
    seed_turns(home)
    yield {"home": home, "empty": empty}
    shutil.rmtree(BASE, ignore_errors=True)


def _settings(home: Path):
    return load_settings(flags={"home": str(home), "docs": str(BASE / "docs"),
                                "local.model": str(BASE / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf")})


async def _until(pilot, condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out preparing the snapshot"
        await pilot.pause(0.1)


async def _steady(pilot) -> None:
    """No blinking cursor in a snapshot."""
    from textual.widgets import Input

    for screen in pilot.app.screen_stack:
        for box in screen.query(Input):
            box.cursor_blink = False
    await pilot.pause()


def test_chat_offers_the_sample_docs_when_the_store_is_empty(snap_compare, snapshot_dirs):
    from app.tui.dialogs import OfferDocsScreen

    async def run_before(pilot):
        await _until(pilot, lambda: isinstance(pilot.app.screen, OfferDocsScreen))
        await _steady(pilot)

    assert snap_compare(FrontdeskApp(_settings(snapshot_dirs["empty"])), terminal_size=SIZE, run_before=run_before)


def test_chat_with_an_answer(snap_compare, snapshot_dirs):
    async def run_before(pilot):
        await _until(pilot, lambda: pilot.app.models_ready and pilot.app.chunks is not None)
        pilot.app.open_conversation("conv-reset")
        await pilot.pause(0.2)
        await _steady(pilot)

    assert snap_compare(FrontdeskApp(_settings(snapshot_dirs["home"])), terminal_size=SIZE, run_before=run_before)


async def _open_load_docs(pilot) -> None:
    await pilot.press("f3")
    await pilot.pause(0.3)  # the folder tree fills in from a worker
    await _steady(pilot)


def test_load_docs_screen(snap_compare, snapshot_dirs):
    async def run_before(pilot):
        await _open_load_docs(pilot)

    app = FrontdeskApp(_settings(snapshot_dirs["home"]), load_models=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def _open_logs(pilot) -> None:
    """F4, once the five seeded turns are in the table."""
    await pilot.press("f4")
    await _until(pilot, lambda: pilot.app.screen.query_one("#turns").row_count == 5)
    await _steady(pilot)


def test_logs_screen(snap_compare, snapshot_dirs):
    async def run_before(pilot):
        await _open_logs(pilot)

    app = FrontdeskApp(_settings(snapshot_dirs["home"]), load_models=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


async def _open_turn_detail(pilot) -> None:
    """F4, the Team-plan turn, then its detail screen."""
    from app.tui.turn_detail import TurnDetailScreen

    await pilot.press("f4")
    logs = pilot.app.screen
    await _until(pilot, lambda: logs.query_one("#turns").row_count == 5)
    row = [t.question for t in logs.turns].index("How much is the Team plan per seat?")
    logs.query_one("#turns").move_cursor(row=row)
    await pilot.press("d")
    await _until(pilot, lambda: isinstance(pilot.app.screen, TurnDetailScreen))
    await _steady(pilot)


def test_turn_detail_screen(snap_compare, snapshot_dirs):
    async def run_before(pilot):
        await _open_turn_detail(pilot)

    app = FrontdeskApp(_settings(snapshot_dirs["home"]), load_models=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_settings_screen(snap_compare, snapshot_dirs):
    async def run_before(pilot):
        await pilot.press("f5")
        await _until(pilot, lambda: pilot.app.store_info is not None)
        await _steady(pilot)

    app = FrontdeskApp(_settings(snapshot_dirs["home"]), load_models=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_help_screen(snap_compare, snapshot_dirs):
    async def run_before(pilot):
        await pilot.press("f1")
        await _steady(pilot)

    app = FrontdeskApp(_settings(snapshot_dirs["home"]), load_models=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


# --- the light theme: text in the themes' readable $text-* colours, a visible tree border -----------

async def _light(pilot) -> None:
    pilot.app.theme = "textual-light"
    await pilot.pause()


def test_chat_with_an_answer_light(snap_compare, snapshot_dirs):
    async def run_before(pilot):
        await _light(pilot)
        await _until(pilot, lambda: pilot.app.models_ready and pilot.app.chunks is not None)
        pilot.app.open_conversation("conv-reset")
        await pilot.pause(0.2)
        await _steady(pilot)

    assert snap_compare(FrontdeskApp(_settings(snapshot_dirs["home"])), terminal_size=SIZE, run_before=run_before)


def test_logs_screen_light(snap_compare, snapshot_dirs):
    async def run_before(pilot):
        await _light(pilot)
        await _open_logs(pilot)

    app = FrontdeskApp(_settings(snapshot_dirs["home"]), load_models=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_turn_detail_screen_light(snap_compare, snapshot_dirs):
    async def run_before(pilot):
        await _light(pilot)
        await _open_turn_detail(pilot)

    app = FrontdeskApp(_settings(snapshot_dirs["home"]), load_models=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_load_docs_screen_light(snap_compare, snapshot_dirs):
    async def run_before(pilot):
        await _light(pilot)
        await _open_load_docs(pilot)

    app = FrontdeskApp(_settings(snapshot_dirs["home"]), load_models=False)
    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_logs_screen_wide(snap_compare, snapshot_dirs):
    async def run_before(pilot):
        await _open_logs(pilot)

    app = FrontdeskApp(_settings(snapshot_dirs["home"]), load_models=False)
    assert snap_compare(app, terminal_size=(200, 40), run_before=run_before)

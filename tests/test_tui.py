"""The terminal app, driven headless by Textual's pilot against real components.

Real Desk, real Chroma store, real bundled GGUF (with a small `local.max_tokens`); the
ledger rows for the logs tests are written with the core's own Ledger. Tests that ask a
question copy the session's knowledge home first, because asking writes ledger rows.
"""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import threading
from pathlib import Path

from app.core.settings import load_settings
from app.tui.app import FrontdeskApp
from conftest import ROOT
from tui_support import notifications, wait_for

SIZE = (100, 32)


async def open_logs(pilot):
    """F4, once the five seeded turns are in the table; returns the logs screen."""
    await pilot.press("f4")
    logs = pilot.app.screen
    await wait_for(pilot, lambda: logs.query_one("#turns").row_count == 5, 30, "the turns")
    return logs


def seed_turns(home: Path) -> list:
    """Five recorded turns across routes, models, outcomes and days (what the logs tests filter)."""
    from app.core.ledger.turns import Ledger, Turn

    reset_source = {"id": "p-reset", "file": "account/sign-up-and-login.md", "score": 0.67,
                    "heading": "Signing in > Resetting a forgotten password",
                    "text": "Click **Forgot password?** on the sign-in page, then follow the link we email you."}
    pricing_source = {"id": "p-team", "file": "billing/pricing.md", "heading": "Plans > Team", "score": 0.71,
                      "text": "Team costs $12 per seat per month, billed monthly or yearly."}
    common = dict(retrieval_ms=12.0, first_token_ms=300.0)
    turns = [
        Turn("How do I reset my password?", "conv-reset", route="local", topic="support", model="SmolLM2-135M-Instruct.Q4_1",
             reason="topic 'support' (keyword \"password\")", outcome="answered", input_tokens=410, output_tokens=40,
             answer="Click Forgot password? on the sign-in page and follow the emailed link [1].",
             counterfactual_cost_usd=0.00183, total_ms=1800.0, sources=[reset_source],
             grounding={"passed": True, "unsupported": []}, actions=["local answer passed the grounding check"],
             created_at="2025-03-03T09:15:00.000+00:00", **common),
        Turn("And if the email never arrives?", "conv-reset", route="local", topic="support", model="SmolLM2-135M-Instruct.Q4_1",
             reason="topic 'support'", outcome="extractive", input_tokens=380, output_tokens=32,
             answer="This answer is quoted directly from the docs:\n> Check your spam folder. [1]",
             counterfactual_cost_usd=0.00162, total_ms=2400.0, sources=[reset_source],
             grounding={"passed": False, "unsupported": [{"text": "", "kind": "citation", "reason": "cites no passage"}]},
             actions=["local answer failed the grounding check: it cites no passage"],
             notes=[{"kind": "draft-withdrawn", "text": "Local draft withdrawn (failed the check: it cites no passage)."},
                    {"kind": "extractive", "text": "Quoted from your docs; not verified by the frontier model."}],
             created_at="2025-03-03T09:16:30.000+00:00", **common),
        Turn("How much is the Team plan per seat?", "conv-pricing", route="frontier", topic="pricing", model="claude-sonnet-4-5",
             reason="topic 'pricing' (keyword \"plan\")", outcome="answered", input_tokens=900, output_tokens=60,
             answer="Team costs $12 per seat per month [1]. ⟦unverified: Yearly billing saves 25%⟧",
             cost_usd=0.0036, counterfactual_cost_usd=0.0036, total_ms=3100.0, sources=[pricing_source],
             grounding={"passed": False, "unsupported": [{"text": "Yearly billing saves 25%", "kind": "percent", "reason": "not in the passages"}]},
             actions=["routed to the frontier", "frontier answer failed the check; unsupported spans marked"],
             egress_passage_ids=["p-team"], redactions=1, created_at="2025-03-04T14:02:00.000+00:00", **common),
        Turn("What's the weather in Paris?", "conv-weather", route="none", topic="out_of_scope", outcome="refused",
             reason="out of scope", answer="Sorry, I can only help with questions about our product.",
             total_ms=40.0, created_at="2025-03-05T08:00:00.000+00:00", retrieval_ms=10.0),
        Turn("Which header carries the webhook signature?", "conv-api", route="frontier", topic="api", model="docs (extractive)",
             reason="topic 'api'", outcome="extractive", answer="This answer is quoted directly from the docs:\n> X-Signature. [1]",
             counterfactual_cost_usd=0.0029, total_ms=900.0, error="No ANTHROPIC_API_KEY set.",
             notes=[{"kind": "degraded", "text": "No ANTHROPIC_API_KEY set."},
                    {"kind": "extractive", "text": "Quoted from your docs; not verified by the frontier model."}],
             sources=[pricing_source], created_at="2025-03-05T10:30:00.000+00:00", retrieval_ms=11.0),
    ]
    ledger = Ledger(home / "ledger.sqlite3")
    for turn in turns:
        ledger.record(turn)
    ledger.close()
    return turns


# --- architecture ----------------------------------------------------------------------------

def test_core_imports_without_textual():
    """app.core must never import textual: it is the headless core every front end shares."""
    code = (
        "import sys, pkgutil, importlib\n"
        "sys.modules['textual'] = None  # any `import textual` now raises ImportError\n"
        "import app.core\n"
        "names = [m.name for m in pkgutil.walk_packages(app.core.__path__, 'app.core.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "import app.core.settings, app.core.desk\n"
        "print(len(names))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout.strip()) >= 15


# --- chat --------------------------------------------------------------------------------------

async def test_question_typed_before_ready_streams_cites_and_opens_a_passage(asking_home):
    from app.tui.dialogs import PassageScreen
    from app.tui.turn_view import SourceList, TurnView

    from app.core.desk import Desk

    class GatedServices(Desk):
        """Real services whose warm-up waits for the test: in this process the embedder is
        already loaded, so without the gate the warm-up could beat the typing."""

        gate = threading.Event()

        def warm_up(self) -> None:
            self.gate.wait(60)
            super().warm_up()

    settings = load_settings(flags={"local.max_tokens": 32})
    services = GatedServices(settings)
    app = FrontdeskApp(settings, desk=services)
    async with app.run_test(size=SIZE) as pilot:
        chat = app.screen
        chat.query_one("#question").value = "How do I reset my password?"
        await pilot.press("enter")
        view = chat.query_one(TurnView)
        await pilot.pause(0.3)
        assert not app.models_ready and view.progress.startswith("Waiting for the models")
        assert not view.finished, "a question typed while loading waits instead of being answered or lost"
        services.gate.set()

        await wait_for(pilot, lambda: view.finished, what="the answer")
        turn = view.turn
        assert app.models_ready
        assert view.token_updates >= 3, "the draft should stream token by token"
        # The real bundled model drafts here (this test is about streaming it into the view), and a
        # tiny model is not deterministic: its draft is kept when it passes the check ("answered") or
        # replaced by the confident docs quote ("extractive"). Either is right; which path is taken
        # for a given draft is pinned with scripted models in tests/test_pipeline_paths.py.
        assert turn.outcome in ("answered", "extractive") and turn.route == "local"
        sources = view.query_one(SourceList)
        assert sources.display and sources.option_count == len(turn.sources) > 0
        meta = str(view.query_one(".meta").render())
        assert "latency" in meta and "why" in meta and "check" in meta

        sources.focus()
        sources.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PassageScreen), 10, "the passage")
        from app.tui.format import markdown_content

        shown = app.screen.query_one("#passage-text").plain  # Markdown rendered
        assert markdown_content(turn.sources[0]["text"]).plain[:40] in shown and "**" not in shown
        await pilot.press("escape")
        assert app.desk.ledger.turns(limit=1)[0].question == "How do I reset my password?"


async def test_escape_stops_a_streaming_answer(asking_home):
    from app.tui.turn_view import TurnView

    app = FrontdeskApp(load_settings(flags={"local.max_tokens": 256}))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.models_ready, what="the models")
        app.screen.query_one("#question").value = "How do I reset my password?"
        await pilot.press("enter")
        view = app.screen.query_one(TurnView)
        await wait_for(pilot, lambda: view.token_updates >= 1 or view.finished, what="the first token")
        await pilot.press("escape")
        await wait_for(pilot, lambda: view.finished, what="the stopped turn")
        assert view.turn.outcome == "stopped"
        assert app.desk.ledger.turns(limit=1)[0].outcome == "stopped"
        # The input kept working: another question can be typed right away.
        app.screen.query_one("#question").value = "typed after stopping"
        assert app.screen.query_one("#question").value == "typed after stopping"


async def test_reopen_an_earlier_conversation_from_the_ledger(home):
    from app.tui.dialogs import ConversationsScreen
    from app.tui.turn_view import TurnView

    seed_turns(home)
    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationsScreen), 10, "the conversation list")
        app.screen.query_one("#conversation-list").highlighted = [
            i for i, c in enumerate(app.screen.conversations) if c[0] == "conv-reset"][0]
        await pilot.press("enter")
        await pilot.pause()
        views = list(app.screen.query(TurnView))
        assert [v.question for v in views] == ["How do I reset my password?", "And if the email never arrives?"]
        assert app.screen.conversation_id == "conv-reset"
        assert "quoted from docs" in str(views[1].query_one(".meta").render())
        # The notes are rebuilt from the ledger row: why the draft went, and what was shown instead.
        assert [text for text, _, _ in views[1].notes] == [
            "Local draft withdrawn (failed the check: it cites no passage).",
            "Quoted from your docs; not verified by the frontier model."]
        assert views[0].notes == []
        quoted = views[1].query_one(".final")
        assert quoted.query(".md-quote") and "> " not in quoted.plain  # the quote is drawn, not shown as Markdown


# --- loading docs ------------------------------------------------------------------------------

async def test_empty_store_offer_then_load_a_folder_with_a_bad_file(home, tmp_path):
    from app.tui.dialogs import OfferDocsScreen
    from app.tui.load_docs import LoadDocsScreen

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\n\nAnnual plans are refundable within 14 days of the first payment.\n")
    (docs / "reset.txt").write_text("To reset your password, open Settings, then Security, then Reset password.\n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\nthis is not a pdf body\n")

    app = FrontdeskApp(load_settings())
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, OfferDocsScreen), what="the empty-store offer")
        await pilot.press("f")  # pick a folder
        await wait_for(pilot, lambda: isinstance(app.screen, LoadDocsScreen), 10, "the docs screen")
        screen = app.screen
        screen.query_one("#path").value = str(docs)
        await pilot.press("ctrl+l")
        await pilot.press("f2")  # the chat stays usable while the folder loads
        assert app.current_mode == "chat"
        await wait_for(pilot, lambda: not screen.running and screen.query_one("#ingest-summary").render().plain,
                       what="the ingest")

        progress = screen.query_one("#progress")
        assert (progress.total, progress.progress) == (3, 3)
        assert [f for f, _ in screen.failures] == ["broken.pdf"]
        problems = str(screen.query_one("#problem-list").render())
        assert "broken.pdf" in problems and "corrupt PDF" in problems
        await wait_for(pilot, lambda: "1 file(s) skipped" in notifications(app), 10, "the toast")
        await wait_for(pilot, lambda: app.chunks and app.chunks > 0, 30, "the recount")
        assert "chunks" in str(app.status_line)


# --- logs --------------------------------------------------------------------------------------

async def test_the_logs_totals_show_spend_against_each_frontier_cap(home):
    from app.core.ledger.turns import Ledger, Turn

    ledger = Ledger(home / "ledger.sqlite3")
    ledger.record(Turn("today's pricing question", "c0", route="frontier", outcome="answered", answered_by="frontier",
                       cost_usd=0.9, frontier_cost_usd=0.9, counterfactual_cost_usd=0.9))
    ledger.close()
    app = FrontdeskApp(load_settings(flags={"frontier.daily_budget_usd": 1.0, "frontier.monthly_budget_usd": 50.0}),
                       load_models=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f4")
        logs = pilot.app.screen
        await wait_for(pilot, lambda: "frontier budget" in str(logs.query_one("#totals").render()), 30, "the totals")
        totals = str(logs.query_one("#totals").render())
        assert "daily frontier budget: $0.90 of $1.00 (90%)" in totals
        assert "monthly frontier budget: $0.90 of $50.00 (2%)" in totals


async def test_logs_filter_sort_and_export(home):
    from app.tui.dialogs import ExportScreen
    from app.tui.turn_detail import TurnDetailScreen

    seed_turns(home)
    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=SIZE) as pilot:
        logs = await open_logs(pilot)
        table = logs.query_one("#turns")
        assert "5 turns" in str(logs.query_one("#totals").render())

        logs.query_one("#route").value = "frontier"
        await wait_for(pilot, lambda: table.row_count == 2, 30, "the route filter")
        assert {t.route for t in logs.turns} == {"frontier"}
        logs.sort_by("cost")  # the same as clicking the Cost header
        assert [t.cost_usd for t in logs.turns] == sorted((t.cost_usd for t in logs.turns), reverse=True)

        table.focus()
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen), 10, "the export dialog")
        exports = home / "exports"  # under the data dir, never the directory the app was started in
        assert app.screen.query_one("#export-path").value == str(exports / "frontdesk-turns.csv")
        app.screen.query_one("#export-path").value = "frontier.csv"  # relative: under the exports folder
        await pilot.press("enter")
        await pilot.pause()
        rows = list(csv.DictReader((exports / "frontier.csv").open()))
        assert sorted(r["question"] for r in rows) == sorted(t.question for t in logs.turns)
        assert {r["route"] for r in rows} == {"frontier"}
        await wait_for(pilot, lambda: str(exports / "frontier.csv") in notifications(app), 10, "the toast")
        assert not list(Path.cwd().iterdir())

        # A folder that doesn't exist: said plainly, and the dialog comes back with the path to fix.
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen), 10, "the export dialog")
        bad = home / "no-such-folder" / "turns.csv"
        app.screen.query_one("#export-path").value = str(bad)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen) and app.screen.problem, 10, "the dialog again")
        problem = f"Cannot write {bad}: folder doesn't exist or isn't writable; choose another path"
        await wait_for(pilot, lambda: problem in notifications(app), 10, "the toast")
        assert "Unexpected error" not in notifications(app)
        assert app.screen.query_one("#export-path").value == str(bad)
        await pilot.press("escape")

        logs.query_one("#route").clear()
        logs.query_one("#since").value = "2025-03-05"
        logs.query_one("#text").value = "weather"
        await wait_for(pilot, lambda: table.row_count == 1, 30, "the date and text filters")
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportScreen), 10, "the export dialog")
        app.screen.query_one("#export-path").value = "weather.json"
        await pilot.press("enter")
        await pilot.pause()
        data = json.loads((home / "exports" / "weather.json").read_text())
        assert [t["question"] for t in data["turns"]] == ["What's the weather in Paris?"]

        table.focus()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, TurnDetailScreen), 10, "the detail")
        assert app.screen.turn.outcome == "refused"


# --- failures are shown, not thrown --------------------------------------------------------------

async def test_missing_docs_folder_is_a_notification(home, tmp_path):
    app = FrontdeskApp(load_settings(flags={"docs": str(tmp_path / "no-such-docs")}), load_models=False)
    async with app.run_test(size=SIZE) as pilot:
        app.load_docs()
        await wait_for(pilot, lambda: "Docs folder not found" in notifications(app), 60, "the notification")
        assert app.is_running
        assert "Docs folder not found" in str(app.screen.query_one("#ingest-summary").render())


async def test_corrupt_local_model_is_a_notification_and_the_app_keeps_running(home, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF this is not a model" * 100)
    app = FrontdeskApp(load_settings(flags={"local.model": str(bad)}))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "Could not load the local model broken.gguf" in notifications(app), what="the notification")
        assert "degraded" in str(app.status_line)
        assert app.is_running
        await wait_for(pilot, lambda: type(app.screen).__name__ == "OfferDocsScreen", 30, "the empty-store offer")
        await pilot.press("escape", "f1")  # still responsive
        assert type(app.screen).__name__ == "HelpScreen"


# --- keyboard first ------------------------------------------------------------------------------

async def test_keys_theme_help_and_palette_commands(home):
    from app.tui.help import HelpScreen

    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.theme == "textual-dark"
        await pilot.press("ctrl+t")
        assert app.theme == "textual-light"
        for key, mode in (("f3", "docs"), ("f4", "logs"), ("f5", "settings"), ("f2", "chat")):
            await pilot.press(key)
            assert app.current_mode == mode
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        keys = str(app.screen.query_one("#help-keys").render())
        for text in ("Stop the streaming answer", "Export", "Load the folder", "Switch between dark and light themes"):
            assert text in keys
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Load docs", "Logs", "Export logs", "Settings", "Stop the answer", "Reopen a conversation",
                "Toggle dark/light theme", "Help"} <= titles


# --- the frontier model failing, missing, and coming back ------------------------------------------

def _notes(view) -> list[str]:
    return [text for text, _, _ in view.notes]


async def test_frontier_failure_is_one_toast_a_status_and_each_message_once(asking_home, monkeypatch):
    from fake_anthropic import FakeAnthropic, cite_first_passage
    from app.tui.turn_view import TurnView

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    with FakeAnthropic(reply=cite_first_passage) as server:
        server.queue_error(529)  # the first call fails (no retries configured); the next one works
        settings = load_settings(flags={"frontier.base_url": server.url, "frontier.max_retries": 0, "local.max_tokens": 32})
        app = FrontdeskApp(settings)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.models_ready, what="the models")
            app.screen.ask("how much will 3 extra seats cost me?")
            view = app.screen.query(TurnView).last()
            await wait_for(pilot, lambda: view.finished, what="the failed-over answer")
            assert view.turn.outcome == "extractive", (view.turn.actions, view.turn.error)

            # notify() posts a message to the app: the toast lands a moment after the answer
            await wait_for(pilot, lambda: any(n.severity == "warning" for n in app._notifications), 30, "the toast")
            await pilot.pause(0.2)
            warnings = [n for n in app._notifications if n.severity == "warning"]
            assert len(warnings) == 1 and "Claude unreachable" in warnings[0].title, (
                notifications(app), view.notes, view.frontier_notice, view.turn.actions)
            assert "Claude unreachable" in str(app.status_line) and "Ready" not in str(app.status_line)
            notes = _notes(view)
            assert len(notes) == len(set(notes)) == 2, notes  # the failure once, then "quoted from your docs"
            assert not any("Draft withdrawn" in note for note in notes)
            assert sum(view.turn.error.split("\n")[0] in note for note in notes) == 1

            app.screen.ask("how much is an extra seat on the Business plan?")
            second = app.screen.query(TurnView).last()
            await wait_for(pilot, lambda: second.finished, what="the frontier answer")
            assert second.turn.route == "frontier" and second.turn.outcome == "answered", second.turn.actions
            assert "Claude unreachable" not in str(app.status_line) and "Ready" in str(app.status_line)
            assert len([n for n in app._notifications if n.severity == "warning"]) == 1


async def test_an_open_breaker_is_one_notice_and_shows_in_the_status_line(asking_home, monkeypatch):
    from fake_anthropic import FakeAnthropic
    from app.tui.turn_view import TurnView

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    with FakeAnthropic() as server:
        for _ in range(20):
            server.queue_error(500)
        settings = load_settings(flags={"frontier.base_url": server.url, "frontier.max_retries": 0})
        app = FrontdeskApp(settings)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: app.models_ready, what="the models")
            questions = ["how much will 3 extra seats cost me?", "how much is the Pro plan?", "is VAT added to my invoice?",
                         "what does the Team plan cost per year?", "how much is an extra seat on the Business plan?"]
            for question in questions:
                app.screen.ask(question)
                view = app.screen.query(TurnView).last()
                await wait_for(pilot, lambda: view.finished, what="the answer")
            await wait_for(pilot, lambda: "paused" in notifications(app), 30, "the toast")
            await pilot.pause(0.2)
            assert len(server.requests) == 3  # the last two questions sent nothing
            assert "Claude paused" in str(app.status_line)
            paused = [n for n in app._notifications if "paused after 3 failed calls" in n.message]
            assert len(paused) == 1, notifications(app)


async def test_the_status_line_warns_from_80_percent_of_a_frontier_cap(asking_home):
    from app.core.ledger.turns import Ledger, Turn
    from app.tui.turn_view import TurnView

    ledger = Ledger(asking_home / "ledger.sqlite3")
    ledger.record(Turn("earlier", "c0", route="frontier", outcome="answered", answered_by="frontier",
                       cost_usd=0.9, frontier_cost_usd=0.9, counterfactual_cost_usd=0.9))
    ledger.close()
    app = FrontdeskApp(load_settings(flags={"local.max_tokens": 16, "frontier.daily_budget_usd": 1.0}))
    async with app.run_test(size=(120, 24)) as pilot:
        await wait_for(pilot, lambda: app.models_ready, what="the models")
        app.screen.ask("how do I reset my password?")
        view = app.screen.query(TurnView).last()
        await wait_for(pilot, lambda: view.finished, what="the answer")
        await wait_for(pilot, lambda: "daily budget 90%" in str(app.status_line), 30, "the budget warning")


async def test_no_api_key_is_said_once_per_session(asking_home):
    from app.tui.turn_view import TurnView

    app = FrontdeskApp(load_settings(flags={"local.max_tokens": 32}))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.models_ready, what="the models")
        for question in ("how much will 3 extra seats cost me?", "is VAT added to my invoice?"):
            app.screen.ask(question)
            view = app.screen.query(TurnView).last()
            await wait_for(pilot, lambda: view.finished, what="the answer")
            assert any(note.startswith("No ANTHROPIC_API_KEY set") for note in _notes(view)), _notes(view)
            assert len(_notes(view)) == len(set(_notes(view)))
        await wait_for(pilot, lambda: "ANTHROPIC_API_KEY" in notifications(app), 30, "the toast")
        await pilot.pause(0.2)
        told = [n for n in app._notifications if "ANTHROPIC_API_KEY" in n.message]
        assert len(told) == 1 and told[0].severity == "warning"
        assert "no API key" in str(app.status_line)


async def test_asking_with_no_docs_loaded_says_how_to_load_them(home):
    from app.tui.dialogs import OfferDocsScreen
    from app.tui.turn_view import TurnView

    app = FrontdeskApp(load_settings(flags={"local.max_tokens": 16}))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, OfferDocsScreen), what="the empty-store offer")
        await pilot.press("escape")
        app.screen.ask("How do I reset my password?")
        view = app.screen.query_one(TurnView)
        await wait_for(pilot, lambda: view.finished, what="the turn")
        notes = _notes(view)
        assert notes[0] == "No docs loaded yet: press F3 to load a folder, or load the sample docs (Ctrl+P)."
        assert sum("No docs loaded yet" in note for note in notes) == 1, notes
        assert not any("frontdesk ingest" in note for note in notes)


# --- rendering -----------------------------------------------------------------------------------

def test_markdown_is_rendered_and_unverified_marks_stay_in_the_warning_colour():
    from app.tui.format import UNVERIFIED_STYLE, answer_content, markdown_blocks

    text = "Use the **Team** plan and call `POST /v1/seats` [1].\n\n> Team costs ⟦unverified: **$14**⟧ per seat.\n- one\n- two"
    content = answer_content(text)
    assert "**" not in content.plain and "`" not in content.plain and "[1]" in content.plain
    assert "⟦unverified: $14⟧" in content.plain
    start = content.plain.index("⟦")
    assert any(span.style == UNVERIFIED_STYLE and span.start <= start < span.end for span in content.spans)
    assert [kind for kind, _ in markdown_blocks(text)] == ["p", "quote", "item"]
    assert "[bold]" in answer_content("[bold]literal[/bold]").plain  # never parsed as markup


def test_a_withdrawn_draft_is_one_short_line():
    from app.core.answer.notes import failed_check_note
    from app.core.trust.grounding import GroundingResult, UnsupportedSpan

    sentences = ["You can add seats any time from the billing page.", "Seats are prorated daily.",
                 "Contact sales for more than 50 seats."]
    check = GroundingResult(False, [UnsupportedSpan(text, 0, len(text), "sentence", "not in the passages") for text in sentences])
    assert failed_check_note(check) == "Local draft withdrawn (failed the check: 3 unsupported sentences)."
    assert len(failed_check_note(check)) < 72


async def test_settings_values_wrap_in_their_own_column(home):
    from app.tui.facts import Facts

    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await wait_for(pilot, lambda: app.store_info is not None, 60, "the store count")
        await pilot.pause()
        for facts in app.screen.query(Facts):
            values = list(facts.query(".fact-value"))
            assert values and len({v.region.x for v in values}) == 1  # one column for every value
            assert all(v.region.x > facts.region.x + 6 for v in values)
        wrapped = [v for v in app.screen.query(".fact-value") if v.region.height > 1]
        assert wrapped, "some value (a path, the key status) is longer than a line at 80 columns"


# --- logs at 80 columns, stale loads, the palette ----------------------------------------------

async def test_logs_fit_80_columns_and_ignore_stale_loads(home):
    from app.tui.logs import LogsLoaded

    seed_turns(home)
    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        logs = await open_logs(pilot)
        table = logs.query_one("#turns")
        shown = [c.key for c, _ in logs.columns_shown]
        assert shown == ["time", "question", "route", "outcome", "cost", "counterfactual"]
        assert sum(w + 2 for _, w in logs.columns_shown) <= 80 - 3
        assert [c.width for c in table.columns.values()] == [w for _, w in logs.columns_shown]

        footer = [b.action for b, _, _ in logs.query_one("KeyFooter").shown_bindings()]
        assert "sort_next" in footer and "help" in footer and "switch_mode('settings')" not in footer

        # Two filter changes in a row: only the latest load's rows are drawn.
        logs.query_one("#route").value = "frontier"
        logs.query_one("#text").value = "webhook"
        await wait_for(pilot, lambda: table.row_count == 1, 30, "the filters")
        # A load that was overtaken arrives late (thread workers can't be cancelled): ignored.
        # (Its summary of None would fail the handler if it were drawn.)
        logs.post_message(LogsLoaded(logs.generation - 1, [], None, [], [], []))
        await pilot.pause(0.2)
        assert table.row_count == 1 and app.is_running

        await pilot.resize_terminal(200, 60)
        await wait_for(pilot, lambda: len(logs.columns_shown) == 10, 10, "every column at 200 columns")


async def test_palette_offers_the_active_screens_keys(home):
    from app.tui.turn_detail import TurnDetailScreen

    seed_turns(home)
    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        logs = await open_logs(pilot)
        commands = {c.title: c for c in app.get_system_commands(logs)}
        assert {"Logs: Sort", "Logs: Reverse", "Logs: Chart", "Logs: Detail", "Logs: Search"} <= set(commands)
        commands["Logs: Chart"].callback()
        await pilot.pause(0.2)
        assert not logs.query_one("#chart-box").display

        commands["Logs: Detail"].callback()
        await wait_for(pilot, lambda: isinstance(app.screen, TurnDetailScreen), 10, "the detail")
        assert "Turn detail: Open in chat" in {c.title for c in app.get_system_commands(app.screen)}
        await pilot.press("f5")
        assert "Settings: Recount" in {c.title for c in app.get_system_commands(app.screen)}


async def test_a_missing_folder_on_the_docs_screen_says_what_to_do_here(home, tmp_path):
    app = FrontdeskApp(load_settings(), load_models=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f3")
        app.screen.query_one("#path").value = str(tmp_path / "nowhere")
        await pilot.press("ctrl+l")
        await wait_for(pilot, lambda: "Docs folder not found" in notifications(app), 10, "the notification")
        summary = str(app.screen.query_one("#ingest-summary").render())
        assert "pick one in the tree" in summary and "frontdesk ingest" not in summary + notifications(app)


def test_text_uses_the_themes_readable_colours():
    """$accent/$warning/$success/$error are fill colours (about 1.5:1 as text on the light theme);
    text uses their $text-* variants."""
    import re

    tui = ROOT / "app" / "tui"
    for path in tui.glob("*.py"):
        assert not re.search(r"\$(accent|warning|success|error)\b(?!-)", path.read_text()), path
    assert not re.search(r"color: \$(accent|warning|success|error)\b(?!-)", (tui / "frontdesk.tcss").read_text())

"""The one entry point: `frontdesk [tui] | ingest | search | ask | route | logs | handoff | eval | router | config | models`.

Commands build a `Desk` (the core's one handle) and only format what it returns. Exit codes:
0 success, 1 partial failure (some files or questions failed), 2 error (nothing done),
130 interrupted (Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from app.cli.evaluate import add_eval_arguments, cmd_eval
from app.cli.handoff import add_handoff_arguments, cmd_handoff
from app.cli.logs import add_logs_arguments, cmd_logs
from app.cli.models import add_models_arguments, cmd_models
from app.cli.router import add_router_arguments, cmd_router
from app.core import OPTIONS, Desk, FrontdeskError, dispatch, env_name, load_settings
from app.cli.common import (EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, IngestShown, ProgressBar, in_batches, print_passages,
                            questions_from, require_documents)



def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("settings (override frontdesk.toml and FRONTDESK_* variables)")
    group.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="settings file (default: ./frontdesk.toml, then <home>/frontdesk.toml)")
    group.add_argument("--home", metavar="DIR", default=argparse.SUPPRESS, help="data directory (store and ledger)")
    group.add_argument("--set", metavar="NAME=VALUE", action="append", default=argparse.SUPPRESS, dest="overrides", help="any setting, e.g. --set frontier.model=claude-haiku-4-5 (repeatable)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(prog="frontdesk", description="A local-first customer-support desk.", parents=[common])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    commands.add_parser("tui", parents=[common], help="open the terminal app (the default)")

    ingest = commands.add_parser("ingest", parents=[common], help="load (or re-sync) a docs folder into the store")
    ingest.add_argument("path", nargs="?", type=Path, help="docs folder (default: the `docs` setting, the sample docs)")
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON")
    ingest.add_argument("-v", "--verbose", action="store_true", help="list every file with its status")

    search = commands.add_parser("search", parents=[common], help="show the passages that best match a question")
    _question_arguments(search)

    ask = commands.add_parser("ask", parents=[common], help="answer a question from the docs (routed, cited, checked, logged)")
    _question_arguments(ask)

    route = commands.add_parser("route", parents=[common], help="show who would answer a question, and why, without answering")
    route.add_argument("question", nargs="?", help="the question (or use --stdin)")
    route.add_argument("--stdin", action="store_true", help="read one question per line; write one JSON line per question")
    route.add_argument("--json", action="store_true", help="print JSON")
    route.add_argument("--docs", action="store_true", help="also apply the relevance thresholds, using the docs store")

    logs = commands.add_parser("logs", parents=[common], help="review turns: routing, cost and savings")
    add_logs_arguments(logs)

    config = commands.add_parser("config", parents=[common], help="show the effective settings and where each came from")
    config.add_argument("--json", action="store_true")

    handoff = commands.add_parser("handoff", parents=[common], help="the queue of questions a person should answer: list, export, done")
    add_handoff_arguments(handoff)

    evaluate = commands.add_parser("eval", parents=[common], help="measure routing, retrieval and answers against labelled questions")
    add_eval_arguments(evaluate)

    models = commands.add_parser("models", parents=[common], help="list, install, choose and check local models")
    add_models_arguments(models, common)

    router = commands.add_parser("router", parents=[common], help="fit the routing policy to your labelled questions")
    add_router_arguments(router, common)
    return parser


def _question_arguments(command: argparse.ArgumentParser) -> None:
    command.add_argument("question", nargs="?", help="the question (or use --stdin)")
    command.add_argument("--stdin", action="store_true", help="read one question per line; write one JSON line per question")
    command.add_argument("--json", action="store_true", help="print JSON")
    command.add_argument("-k", type=int, default=None, metavar="N", help="passages to retrieve (default: top_k setting)")


def settings_from_args(args: argparse.Namespace):
    flags: dict[str, object] = {}
    if getattr(args, "home", None):
        flags["home"] = args.home
    for item in getattr(args, "overrides", None) or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise FrontdeskError(f"--set expects NAME=VALUE, got {item!r}", "For example: --set top_k=8")
        flags[name.strip()] = value
    if getattr(args, "k", None) is not None:
        flags["top_k"] = args.k
    return load_settings(flags=flags, config=getattr(args, "config", None))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        command = args.command or "tui"
        if command == "tui":
            from app.tui.app import run_app

            return run_app(settings)
        with _stopped_by_signals():
            return COMMANDS[command](Desk(settings), args)
    except FrontdeskError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as interrupt:
        print("\ninterrupted: nothing is half-written; run the command again to finish.", file=sys.stderr)
        name = str(interrupt)
        return 128 + signal.Signals[name] if name in ("SIGTERM", "SIGHUP") else EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGTERM (kill) and SIGHUP (the terminal closed) stop a command the way Ctrl-C does:
    the turn in flight is logged as stopped and an ingest leaves the store consistent.

    A signal this process was started with ignored stays ignored: `nohup frontdesk ingest DIR &`
    asked to outlive the terminal (Python itself leaves an inherited ignored SIGINT alone)."""
    def stop(signum, _frame) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    wanted = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
              if hasattr(signal, name) and signal.getsignal(getattr(signal, name)) is not signal.SIG_IGN]
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {number: signal.signal(number, stop) for number in wanted}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


# --- ingest ------------------------------------------------------------------------------

def cmd_ingest(desk: Desk, args) -> int:
    shown = IngestShown(ProgressBar() if sys.stderr.isatty() and not args.json else None, args.verbose)
    for event in desk.ingest((args.path or desk.settings.docs).expanduser()):
        dispatch(event, shown)
    if shown.progress:
        shown.progress.stop()
    summary = shown.summary
    if args.json:
        print(json.dumps(summary.to_json()))
    else:
        print(summary.describe())
        if summary.failed:
            print(f"{len(summary.failed)} file(s) skipped; fix them and run `frontdesk ingest` again.", file=sys.stderr)
    return EXIT_OK if summary.ok else EXIT_PARTIAL


def cmd_search(desk: Desk, args) -> int:
    questions = questions_from(args)
    require_documents(desk)
    as_json = args.json or args.stdin
    for batch in in_batches(questions):
        for question, passages in zip(batch, desk.search(batch)):
            if as_json:
                print(json.dumps({"question": question, "results": [p.to_json() for p in passages]}, ensure_ascii=False), flush=args.stdin)
            else:
                print_passages(passages)
    return EXIT_OK


# --- config ------------------------------------------------------------------------------

def cmd_config(desk: Desk, args) -> int:
    settings = desk.settings
    key_status = f"configured ({settings.api_key_source})" if settings.api_key else "not set (escalated questions are answered from your docs only)"
    if args.json:
        print(json.dumps({
            "config_file": str(settings.config_file) if settings.config_file else None,
            "settings": {name: {"value": _plain(settings.value(name)), "source": settings.sources[name]} for name in (o.name for o in OPTIONS)},
            "anthropic_api_key": key_status,
            "frontier_breaker": desk.frontier_status(),
        }, indent=2))
        return EXIT_OK
    print(f"config file: {settings.config_file or 'none (defaults; create ./frontdesk.toml to change them)'}")
    width = max(len(o.name) for o in OPTIONS)
    for option in OPTIONS:
        print(f"{option.name:<{width}}  {_plain(settings.value(option.name))!s:<40}  [{settings.sources[option.name]}]")
    print(f"{'anthropic api key':<{width}}  {key_status}")
    print(f"{'frontier breaker':<{width}}  {desk.frontier_status()}")
    print(f"\nEach setting can be set in frontdesk.toml ([section] key), as {env_name('frontier.model')}-style variables, or with --set NAME=VALUE.")
    return EXIT_OK


def _plain(value):
    if isinstance(value, Path):
        return str(value)
    return value


def cmd_ask(desk: Desk, args) -> int:
    from app.cli.answers import cmd_ask as ask  # the pipeline's imports are paid only when used

    return ask(desk, args)


def cmd_route(desk: Desk, args) -> int:
    from app.cli.answers import cmd_route as route

    return route(desk, args)


COMMANDS: dict[str, Callable] = {
    "ingest": cmd_ingest, "search": cmd_search, "ask": cmd_ask, "route": cmd_route, "logs": cmd_logs, "config": cmd_config,
    "models": cmd_models, "handoff": cmd_handoff, "eval": cmd_eval, "router": cmd_router,
}


if __name__ == "__main__":
    raise SystemExit(main())

"""Start-up benchmark: launch -> first interactive frame, and launch -> first answer.

Method. Every measurement is a fresh process, timed from just before it is spawned:

- baseline: `python -c "import textual"` until it exits;
- imports: `python -c "import app.cli"` until it exits (what the entry point imports
  before the TUI module; shows what start-up pays outside app/tui);
- first frame: the real entry point (`app.cli.main([])`, as the `frontdesk` script runs it)
  with two patches applied in the child only: the app runs headless (Textual's own
  headless driver: layout and rendering happen, nothing is written to a terminal), and the
  chat screen, once mounted, prints a wall-clock timestamp from a `call_after_refresh`
  callback (that is, after its first refresh has been rendered) and exits;
- first answer: the same, but the chat submits a question as soon as the first frame is up
  (before the models have loaded, like a user who types at once), and the child exits when
  the turn is answered. It also reports when the models were ready and the first token.

Rounds are interleaved (baseline, imports, frame[, answer]) so drift in machine load hits
every measure alike; the table shows medians and ratios to the baseline of the same run.

    .venv/bin/python bench/startup.py [--reps 7] [--answer-reps 3] [--max-tokens 64]

The answer rounds need a data dir with the sample docs ingested: one is built in a temp
dir on first run (about a minute) unless --home points at one.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "How do I reset my password?"


# --- the child: runs the real app headless and reports timestamps --------------------------

def child(mode: str) -> None:
    sys.path.insert(0, str(ROOT))
    from app import cli  # the entry point's own imports, as `frontdesk` pays them
    from app.tui import app as tui
    from app.tui.chat import ChatScreen

    stamps: dict[str, float] = {}

    def report_and_exit(screen) -> None:
        print(json.dumps(stamps), flush=True)
        screen.app.exit(0)

    original_run = tui.FrontdeskApp.run
    tui.FrontdeskApp.run = lambda self, **kw: original_run(self, headless=True, **kw)

    original_mount = ChatScreen.on_mount

    def on_mount(screen) -> None:
        original_mount(screen)

        def first_frame() -> None:
            stamps["frame"] = time.time()
            if mode == "frame":
                report_and_exit(screen)
            else:
                screen.ask(QUESTION)

        screen.call_after_refresh(first_frame)

    ChatScreen.on_mount = on_mount

    original_ready = tui.FrontdeskApp.on_models_ready

    def on_models_ready(app, message) -> None:
        stamps["ready"] = time.time()
        original_ready(app, message)

    tui.FrontdeskApp.on_models_ready = on_models_ready

    original_token = ChatScreen.on_token

    def on_token(screen, event, view) -> None:
        stamps.setdefault("token", time.time())
        original_token(screen, event, view)

    ChatScreen.on_token = on_token

    original_finish = ChatScreen._finish

    def finish(screen, view, turn) -> None:
        original_finish(screen, view, turn)
        stamps["answer"] = time.time()
        stamps["outcome"] = getattr(turn, "outcome", "worker failed")
        report_and_exit(screen)

    ChatScreen._finish = finish
    sys.exit(cli.main([]))


# --- the parent ------------------------------------------------------------------------------

def timed(args: list[str], env: dict[str, str]) -> tuple[float, dict]:
    started = time.time()
    result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    ended = time.time()
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    stamps = json.loads(lines[-1]) if lines else {}
    return ended - started, {k: (v - started if isinstance(v, float) else v) for k, v in stamps.items()}


def prepare_home(home: Path, env: dict[str, str]) -> None:
    if (home / "chroma").exists():
        return
    print(f"ingesting the sample docs into {home} (once)…", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "app", "ingest"], cwd=ROOT, env={**env, "FRONTDESK_HOME": str(home)},
                   check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=7, help="rounds of baseline / imports / first frame")
    parser.add_argument("--answer-reps", type=int, default=3, help="rounds that also time the first answer")
    parser.add_argument("--max-tokens", type=int, default=64, help="local.max_tokens for the answer rounds")
    parser.add_argument("--home", type=Path, help="data dir with docs ingested (default: a temp dir, built once)")
    parser.add_argument("--child", choices=["frame", "answer"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return

    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDESK_") and k != "ANTHROPIC_API_KEY"}
    home = args.home or Path(tempfile.gettempdir()) / "frontdesk-bench-home"
    prepare_home(home, env)
    empty_home = Path(tempfile.mkdtemp(prefix="frontdesk-bench-empty-"))
    py = sys.executable
    samples: dict[str, list[float]] = {k: [] for k in ("baseline", "imports", "frame", "a_frame", "a_ready", "a_token", "a_answer")}
    outcomes = []
    for round_ in range(args.reps):
        samples["baseline"].append(timed([py, "-c", "import textual"], env)[0])
        samples["imports"].append(timed([py, "-c", "import app.cli"], env)[0])
        # An empty data dir: the first frame must not depend on what the store holds.
        _, stamps = timed([py, __file__, "--child", "frame"], {**env, "FRONTDESK_HOME": str(empty_home)})
        samples["frame"].append(stamps["frame"])
        if round_ < args.answer_reps:
            answer_env = {**env, "FRONTDESK_HOME": str(home), "FRONTDESK_LOCAL_MAX_TOKENS": str(args.max_tokens)}
            _, stamps = timed([py, __file__, "--child", "answer"], answer_env)
            for key in ("frame", "ready", "token", "answer"):
                if key in stamps:
                    samples[f"a_{key}"].append(stamps[key])
            outcomes.append(stamps.get("outcome"))
        print(f"round {round_ + 1}/{args.reps} done", file=sys.stderr)

    base = statistics.median(samples["baseline"])
    rows = [
        ("`python -c \"import textual\"` (baseline)", "baseline"),
        ("`python -c \"import app.cli\"` (entry-point imports)", "imports"),
        ("launch → first frame (empty store)", "frame"),
        ("launch → first frame (answer rounds)", "a_frame"),
        ("launch → models ready", "a_ready"),
        ("launch → first streamed token", "a_token"),
        ("launch → first answer", "a_answer"),
    ]
    print(f"\nPython {sys.version.split()[0]} · {os.cpu_count()} CPUs · {args.reps} rounds "
          f"({args.answer_reps} with an answer, local.max_tokens={args.max_tokens}) · question: {QUESTION!r}\n")
    print("| measure | n | median s | min s | max s | × baseline |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, key in rows:
        values = samples[key]
        if not values:
            continue
        median = statistics.median(values)
        print(f"| {label} | {len(values)} | {median:.3f} | {min(values):.3f} | {max(values):.3f} | {median / base:.2f} |")
    if outcomes:
        print(f"\nanswer outcomes: {', '.join(str(o) for o in outcomes)}")


if __name__ == "__main__":
    main()

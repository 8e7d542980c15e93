"""`frontdesk models check`: load a model and decode a few tokens, in a child process.

A llama.cpp build compiled for instructions this CPU lacks dies by a signal (SIGILL, or
SIGSEGV as seen with a native build on an AMX machine) on the first decode. In a child
that ends the check with a clear message instead of killing the set-up script's Python.

Run as `python -m app.core.models.smoke PATH [--home DIR]`: prints llama.cpp's system info
line, then one JSON line with the result; records TTFT and tokens/s under the data dir.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from app.core.settings import PROJECT_ROOT

PROMPT = "Say hello to a customer in one short sentence."
MAX_TOKENS = 16
N_CTX = 512
TIMEOUT = 600.0  # a 1.5B model on two busy cores loads and answers well within this
REBUILD_FIX = (
    "Rebuild llama-cpp-python for a portable x86-64 baseline: "
    "rm -f .venv/.frontdesk-installed && FRONTDESK_LLAMA_BUILD=portable scripts/setup.sh"
)


@dataclass(frozen=True)
class CheckResult:
    path: Path
    ok: bool
    system_info: str = ""
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    tokens: int = 0
    text: str = ""
    error: str = ""
    signal_name: str = ""  # set when the child died by a signal


def run_check(path: Path, home: Path | None = None, threads: int | None = None, timeout: float = TIMEOUT) -> CheckResult:
    """Smoke-test `path` in a child Python; never raises for a failing model.

    `threads` as the `local.threads` setting (None or 0: auto), so measured speeds match the app's.
    """
    command = [sys.executable, "-m", "app.core.models.smoke", str(Path(path).resolve())]
    if home is not None:
        command += ["--home", str(home)]
    if threads:
        command += ["--threads", str(threads)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return CheckResult(path, False, error=f"no answer within {timeout:.0f} s (the machine may be very busy)")
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return CheckResult(path, False, error=_last_lines(done.stderr), signal_name=name)
    result = _parse(done.stdout)
    if done.returncode == 0 and result.get("ok"):
        return CheckResult(
            path, True, result.get("system_info", ""), result.get("ttft_s"), result.get("tokens_per_s"),
            result.get("tokens", 0), result.get("text", ""),
        )
    error = result.get("error") or _last_lines(done.stderr) or f"exit code {done.returncode}"
    return CheckResult(path, False, result.get("system_info", ""), error=error)


def _parse(stdout: str) -> dict:
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    return {}


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " | ".join(lines[-count:])


# --- the child -------------------------------------------------------------------------------

def _child(path: Path, home: str | None, threads: int | None) -> int:
    try:
        import llama_cpp
    except ImportError as error:
        print(json.dumps({"ok": False, "error": f"llama-cpp-python is not usable: {error}"}))
        return 1
    system_info = llama_cpp.llama_print_system_info()
    if isinstance(system_info, bytes):
        system_info = system_info.decode("utf-8", errors="replace")
    system_info = " ".join(system_info.split())
    print(f"system_info: {system_info}", flush=True)
    from app.core.models.hardware import auto_threads

    threads = threads or auto_threads()
    try:
        # Prompt threads too: llama-cpp-python's default (all CPUs) collapses on a busy machine,
        # and the app's worker uses the same count for both.
        llama = llama_cpp.Llama(model_path=str(path), n_ctx=N_CTX, n_threads=threads, n_threads_batch=threads, verbose=False)
    except (ValueError, RuntimeError, OSError) as error:
        print(json.dumps({"ok": False, "system_info": system_info, "error": f"llama.cpp could not load {path.name}: {error}"}))
        return 1
    started = time.perf_counter()
    first = last = None
    pieces: list[str] = []
    try:
        stream = llama.create_chat_completion(
            messages=[{"role": "user", "content": PROMPT}], max_tokens=MAX_TOKENS, temperature=0.0, stream=True,
        )
        for chunk in stream:  # one token per chunk, as the provider counts them
            text = chunk["choices"][0]["delta"].get("content")
            if text:
                last = time.perf_counter()
                first = first or last
                pieces.append(text)
    except (ValueError, RuntimeError) as error:
        print(json.dumps({"ok": False, "system_info": system_info, "error": f"decoding failed: {error}"}))
        return 1
    if first is None:
        print(json.dumps({"ok": False, "system_info": system_info, "error": "the model loaded but produced no tokens"}))
        return 1
    ttft = first - started
    tokens_per_s = (len(pieces) - 1) / (last - first) if len(pieces) > 1 and last > first else 0.0
    if home:
        from types import SimpleNamespace

        from app.core.models.state import record_speed

        record_speed(SimpleNamespace(home=Path(home)), path, ttft, tokens_per_s, threads)
    print(json.dumps({
        "ok": True, "system_info": system_info, "ttft_s": round(ttft, 3), "tokens_per_s": round(tokens_per_s, 2),
        "tokens": len(pieces), "text": "".join(pieces), "threads": threads,
    }))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.core.models.smoke", description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--home", help="data dir where the measured speed is recorded (default: not recorded)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: auto, as local.threads = 0)")
    args = parser.parse_args(argv)
    return _child(args.path, args.home, args.threads)


if __name__ == "__main__":
    sys.exit(main())

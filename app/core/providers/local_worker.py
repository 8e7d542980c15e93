"""The local model's worker process, started and supervised by the desk.

llama.cpp is native code: a segfault on an unsupported CPU path, an OOM kill or a hang
must end one draft, not the app. So the model runs in a child process, llama-cpp-python's
own OpenAI-compatible server (`llama_cpp.server`) on 127.0.0.1, and the desk talks to it over
HTTP. When the worker dies, `exit_description` says how (with the signal), and the next
question starts a fresh one.

The child watches its parent and exits when the parent is gone (even after `kill -9`), so a
worker never outlives the desk that started it. This module doubles as that watchdog's entry
point and imports nothing heavy at the top for it:

    python -m app.core.providers.local_worker PARENT_PID [llama_cpp.server arguments]
"""
from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

PARENT_POLL_S = 0.5
READY_POLL_S = 0.1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        why = {"SIGSEGV": "a crash in native code", "SIGILL": "an instruction this CPU lacks",
               "SIGKILL": "for example by the out-of-memory killer", "SIGABRT": "aborted"}.get(name, "")
        return f"killed by {name}" + (f" ({why})" if why else "")
    return f"exited with code {returncode}"


class LocalWorker:
    """One `llama_cpp.server` child serving one GGUF file on 127.0.0.1."""

    def __init__(self, model_path: Path, alias: str, n_ctx: int, threads: int, log_path: Path):
        self.model_path = model_path
        self.alias = alias
        self.n_ctx = n_ctx
        self.threads = threads
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.port = 0
        self._lock = threading.Lock()
        self._ready = False
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def ready(self) -> bool:
        return self._ready and self.alive()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Spawn the worker if none is running (returns at once; the model loads meanwhile)."""
        with self._lock:
            if self.alive():
                return
            self._ready = False
            self.port = free_port()
            try:
                self.log_path.parent.mkdir(parents=True, exist_ok=True)
                self.log_path.touch()
            except OSError:  # a read-only data dir: the worker still runs, its log goes to /tmp
                self.log_path = Path(tempfile.gettempdir()) / f"frontdesk-local-worker-{os.getuid()}.log"
            command = [
                sys.executable, "-m", __name__, str(os.getpid()),
                "--model", str(self.model_path), "--model_alias", self.alias,
                "--host", "127.0.0.1", "--port", str(self.port),
                "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads), "--n_threads_batch", str(self.threads),
                # The server's default computes logits for every prompt token, which we never
                # read: with a 151k-token vocabulary that cost 2-3 s of a 0.5B model's first token.
                "--logits_all", "false",
            ]
            # The worker needs no API key: it never gets one, so it can't leak one.
            env = {name: value for name, value in os.environ.items() if not name.endswith("_API_KEY")}
            # Threads that sleep instead of spinning while they wait for each other: with the CPU
            # shared (another program, the desk itself), spinning threads collapsed a 0.5B model
            # from 21 to 0.3 tokens/s; passive ones lost nothing to one thread (see auto_threads).
            env["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
            with self.log_path.open("wb") as log:  # the child keeps its own handle
                self.process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                    # Its own session: Ctrl-C in the terminal is the desk's to handle, not the worker's.
                    start_new_session=True,
                )

    def wait_ready(self, timeout: float) -> None:
        """Block until the worker answers HTTP. Raises WorkerDied or TimeoutError."""
        if self.ready:
            return
        self.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.process
            if process is None or process.poll() is not None:
                raise WorkerDied(describe_exit(process.returncode if process else None), self.log_tail())
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        self._ready = True
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(READY_POLL_S)
        self.stop()
        raise TimeoutError(f"the model did not load within {timeout:g} s")

    def exit_description(self, wait: float = 1.0) -> str | None:
        """How the worker ended, or None if it is still running (after waiting a moment:
        a dropped connection is seen a few milliseconds before the exit status)."""
        if self.process is None:
            return None
        try:
            self.process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return None
        return describe_exit(self.process.returncode)

    def kill(self) -> None:
        """SIGKILL: for a worker that hangs. The next question starts a fresh one."""
        process = self.process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        self._ready = False

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self._ready = False

    def log_tail(self, lines: int = 6) -> str:
        """The worker's last meaningful log lines (why a load failed, usually)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        wanted = [line for line in text.splitlines() if any(word in line.lower() for word in ("error", "fail", "invalid", "not within", "exception"))]
        return "\n".join((wanted or text.splitlines())[-lines:])


class WorkerDied(Exception):
    def __init__(self, how: str, log_tail: str):
        super().__init__(how)
        self.how = how
        self.log_tail = log_tail


# --- the child's side -----------------------------------------------------------------------


def _exit_with_parent(parent: int) -> None:
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:  # re-parented: the desk is gone
            os._exit(0)


def _main(argv: list[str]) -> None:
    parent = int(argv[0])
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    import runpy

    sys.argv = ["llama_cpp.server", *argv[1:]]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    _main(sys.argv[1:])

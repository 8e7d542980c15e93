"""End to end in a real terminal: the installed `frontdesk` command in tmux, driven by keystrokes.

Uses a private tmux server (its own socket), so it never touches the user's sessions, and
kills only that server afterwards.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import ROOT

TMUX = shutil.which("tmux") or "tmux"  # scripts/test installs it; a missing tmux fails loudly

SOURCE_LINE = re.compile(r"\[1\] \S+\.(md|mdx|txt|html|pdf)")


class Terminal:
    def __init__(self, socket: str):
        self.socket = socket

    def run(self, *args: str, check: bool = True) -> str:
        return subprocess.run([TMUX, "-L", self.socket, *args], capture_output=True, text=True, check=check).stdout

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "fd")

    def wait_for(self, predicate, timeout: float, what: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; screen:\n{text}")
            time.sleep(0.5)


def frontdesk_command() -> Path:
    installed = Path(sys.executable).with_name("frontdesk")
    return installed if installed.exists() else ROOT / ".venv" / "bin" / "frontdesk"


def test_ask_and_quit_in_a_real_terminal(knowledge_home, tmp_path):
    home = tmp_path / "home"
    shutil.copytree(knowledge_home, home)
    term = Terminal(f"frontdesk-test-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    # The shell reports the exit status on the pane once the app has given the terminal back.
    command = (f"env FRONTDESK_HOME={home} FRONTDESK_LOCAL_MAX_TOKENS=32 {frontdesk_command()}; "
               "echo FRONTDESK-EXIT=$?; sleep 60")
    try:
        term.run("-f", "/dev/null", "new-session", "-d", "-s", "fd", "-x", "100", "-y", "30", "-c", str(tmp_path), command)

        term.wait_for(lambda s: "● Ready" in s, 240, "the ready status")
        term.run("send-keys", "-t", "fd", "-l", "How do I reset my password?")
        term.run("send-keys", "-t", "fd", "Enter")
        screen = term.wait_for(lambda s: "all-frontier" in s and "latency" in s, 240, "the answer footer")
        assert SOURCE_LINE.search(screen), f"no cited source file on screen:\n{screen}"

        term.run("send-keys", "-t", "fd", "C-q")
        screen = term.wait_for(lambda s: "FRONTDESK-EXIT=" in s, 30, "the app to exit after Ctrl+Q")
        assert "FRONTDESK-EXIT=0" in screen, screen
        assert "Traceback" not in term.screen()
    finally:
        term.run("kill-server", check=False)

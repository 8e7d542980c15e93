"""`chroma_url`: the same ingest and search against a real Chroma server on 127.0.0.1."""
from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import KNOWLEDGE


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def chroma_server(tmp_path):
    """`chroma run` (the server chromadb ships) on a free local port, stopped after the test."""
    port = _free_port()
    chroma = Path(sys.executable).with_name("chroma")
    process = subprocess.Popen([str(chroma), "run", "--path", str(tmp_path / "server-data"), "--host", "127.0.0.1",
                                "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # until the heartbeat answers (a few seconds), or the server died
            assert process.poll() is None, "chroma run exited"
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_ingest_and_search_through_a_chroma_server(cli, chroma_server, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(KNOWLEDGE / "account", docs)
    first = cli("--set", f"chroma_url={chroma_server}", "ingest", docs)
    assert first.code == 0, first.err
    again = cli("--set", f"chroma_url={chroma_server}", "ingest", docs)
    assert " 0 added" in again.out and "0 embedded" in again.out  # incremental against the server too
    hits = cli("--set", f"chroma_url={chroma_server}", "search", "how do I reset my password?", "--json").json_lines()
    assert hits[0]["results"][0]["file"] == "sign-up-and-login.md"
    assert not (tmp_path / "home" / "chroma").exists()  # nothing went to the local store


def test_an_unreachable_chroma_server_is_a_clear_error(cli, tmp_path):
    result = cli("--set", f"chroma_url=http://127.0.0.1:{_free_port()}", "search", "anything")
    assert result.code == 2 and "Cannot open the Chroma store" in result.err and "Chroma server is running" in result.err
    assert "Traceback" not in result.err

"""`frontdesk eval` with answers, the frontier being the Messages API test server on 127.0.0.1.

    .venv/bin/python bench/eval_with_test_frontier.py tests/data/sample_eval.jsonl --docs knowledge --home DIR

Any `frontdesk eval` arguments pass through. The server (tests/fake_anthropic.py, as
bench/answers.py uses it) answers by quoting the first passage it is sent, and bills the
configured Claude prices for the tokens: the run measures the local tier, the routing, the
check and the costs through the real pipeline and the real anthropic SDK, without a key or a
network. Fact recall on frontier answers measures that one-passage quote, not Claude.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from app.cli import main  # noqa: E402
from fake_anthropic import FakeAnthropic, cite_first_passage  # noqa: E402

if __name__ == "__main__":
    server = FakeAnthropic(reply=cite_first_passage).start()
    os.environ["ANTHROPIC_API_KEY"] = "sk-ant-eval-not-a-real-key-000000"
    sys.exit(main(["eval", *sys.argv[1:], "--set", f"frontier.base_url={server.url}"]))

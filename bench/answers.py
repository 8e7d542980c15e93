"""Answer-quality and cost evaluation over labelled question sets, through the real pipeline.

    .venv/bin/python bench/answers.py --set knowledge            # the sample docs (ingested on the fly)
    .venv/bin/python bench/answers.py --set railway --home DIR   # a data dir with railway-docs ingested

Local model: the configured GGUF (default: the bundled SmolLM2-135M). Frontier: with
`--frontier fake` (default) a Messages API server on 127.0.0.1 (tests/fake_anthropic.py)
that answers by quoting passage [1]; its token usage is priced at the configured Claude
prices, so spend and savings are what the real API would bill for the same prompts. With
`--frontier none` no key is set and escalations fall back to extractive answers.

Prints routing shares, what happened to local answers (kept after the grounding check,
escalated, replaced by an extractive quote), refusals/handoffs on unanswerable and
out-of-scope questions, unsupported prices shown as fact (must be 0), and savings.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from app.core.grounding import check_facts  # noqa: E402
from app.core.passage import Passage  # noqa: E402
from app.core.services import Services  # noqa: E402
from app.settings import load_settings  # noqa: E402

SETS = {
    "knowledge": (ROOT / "tests" / "data" / "knowledge_questions.jsonl", ROOT / "knowledge"),
    "railway": (ROOT / "bench" / "data" / "railway_questions.jsonl", ROOT.parent / "shared" / "datasets" / "railway-docs"),
}
MARKED = re.compile(r"⟦unverified: [^⟧]*⟧")


def unsupported_prices_shown(turn) -> int:
    """Prices in the final answer, outside ⟦unverified⟧ marks, that its sources don't contain."""
    shown = MARKED.sub("", turn.answer)
    sources = [Passage(s["id"], s["text"], s["file"], s.get("heading", ""), 0.0) for s in turn.sources]
    return sum(1 for span in check_facts(shown, sources) if span.kind == "price")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=sorted(SETS), default="knowledge")
    parser.add_argument("--home", type=Path, help="a data dir that already holds the set's docs (copied, not modified)")
    parser.add_argument("--frontier", choices=["fake", "none"], default="fake")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--local-max-tokens", type=int, default=128)
    args = parser.parse_args()

    questions_path, docs = SETS[args.set]
    questions = [json.loads(line) for line in questions_path.read_text().splitlines() if line.strip()]
    if args.limit:
        questions = questions[: args.limit]
    home = Path(tempfile.mkdtemp(prefix="frontdesk-eval-"))
    if args.home:
        shutil.copytree(args.home, home, dirs_exist_ok=True)
        (home / "ledger.sqlite3").unlink(missing_ok=True)

    server = None
    environ = {"FRONTDESK_HOME": str(home)}
    flags = {"local.max_tokens": args.local_max_tokens, "local.temperature": 0.0}
    if args.frontier == "fake":
        from fake_anthropic import FakeAnthropic, cite_first_passage

        server = FakeAnthropic(reply=cite_first_passage).start()
        environ["ANTHROPIC_API_KEY"] = "sk-ant-eval-not-a-real-key-000000"
        flags["frontier.base_url"] = server.url
    services = Services(load_settings(flags=flags, environ=environ))
    if not args.home:
        for _ in services.ingest(docs):
            pass

    rows = []
    for number, item in enumerate(questions, 1):
        turn = services.assistant.answer(item["question"])
        first_draft = "local" if any("local answer" in a for a in turn.actions) else ""
        rows.append((item, turn, first_draft))
        print(f"{number:>3}/{len(questions)} {turn.route:<8} {turn.outcome:<10} {item['question'][:70]}", file=sys.stderr)
    if server:
        server.stop()
    report(args, rows, services.ledger.summary())


def report(args, rows, summary) -> None:
    answerable = [(i, t, d) for i, t, d in rows if i.get("answerable") and i.get("route") != "out_of_scope"]
    unanswerable = [(i, t, d) for i, t, d in rows if not i.get("answerable") and i.get("route") != "out_of_scope"]
    out_of_scope = [(i, t, d) for i, t, d in rows if i.get("route") == "out_of_scope"]
    local_drafts = [(i, t) for i, t, d in rows if d == "local"]
    kept_local = [t for _, t in local_drafts if t.route == "local" and t.outcome == "answered"]
    escalated = [t for _, t in local_drafts if any("escalated after the local answer failed" in a for a in t.actions)]
    replaced = [t for _, t in local_drafts if t.outcome == "extractive"]
    declined_unanswerable = [t for _, t, _ in unanswerable if t.outcome in ("handoff", "refused")]
    declined_scope = [t for _, t, _ in out_of_scope if t.outcome == "refused"]
    route_ok = [1 for i, t, _ in answerable if i.get("route") in ("local", "frontier") and i["route"] == _decided_route(t)]
    cited_right = [1 for i, t, _ in answerable if i.get("file") and any(s["file"] == i["file"] for s in t.sources)]
    prices = sum(unsupported_prices_shown(t) for _, t, _ in rows)
    outcomes = Counter(t.outcome for _, t, _ in rows)

    def share(part, whole) -> str:
        return f"{len(part) if isinstance(part, list) else part}/{len(whole)} ({100 * (len(part) if isinstance(part, list) else part) / max(1, len(whole)):.0f}%)"

    print(f"\nSet: {args.set} ({len(rows)} questions), frontier: {args.frontier}, local max tokens {args.local_max_tokens}\n")
    print("| measure | result |\n|---|---|")
    print(f"| outcomes | {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))} |")
    print(f"| routing agrees with the label (answerable questions) | {share(len(route_ok), answerable)} |")
    print(f"| answer cites the labelled file (answerable) | {share(len(cited_right), answerable)} |")
    print(f"| local drafts that passed the grounding check | {share(kept_local, local_drafts)} |")
    print(f"| local drafts escalated to the frontier after failing | {share(escalated, local_drafts)} |")
    print(f"| local drafts replaced by an extractive answer | {share(replaced, local_drafts)} |")
    print(f"| unanswerable questions refused or handed off | {share(declined_unanswerable, unanswerable)} |")
    print(f"| out-of-scope questions declined | {share(declined_scope, out_of_scope)} |")
    print(f"| unsupported prices shown as fact | **{prices}** |")
    print(f"| spend / all-frontier counterfactual | ${summary.spend_usd:.4f} / ${summary.counterfactual_usd:.4f} |")
    print(f"| savings | **{summary.savings_pct:.1f}%** |")


def _decided_route(turn) -> str:
    # The router's decision is the first action's target: a local draft means "local".
    return "local" if any("local answer" in a for a in turn.actions) or turn.route == "local" else turn.route


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()

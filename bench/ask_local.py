"""Local answers end to end: the `frontdesk ask` pipeline vs raw llama-cpp-python.

The pipeline side runs `Assistant.ask` (what `frontdesk ask` runs: embed, retrieve,
quarantine, route, prompt, stream to the model's worker process) on a question the router
sends to the local model, and times the first and last Token event from the call. The raw
side runs llama-cpp-python's `create_chat_completion` in this process on the very prompt
the pipeline built (same model, threads, context, greedy decoding, max tokens), from the
call. Six local-routed questions are asked in turn, so each round's prompt differs from the
one before (as in real use) and both sides reuse only the shared system-prompt prefix from
their prompt caches. Runs alternate A/B, B/A; medians are reported.

    .venv/bin/python bench/ask_local.py --rounds 6 --max-tokens 64
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The raw side runs llama.cpp in this process: give it the worker's thread wait policy
# (local_worker.py), so the ratio measures the worker's own overhead, not the policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from local_generation import RunResult, run_raw_once  # noqa: E402

from app.core.answer.events import Drafting, Retrieved, Token  # noqa: E402
from app.core.answer.prompts import build_local_prompt  # noqa: E402
from app.core.desk import Desk  # noqa: E402
from app.core.providers.local import fit  # noqa: E402
from app.core.settings import load_settings  # noqa: E402

# Support questions the router sends to the local model, asked in turn: each round's prompt
# differs from the last (as in real use), so neither side answers from a warm prompt cache.
QUESTIONS = [
    "how do I turn on two-factor authentication?",
    "how do I reset my password?",
    "what are the rules for a new password?",
    "how do I invite a colleague to my workspace?",
    "can I restore a document I deleted?",
    "how do I change the email address I use to log in?",
]


def run_pipeline_once(services: Desk, question: str) -> tuple[RunResult, list]:
    first = None
    tokens, passages, drafting = [], [], False
    start = time.perf_counter()
    for event in services.assistant.ask(question):
        if isinstance(event, Retrieved):
            passages = event.passages
        elif isinstance(event, Drafting):
            drafting = event.kind == "local"
        elif isinstance(event, Token) and drafting:
            if first is None:
                first = time.perf_counter() - start
            tokens.append(event.text)
            last = time.perf_counter() - start
        elif drafting and tokens:
            drafting = False  # the local draft ended (kept, withdrawn or escalated)
    assert tokens, "the question must be routed to the local model"
    return RunResult("".join(tokens), first, last, len(tokens)), passages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="frontdesk-ask-bench-"))
    settings = load_settings(flags={"local.max_tokens": args.max_tokens, "local.temperature": 0.0},
                             environ={"FRONTDESK_HOME": str(home)})
    services = Desk(settings)
    for _ in services.ingest(ROOT / "knowledge"):
        pass
    services.warm_up()

    def messages_for(passages: list, question: str) -> list[dict]:
        """The very prompt the pipeline sends for this question."""
        fitted, _ = fit(build_local_prompt(question, services.assistant.reading.local_passages(passages)), args.max_tokens, services.local.n_ctx)
        return [{"role": "system", "content": fitted.system}, {"role": "user", "content": fitted.user}]

    prompts = {}
    for question in QUESTIONS:  # warm-up; also yields each question's passages
        try:
            prompts[question] = messages_for(run_pipeline_once(services, question)[1], question)
        except AssertionError:  # the router sent it elsewhere (policy changes move questions)
            print(f"skipped (not routed to the local model): {question}")
    questions = list(prompts)

    from llama_cpp import Llama

    provider = services.local
    raw = Llama(model_path=str(provider.model_path), n_ctx=provider.n_ctx, n_threads=provider.threads,
                n_threads_batch=provider.threads, verbose=False)
    run_raw_once(raw, prompts[questions[-1]], args.max_tokens)
    results = {"ask": [], "raw": []}
    texts_match = True
    for round_ in range(args.rounds):
        question = questions[round_ % len(questions)]
        order = [("ask", lambda: run_pipeline_once(services, question)[0]),
                 ("raw", lambda: run_raw_once(raw, prompts[question], args.max_tokens))]
        got = {}
        for name, run in order if round_ % 2 == 0 else reversed(order):
            got[name] = run()
            results[name].append(got[name])
        texts_match &= got["ask"].text.strip() == got["raw"].text.strip()

    def med(name, attr):
        return statistics.median(getattr(r, attr) for r in results[name])

    print(f"model {provider.model_name} | threads {provider.threads} | {len(questions)} questions in turn | "
          f"max_tokens {args.max_tokens} | rounds {args.rounds} | identical text per round: {'yes' if texts_match else 'NO'}\n")
    print("| path | TTFT ms (median) | decode tokens/s (median) | output tokens |\n|---|---|---|---|")
    for name in ("ask", "raw"):
        print(f"| {name} | {1000 * med(name, 'ttft_s'):.0f} | {med(name, 'decode_tokens_per_s'):.1f} | {results[name][0].output_tokens} |")
    print(f"\nask/raw: decode tokens/s **{med('ask', 'decode_tokens_per_s') / med('raw', 'decode_tokens_per_s'):.3f}**, "
          f"TTFT (raw/ask) **{med('raw', 'ttft_s') / med('ask', 'ttft_s'):.3f}** (goal >= 0.95 for both)")


if __name__ == "__main__":
    main()

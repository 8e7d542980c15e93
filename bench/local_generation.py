"""Local generation speed: LocalProvider.generate (the model in its worker process, over
HTTP) vs raw llama-cpp-python in this process.

Both paths run the same GGUF with the same threads and context size, on the same chat
messages, with greedy decoding (temperature 0) and the same max_tokens, so they produce the
same tokens and the difference is the provider's own overhead (the worker's HTTP server,
server-sent events, the client). Runs are interleaved A/B/A/B so drift in machine load (this
is a shared 2-core box) hits both paths alike; medians are reported.

Each run's system prompt starts with a fresh nonce, so neither path reuses a cached prompt
prefix and time-to-first-token includes evaluating the whole prompt (--warm repeats one
prompt instead).

    .venv/bin/python bench/local_generation.py --rounds 5 --max-tokens 128

`run_provider_once(provider, prompt)` is reusable by other benches (e.g. end to end).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# The raw side runs llama.cpp in this process: give it the worker's thread wait policy
# (local_worker.py), so the ratio measures the worker's own overhead, not the policy.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core.providers.base import Prompt, Usage  # noqa: E402
from app.core.providers.local import LocalProvider, fit  # noqa: E402
from app.core.settings import PROJECT_ROOT, load_settings  # noqa: E402

SYSTEM = (
    "You are the support assistant of Quillstack. Answer the customer's question using only "
    "the passages below. If they do not contain the answer, say you don't know. Be brief."
)
QUESTION = "Question: Can I use Quillstack offline, and what needs a connection?"


@dataclass
class RunResult:
    text: str
    ttft_s: float  # call to first non-empty text chunk
    total_s: float
    output_tokens: int
    input_tokens: int = 0

    @property
    def decode_tokens_per_s(self) -> float:
        """Tokens after the first, over the time after the first (the decode rate)."""
        span = self.total_s - self.ttft_s
        return (self.output_tokens - 1) / span if self.output_tokens > 1 and span > 0 else 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.output_tokens / self.total_s if self.total_s > 0 else 0.0


def run_provider_once(provider, prompt: Prompt, max_tokens: int | None = None) -> RunResult:
    """One streamed answer through any Provider, timed from the call to the last chunk."""
    usage = Usage()
    pieces: list[str] = []
    first = None
    start = time.perf_counter()
    for piece in provider.generate(prompt, usage, max_tokens=max_tokens):
        if first is None and piece:
            first = time.perf_counter() - start
        pieces.append(piece)
    total = time.perf_counter() - start
    return RunResult("".join(pieces), first if first is not None else total, total, usage.output_tokens, usage.input_tokens)


def run_raw_once(llama, messages: list[dict], max_tokens: int, temperature: float = 0.0) -> RunResult:
    """The same answer straight from llama-cpp-python (one token per content chunk)."""
    pieces: list[str] = []
    first = None
    start = time.perf_counter()
    for chunk in llama.create_chat_completion(messages=messages, stream=True, max_tokens=max_tokens, temperature=temperature):
        text = chunk["choices"][0]["delta"].get("content")
        if text:
            if first is None:
                first = time.perf_counter() - start
            pieces.append(text)
    total = time.perf_counter() - start
    return RunResult("".join(pieces), first if first is not None else total, total, len(pieces))


def sample_prompt(passage_chars: int) -> Prompt:
    """Sample-doc passages then the question, the way the pipeline lays out Prompt.user."""
    faq = PROJECT_ROOT / "knowledge" / "faq.md"
    body = faq.read_text(encoding="utf-8") if faq.is_file() else "Quillstack works offline in the desktop apps. " * 50
    passages = f"[1] faq.md > Frequently asked questions\n{body[:passage_chars]}"
    return Prompt(SYSTEM, f"Passages:\n{passages}\n\n{QUESTION}")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="A/B rounds (default 5)")
    parser.add_argument("--max-tokens", type=int, default=128, help="answer length cap (default 128)")
    parser.add_argument("--passage-chars", type=int, default=2500, help="passage text in the prompt (default 2500)")
    parser.add_argument("--model", type=Path, help="GGUF to run (default: as the app resolves it)")
    parser.add_argument("--threads", type=int, help="CPU threads (default: local.threads / auto)")
    parser.add_argument("--n-ctx", type=int, help="context window (default: local.n_ctx)")
    parser.add_argument("--warm", action="store_true", help="keep the KV prompt cache between runs")
    args = parser.parse_args(argv)

    overrides = {"local__temperature": 0.0}
    if args.model:
        overrides["local__model"] = args.model.resolve()
    if args.threads:
        overrides["local__threads"] = args.threads
    if args.n_ctx:
        overrides["local__n_ctx"] = args.n_ctx
    settings = load_settings().with_overrides(**overrides)

    provider = LocalProvider(settings)
    provider.load()
    from llama_cpp import Llama

    raw = Llama(
        model_path=str(provider.model_path), n_ctx=provider.n_ctx,
        n_threads=provider.threads, n_threads_batch=provider.threads, verbose=False,
    )
    base = sample_prompt(args.passage_chars)
    runs = iter(range(10**6))

    def prompt_for_run() -> Prompt:
        if args.warm:
            return base
        return Prompt(f"Session {next(runs)}. {base.system}", base.user)

    def provider_run(prompt: Prompt) -> RunResult:
        return run_provider_once(provider, prompt, args.max_tokens)

    def raw_run(prompt: Prompt) -> RunResult:
        fitted, limit = fit(prompt, args.max_tokens, provider.n_ctx)
        messages = [{"role": "system", "content": fitted.system}, {"role": "user", "content": fitted.user}]
        return run_raw_once(raw, messages, limit)

    warm = prompt_for_run()
    provider_run(warm), raw_run(warm)  # warm-up: page the weights in, build the samplers
    results: dict[str, list[RunResult]] = {"provider": [], "raw": []}
    for round_ in range(args.rounds):
        prompt = prompt_for_run()  # the same prompt for both paths within a round
        # A/B then B/A: interleaved, and neither path always runs second (warmer caches).
        order = (("provider", provider_run), ("raw", raw_run))
        for name, run in order if round_ % 2 == 0 else reversed(order):
            results[name].append(run(prompt))

    p, r = results["provider"], results["raw"]
    input_tokens = p[0].input_tokens
    print(f"model {provider.model_name} | threads {provider.threads} | n_ctx {provider.n_ctx} | "
          f"prompt ~{input_tokens} tokens | max_tokens {args.max_tokens} | rounds {args.rounds} | "
          f"{'warm' if args.warm else 'cold'} KV cache | identical output per round: "
          f"{'yes' if all(a.text == b.text for a, b in zip(p, r)) else 'NO'}")
    print()
    print("| path | TTFT median (best) ms | decode tok/s median (best) | overall tok/s median (best) | output tokens |")
    print("|---|---:|---:|---:|---:|")
    for name, runs in (("LocalProvider.generate (worker)", p), ("raw create_chat_completion", r)):
        ttft = [x.ttft_s * 1000 for x in runs]
        decode = [x.decode_tokens_per_s for x in runs]
        overall = [x.tokens_per_s for x in runs]
        print(f"| {name} | {median(ttft):.0f} ({min(ttft):.0f}) | {median(decode):.1f} ({max(decode):.1f}) "
              f"| {median(overall):.1f} ({max(overall):.1f}) | {median([x.output_tokens for x in runs]):.0f} |")
    decode_ratio = median([x.decode_tokens_per_s for x in p]) / max(median([x.decode_tokens_per_s for x in r]), 1e-9)
    overall_ratio = median([x.tokens_per_s for x in p]) / max(median([x.tokens_per_s for x in r]), 1e-9)
    ttft_ratio = median([x.ttft_s for x in r]) / max(median([x.ttft_s for x in p]), 1e-9)
    print()
    print(f"provider/raw: decode {decode_ratio:.3f}, overall {overall_ratio:.3f}, TTFT (raw/provider) {ttft_ratio:.3f} "
          f"(goal >= 0.95)")
    raw.close()
    provider.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

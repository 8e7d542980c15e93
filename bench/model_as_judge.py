"""Could the local model judge its own drafts better than the embedder does?

    .venv/bin/python bench/calibrate_local_tier.py --home DIR --home-knowledge DIR --dump /tmp/samples.jsonl
    .venv/bin/python bench/model_as_judge.py --samples /tmp/samples.jsonl [--model PATH] [--per-class 40]

The local tier keeps a draft when it reads close to the question and covers its words
(`relevance.draft_features`, thresholds calibrated by calibrate_local_tier.py). Most wrong
local answers that get through are true sentences that answer a neighbouring question, so a
better judge of "does this text answer this question" would be the biggest gain. No
cross-encoder or NLI model can be installed here; the GGUF the desk already runs can judge.
This bench measures two ways of asking it, on the simulated drafts of the labelled sets
(good = states the labelled fact), a stratified sample of --per-class good and wrong:

- yes/no: the model is asked whether the answer gives what the question asks; the score is
  log P(yes) - log P(no) of its first token;
- question likelihood: mean log P(question | "Passage: draft. A question it answers:")
  minus the same without the passage (the question's pointwise mutual information with the
  draft, as unsupervised passage re-rankers score passages).

It prints each score's ROC AUC (the chance a good draft scores above a wrong one; 0.5 is a
coin) beside the embedder's similarity and coverage on the same sample, and the time per
judgement against `draft_features`' in the same run.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the worker runs llama.cpp
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.core.settings import PROJECT_ROOT  # noqa: E402

DEFAULT_MODEL = PROJECT_ROOT / "models" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
JUDGE_SYSTEM = "You check a support answer. Reply yes or no."
JUDGE_USER = ("Customer question: {question}\n\nAnswer: {answer}\n\n"
              "Does this answer give the customer the information they asked for? Reply yes or no.")
MAX_DRAFT_CHARS = 1000  # the context below holds any sample draft whole at this length


def auc(scores: list[float], good: list[bool]) -> float:
    pos = [s for s, g in zip(scores, good) if g]
    neg = [s for s, g in zip(scores, good) if not g]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))


class Judge:
    """The GGUF, in this process, scoring texts from its logits (no generation)."""

    def __init__(self, model: Path, threads: int):
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        # Every prompt token's logits are kept, for the question likelihood; a small context
        # keeps that buffer (context × vocabulary floats) small.
        self.llm = Llama(str(model), n_ctx=768, n_threads=threads, logits_all=True, verbose=False)
        meta = self.llm.metadata
        self.template = Jinja2ChatFormatter(meta["tokenizer.chat_template"], eos_token="", bos_token="")
        first = lambda text: self.llm.tokenize(text.encode(), add_bos=False, special=False)[0]  # noqa: E731
        self.yes = [first(t) for t in ("yes", "Yes", " yes")]
        self.no = [first(t) for t in ("no", "No", " no")]

    def _eval(self, tokens: list[int]) -> np.ndarray:
        self.llm.reset()
        self.llm.eval(tokens)
        return self.llm.scores[:len(tokens)]

    def yes_no(self, question: str, answer: str) -> float:
        messages = [{"role": "system", "content": JUDGE_SYSTEM},
                    {"role": "user", "content": JUDGE_USER.format(question=question, answer=answer)}]
        prompt = self.template(messages=messages).prompt
        last = self._eval(self.llm.tokenize(prompt.encode(), add_bos=False, special=True))[-1]
        return float(np.logaddexp.reduce(last[self.yes]) - np.logaddexp.reduce(last[self.no]))

    def _question_logprob(self, prefix: str, question: str) -> float:
        head = self.llm.tokenize(prefix.encode(), add_bos=True, special=False)
        asked = self.llm.tokenize((" " + question).encode(), add_bos=False, special=False)
        logits = self._eval(head + asked)
        rows = logits[len(head) - 1:-1]  # the logits that predict each question token
        log_norm = np.logaddexp.reduce(rows, axis=1)
        return float(np.mean(rows[np.arange(len(asked)), asked] - log_norm))

    def question_pmi(self, question: str, answer: str) -> float:
        given = self._question_logprob(f"Passage: {answer}\nA customer question this passage answers:", question)
        return given - self._question_logprob("A customer question:", question)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=Path, required=True, help="a calibrate_local_tier.py --dump file")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    drafts = [row for row in map(json.loads, args.samples.open()) if row["kind"] == "draft"]
    rng = random.Random(args.seed)
    sample = [row for good in (True, False)
              for row in rng.sample([r for r in drafts if r["good"] is good], args.per_class)]
    good = [row["good"] for row in sample]

    from app.core.docs.embeddings import Embedder
    from app.core.trust.relevance import draft_features

    embedder = Embedder()
    draft_features("warm up", "the embedder", [], embedder)
    started = time.perf_counter()
    for row in sample:
        draft_features(row["question"], row["draft"], [], embedder)
    embedder_s = (time.perf_counter() - started) / len(sample)

    judge = Judge(args.model, args.threads)
    started = time.perf_counter()
    yes_no = [judge.yes_no(row["question"], row["draft"][:MAX_DRAFT_CHARS]) for row in sample]
    yes_no_s = (time.perf_counter() - started) / len(sample)
    started = time.perf_counter()
    pmi = [judge.question_pmi(row["question"], row["draft"][:MAX_DRAFT_CHARS]) for row in sample]
    pmi_s = (time.perf_counter() - started) / len(sample)

    print(f"\nModel: {args.model.name} · {args.per_class} good and {args.per_class} wrong simulated drafts "
          f"from {args.samples} (seed {args.seed})\n")
    print("| judge of 'does the draft answer the question' | ROC AUC | time per draft ÷ the embedder's |")
    print("|---|---|---|")
    print(f"| embedder: similarity (what the desk uses) | {auc([r['similarity'] for r in sample], good):.3f} | 1 |")
    print(f"| embedder: coverage of the question's words | {auc([r['coverage'] for r in sample], good):.3f} | 1 |")
    print(f"| model: yes/no | {auc(yes_no, good):.3f} | {yes_no_s / embedder_s:.0f} |")
    print(f"| model: question likelihood (PMI) | {auc(pmi, good):.3f} | {pmi_s / embedder_s:.0f} |")


if __name__ == "__main__":
    main()

"""Answer-quality and cost evaluation over labelled question sets, through the real pipeline.

    .venv/bin/python bench/answers.py --set knowledge            # the sample docs (ingested on the fly)
    .venv/bin/python bench/answers.py --set railway --home DIR   # a data dir with railway-docs ingested
    .venv/bin/python bench/answers.py --set sample-eval|railway-eval [--home DIR]   # held out: customers' own wording

    .venv/bin/python bench/answers.py --set knowledge --frontier liar  # a frontier that lies

Local model: the configured GGUF (default: the bundled SmolLM2-135M). Frontier: with
`--frontier fake` (default) a Messages API server on 127.0.0.1 (tests/fake_anthropic.py)
that answers by quoting passage [1]; its token usage is priced at the configured Claude
prices, so spend and savings are what the real API would bill for the same prompts. With
`--frontier liar` the same server answers with one true sentence and three planted lies
(an uncited passage's price, spelled-out and oddly written prices, a price moved to another
period or plan, "the X plan is free", a shifted date, an invented URL), in several citation
styles. With `--frontier none` no key is set and escalations fall back to extractive answers.

Per local model (`--model PATH`, repeatable; default: the configured one), a table of the
local tier's measures: (a) local-routed answerable questions answered by the local tier
(local model or docs quote), checked and right (bench/labels.py: each labelled fact's
numbers and most of its words, and the labelled file cited), (b) how much of that the
model wrote, (c) local-routed questions escalated, (d) savings on the set and on traffic
where 80% of questions are local-routed, (e) unsupported prices and URLs shown as fact,
(f) local time to first token, also as a ratio to the same model's raw read of a fixed
500-token text timed before and after the questions (the machine's speed that day). Then
routing shares, what happened to local answers (kept after the grounding check, escalated,
replaced by an extractive quote), refusals/handoffs on unanswerable and
out-of-scope questions, unsupported prices and URLs shown as fact (must be 0), and savings.
Those counts do not use the grounding check: the bench reads every price and URL in the
final answer outside ⟦unverified⟧ marks with its own patterns and looks for it in the raw
text of the cited source files. With the liar, it also reports how many planted lie
sentences reached the user intact (unmarked).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# The baseline's raw llama.cpp runs in this process: give it the worker's thread wait policy
# (local_worker.py), as bench/local_generation.py does.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from app.core.desk import Desk  # noqa: E402
from app.core.settings import load_settings  # noqa: E402
from app.core.text import draft_part  # noqa: E402

SETS = {
    "knowledge": (ROOT / "tests" / "data" / "knowledge_questions.jsonl", ROOT / "knowledge"),
    "railway": (ROOT / "bench" / "data" / "railway_questions.jsonl", ROOT.parent / "shared" / "datasets" / "railway-docs"),
    # Held out: questions in customers' own words (long, chatty, typos), each labelled with
    # several facts. The calibration tests its thresholds on sample-eval; a prompt change is
    # measured here too, so it is not tuned to the two sets above.
    "sample-eval": (ROOT / "tests" / "data" / "sample_eval.jsonl", ROOT / "knowledge"),
    "railway-eval": (ROOT / "bench" / "data" / "railway_eval.jsonl", ROOT.parent / "shared" / "datasets" / "railway-docs"),
}
MARKED = re.compile(r"⟦unverified: [^⟧]*⟧")

# --- an independent count of unsupported prices and URLs --------------------------------
# Deliberately not app.core.trust.grounding: its own patterns and normalisation, compared with the
# raw text of the cited files, so a blind spot of the check is not also a blind spot here.
_WORD_VALUES = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                           "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_WORD_VALUES.update({w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)})
_WORDS = "|".join(sorted([*_WORD_VALUES, "hundred", "thousand"], key=len, reverse=True))
_SIGN = {"$": "USD", "US$": "USD", "C$": "CAD", "€": "EUR", "£": "GBP", "USD": "USD", "EUR": "EUR", "GBP": "GBP",
         "CAD": "CAD", "AUD": "AUD", "DOLLAR": "USD", "DOLLARS": "USD", "BUCKS": "USD", "EURO": "EUR", "EUROS": "EUR",
         "POUND": "GBP", "POUNDS": "GBP"}
_MONEY = re.compile(
    r"(?P<pre>US\$|C\$|\$|€|£|\b(?:USD|EUR|GBP|CAD|AUD)\s?)(?P<a>\d(?:[\d,]*\d)?(?:\.\d+)?|\.\d+)(?P<ak>k\b)?"
    r"|(?<![\w.])(?P<b>\d(?:[\d,]*\d)?(?:\.\d+)?)(?P<bk>k)?\s?(?P<post>\$|€|£|USD|EUR|GBP|CAD|AUD|dollars?|bucks|euros?|pounds?)(?![A-Za-z])"
    rf"|(?P<words>\b(?:{_WORDS})(?:[\s-]+(?:and\s+)?(?:{_WORDS}))*)\s+(?P<wpost>dollars?|euros?)\b"
    r"|(?P<cents>\d+)\s+cents\b", re.I)
_LINK = re.compile(r"https?://[^\s<>()\[\]\"'`|⟦⟧]+")
_CITED = re.compile(r"[\[【]\^?\s*(\d+(?:\s*,\s*\d+)*)\s*[\]】]")


def _spelled(words: str) -> int:
    total = current = 0
    for word in re.split(r"[\s-]+", words.lower()):
        if word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total, current = total + max(current, 1) * 1000, 0
        else:
            current += _WORD_VALUES.get(word, 0)
    return total + current


def money(text: str) -> list[tuple[str, str, int]]:
    """(as written, currency, amount in cents) for every price-like string."""
    found = []
    for m in _MONEY.finditer(text):
        if m.group("cents"):
            found.append((m.group(0), "USD", int(m.group("cents"))))
            continue
        if m.group("words"):
            currency, amount = _SIGN[m.group("wpost").upper()], float(_spelled(m.group("words")))
        else:
            sign = (m.group("pre") or m.group("post")).strip().upper()
            number = (m.group("a") or m.group("b")).replace(",", "")
            amount = float(number) * (1000 if (m.group("ak") or m.group("bk")) else 1)
            currency = _SIGN.get(sign, sign)
        found.append((m.group(0).strip(), currency, round(amount * 100)))
    return found


def cited_source_text(turn, docs: Path) -> str:
    """The raw text of the files the answer cites (all its sources when it cites none)."""
    numbers = {int(n) for m in _CITED.finditer(turn.answer) for n in m.group(1).split(",")}
    cited = [s for i, s in enumerate(turn.sources, 1) if i in numbers] or turn.sources
    texts = []
    for source in cited:
        path = docs / source["file"]
        raw = path.read_text(errors="replace") if path.suffix in (".md", ".txt", ".html", ".htm", ".mdx") and path.exists() else ""
        texts.append(raw or source["text"])  # a PDF's raw bytes are no text: its passage is
    return "\n".join(texts)


def unsupported_shown(turn, docs: Path) -> tuple[list[str], list[str]]:
    """Prices and URLs in the final answer, outside ⟦unverified⟧ marks, that the cited files don't contain."""
    shown = MARKED.sub("", turn.answer)
    source = cited_source_text(turn, docs)
    known = {(currency, cents) for _, currency, cents in money(source)}
    prices = [written for written, currency, cents in money(shown) if (currency, cents) not in known]
    lowered = source.lower()
    urls = [u for u in (m.group(0).rstrip(".,;:!?") for m in _LINK.finditer(shown)) if u.lower().rstrip("/") not in lowered]
    return prices, urls


# --- a frontier that lies -----------------------------------------------------------------
_PASSAGE_BODY = re.compile(r'<passage id="(\d+)"[^\n]*\n(.*?)\n</passage>', re.DOTALL)
_ROW_PRICE = re.compile(r"^\|\s*\**([A-Z][A-Za-z]+)\**\s*\|\s*(\$\d[\d,]*(?:\.\d+)?)", re.M)
_PLAN_WORD = re.compile(r"\b([A-Z][a-z]+) plan\b")
_MONTHLY = re.compile(r"(\$\d[\d,]*(?:\.\d+)?) per (seat per )?month")
_NUMBER_NAMES = {43: "forty-three", 57: "fifty-seven", 61: "sixty-one", 83: "eighty-three", 38: "thirty-eight"}
LIE_STYLES = ["uncited price", "period swap", "plan swap", "plan is free",
              "spelled-out price", "5$ price", "$.NN price", "shifted date", "invented URL", "foreign currency"]


class Liar:
    """Answers with one true sentence (quoting passage [1]) and three planted lies.

    Every lie is checked against the request's passages so it is really false, and
    recorded as (style, sentence) in `planted`, so the bench can tell whether that sentence
    reached the user intact.
    """

    def __init__(self):
        from fake_anthropic import cite_first_passage

        self.truth = cite_first_passage
        self.turn = 0
        self.planted: list[tuple[str, str]] = []

    def __call__(self, request: dict) -> str:
        prompt = request["messages"][0]["content"]
        passages = {int(n): body for n, body in _PASSAGE_BODY.findall(prompt)}
        everything = "\n".join(passages.values())
        lies = []
        # The lies that need particular passages (a second passage's price, a monthly price,
        # a plan table) come first whenever the passages allow them; the rest rotate.
        simple = LIE_STYLES[4:]
        order = LIE_STYLES[:4] + [simple[(self.turn + i) % len(simple)] for i in range(len(simple))]
        for style in order:
            sentence = self._lie(style, passages, everything)
            if sentence:
                lies.append((style, sentence))
            if len(lies) == 3:
                break
        self.turn += 1
        self.planted += lies
        return " ".join([self.truth(request)] + [sentence for _, sentence in lies])

    def _invented(self, everything: str, amounts=(43, 57, 61, 83, 38)) -> int:
        """An amount no price-like string of the passages has, so the lie is really a lie."""
        stated = {cents for _, _, cents in money(everything)}
        return next((a for a in amounts if a * 100 not in stated), 97)

    def _lie(self, style: str, passages: dict[int, str], everything: str) -> str | None:
        first = passages.get(1, "")
        plans = sorted({p for p in _PLAN_WORD.findall(everything) + [r[0] for r in _ROW_PRICE.findall(everything)]}
                       - {"The", "This", "Each", "Every", "Your", "Free"})
        if style == "uncited price":
            for number, body in sorted(passages.items())[1:]:
                for price in re.findall(r"\$\d[\d,]*(?:\.\d+)?", body):
                    if price not in first:
                        return f"That comes to {price} per seat per month [1]."
            return None
        if style == "spelled-out price":
            amount = self._invented(everything)
            return f"In total it is {_NUMBER_NAMES.get(amount, 'ninety-seven')} dollars a month \u30101\u3011."
        if style == "5$ price":
            return f"Each extra seat is {self._invented(everything, (7, 9, 13, 17))}$ [ 1 ]."
        if style == "$.NN price":
            cents = self._invented(everything, (73, 67, 89))
            return f"Every extra envelope costs $.{cents} [^1]."
        if style == "period swap":
            for number, body in sorted(passages.items()):
                m = _MONTHLY.search(body)
                if m and f"{m.group(1)} per {m.group(2) or ''}year" not in everything:
                    return f"The price is {m.group(1)} per {m.group(2) or ''}year [{number}]."
            return None
        if style == "plan swap":
            for number, body in sorted(passages.items()):
                rows = dict(_ROW_PRICE.findall(body))
                for plan, price in rows.items():
                    for other in rows:
                        lines = [line for line in everything.splitlines() if other in line and price in line]
                        if other != plan and not lines:
                            return f"The {other} plan costs {price} per seat per month [{number}]."
            return None
        if style == "plan is free":
            for plan in plans:
                if not any(plan in line and re.search(r"\bfree\b|\$0\b", line) for line in everything.splitlines()):
                    number = next((n for n, body in sorted(passages.items()) if plan in body), 1)
                    return f"The {plan} plan is free [{number}]."
            return None
        if style == "shifted date":
            m = re.search(r"\b(20\d\d)-(\d\d)-(\d\d)\b", first)
            if m:
                return f"This changed on {m.group(3)}.{m.group(2)}.{int(m.group(1)) + 1} [1]."
            return "This changes on 01.03.2031 [1]." if "2031" not in everything else None
        if style == "invented URL":
            return "The full price list is at https://prices.quillstack.example/2026-offer [1]."
        if style == "foreign currency":
            return f"In Canada the same plan is CAD {self._invented(everything)} [1]."
        return None


def shown_intact(answer: str, sentence: str) -> bool:
    """The sentence appears in the answer with no part of it marked unverified."""
    return sentence in MARKED.sub("\u0000", answer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=sorted(SETS), default="knowledge")
    parser.add_argument("--home", type=Path, help="a data dir that already holds the set's docs (copied, not modified)")
    parser.add_argument("--frontier", choices=["fake", "liar", "none"], default="fake")
    parser.add_argument("--model", type=Path, action="append", default=[],
                        help="a GGUF to run as the local model (repeat for several; default: the configured one)")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--local-max-tokens", type=int, help="default: local.max_tokens as configured (the app's)")
    parser.add_argument("--dump", type=Path, help="write each turn (question, label, answer, actions, check) here as JSON lines")
    args = parser.parse_args()

    questions_path, docs = SETS[args.set]
    questions = [json.loads(line) for line in questions_path.read_text().splitlines() if line.strip()]
    if args.limit:
        questions = questions[: args.limit]
    for model in args.model or [None]:
        print(run(args, questions, docs, model), flush=True)  # each model's table as soon as it is measured


def run(args, questions: list[dict], docs: Path, model: Path | None) -> str:
    from app.core.answer.events import Answered, Drafting, Routed, Token

    home = Path(tempfile.mkdtemp(prefix="frontdesk-eval-"))
    if args.home:
        shutil.copytree(args.home, home, dirs_exist_ok=True)
        (home / "ledger.sqlite3").unlink(missing_ok=True)

    server = liar = None
    environ = {"FRONTDESK_HOME": str(home)}
    flags = {"local.temperature": 0.0}
    if args.local_max_tokens:
        flags["local.max_tokens"] = args.local_max_tokens
    if model:
        flags["local.model"] = str(model)
    if args.frontier in ("fake", "liar"):
        from fake_anthropic import FakeAnthropic, cite_first_passage

        liar = Liar() if args.frontier == "liar" else None
        server = FakeAnthropic(reply=liar or cite_first_passage).start()
        environ["ANTHROPIC_API_KEY"] = "sk-ant-eval-not-a-real-key-000000"
        flags["frontier.base_url"] = server.url
    services = Desk(load_settings(flags=flags, environ=environ))
    if not args.home:
        for _ in services.ingest(docs):
            pass

    baseline = [raw_prompt_eval_s(services.local)]  # the machine's speed now, and again after the run
    rows, lies, drafts = [], [], []
    for number, item in enumerate(questions, 1):
        before = len(liar.planted) if liar else 0
        decision = turn = None
        draft, drafting_locally = [], False  # the local model's draft, kept or withdrawn, for --dump
        for event in services.assistant.ask(item["question"]):
            if isinstance(event, Routed):
                decision = event.decision
            elif isinstance(event, Drafting):
                drafting_locally = event.kind == "local"
            elif isinstance(event, Token) and drafting_locally:
                draft.append(event.text)
            elif isinstance(event, Answered):
                turn = event.turn
        first_draft = "local" if any("local answer" in a or "local model failed" in a for a in turn.actions) else ""
        rows.append((item, turn, first_draft, decision.route if decision else "none"))
        drafts.append("".join(draft))
        lies.append(liar.planted[before:] if liar else [])  # one question at a time: these lies are this turn's
        print(f"{number:>3}/{len(questions)} {turn.route:<8} {turn.outcome:<10} {turn.answered_by:<11} {item['question'][:60]}",
              file=sys.stderr)
    if server:
        server.stop()
    baseline.append(raw_prompt_eval_s(services.local))
    if args.dump:
        with args.dump.open("w") as out:
            for (item, turn, first_draft, route), draft in zip(rows, drafts):
                out.write(json.dumps({"label": item, "route": route, "answered_by": turn.answered_by, "outcome": turn.outcome,
                                      "answer": turn.answer, "local_draft": draft, "first_token_ms": turn.first_token_ms,
                                      "actions": turn.actions, "grounding": turn.grounding,
                                      "sources": [s["file"] for s in turn.sources]}) + "\n")
    return report(args, services.local.model_name, rows, services.ledger.summary(), docs, lies if liar else None,
                  [b for b in baseline if b is not None])


# The baseline for (f): this shared machine's speed varies from day to day (the same code's
# first-token p50 read 2.8 s one day and 4.1 to 4.3 s the next), so the time to first token is also
# given as a ratio to a raw llama.cpp prompt eval of the same model, timed in the same run.
BASELINE_TOKENS = 500
BASELINE_TEXT = ROOT / "knowledge" / "account" / "two-factor-authentication.md"


def raw_prompt_eval_s(local) -> float | None:
    """Median seconds, over 3 tries, for the local model to read BASELINE_TOKENS tokens of the
    sample docs with the worker's thread count, in this process (the worker is idle meanwhile);
    None when there is no local model file."""
    if local.model_path is None:
        return None
    from llama_cpp import Llama

    llama = Llama(model_path=str(local.model_path), n_ctx=2 * BASELINE_TOKENS, n_threads=local.threads,
                  n_threads_batch=local.threads, verbose=False)
    tokens = llama.tokenize(BASELINE_TEXT.read_text(encoding="utf-8").encode())[:BASELINE_TOKENS]
    times = []
    for _ in range(3):
        llama.reset()
        start = time.perf_counter()
        llama.eval(tokens)
        times.append(time.perf_counter() - start)
    llama.close()
    return sorted(times)[1]


def _p50(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    return values[len(values) // 2] if values else None


def mix_savings(rows, local_share: float = 0.8) -> float:
    """Savings % on traffic where `local_share` of questions are local-routed (support) questions.

    Each group's mean spend and mean all-frontier cost per question, weighted by its share;
    a turn that delivered no checked answer claims no saving (its all-frontier cost is its spend).
    """
    def means(group):
        n = max(1, len(group))
        spend = sum(t.cost_usd for t in group) / n
        counted = [t.counterfactual_cost_usd if t.answered_by != "none" and (t.grounding or {}).get("passed") else t.cost_usd
                   for t in group]
        return spend, sum(counted) / n
    local = [t for _, t, _, route in rows if route == "local"]
    other = [t for _, t, _, route in rows if route != "local"]
    (ls, lc), (os_, oc) = means(local), means(other)
    spend = local_share * ls + (1 - local_share) * os_
    counterfactual = local_share * lc + (1 - local_share) * oc
    return 100 * (counterfactual - spend) / counterfactual if counterfactual else 0.0


def report(args, model_name: str, rows, summary, docs: Path, lies: list[list[tuple[str, str]]] | None = None,
           baseline: list[float] = ()) -> str:
    from labels import expected_files, is_right

    out: list[str] = []
    answerable = [(i, t, d) for i, t, d, _ in rows if i.get("answerable") and i.get("route") != "out_of_scope"]
    unanswerable = [(i, t, d) for i, t, d, _ in rows if not i.get("answerable") and i.get("route") != "out_of_scope"]
    out_of_scope = [(i, t, d) for i, t, d, _ in rows if i.get("route") == "out_of_scope"]
    local_drafts = [(i, t) for i, t, d, _ in rows if d == "local"]
    kept_local = [t for _, t in local_drafts if t.answered_by == "local-model"]
    quoted = [t for _, t in local_drafts if t.answered_by == "docs-quote"]
    escalated = [t for _, t in local_drafts if t.answered_by == "frontier" or t.egress_passage_ids]
    declined_unanswerable = [t for _, t, _ in unanswerable if t.outcome in ("handoff", "refused")]
    declined_scope = [t for _, t, _ in out_of_scope if t.outcome == "refused"]
    route_ok = [1 for i, t, _ in answerable if i.get("route") in ("local", "frontier") and i["route"] == _decided_route(t)]
    cited_right = [1 for i, t, _ in answerable if expected_files(i) & {s["file"] for s in t.sources}]
    shown = [unsupported_shown(t, docs) for _, t, _, _ in rows]
    prices = sum(len(p) for p, _ in shown)
    urls = sum(len(u) for _, u in shown)
    outcomes = Counter(t.outcome for _, t, _, _ in rows)
    # The local tier's own measures: questions the desk routed to the local side.
    local_answerable = [(i, t) for i, t, _, route in rows if route == "local" and i.get("answerable")
                        and i.get("route") != "out_of_scope"]
    right_local = [(i, t) for i, t in local_answerable if t.answered_by in ("local-model", "docs-quote")
                   and (t.grounding or {}).get("passed") and is_right(i, t.answer, t.sources)]
    # The model wrote it only when its draft alone is right, not the docs lines added beneath it.
    draft_alone_right = [(t, is_right(i, draft_part(t.answer), t.sources)) for i, t in right_local if t.answered_by == "local-model"]
    right_model = [t for t, alone in draft_alone_right if alone]
    with_lines = [t for t, alone in draft_alone_right if not alone]
    # The docs lines' own gate (the quote's confidence), over the kept drafts of answerable questions.
    kept_answerable = [(i, t) for i, t in local_answerable if t.answered_by == "local-model"]
    lined = [(i, t) for i, t in kept_answerable if draft_part(t.answer) != t.answer]
    lines_right = [t for i, t in lined if is_right(i, t.answer[len(draft_part(t.answer)):], t.sources)]
    unsure = [(i, t) for i, t in kept_answerable if any(a.startswith("no docs lines added: the docs quote") for a in t.actions)]
    unsure_wrong = [t for i, t in unsure if not is_right(i, t.answer, t.sources)]
    local_routed = [t for _, t, _, route in rows if route == "local"]
    local_escalated = [t for t in local_routed if t.answered_by == "frontier" or t.egress_passage_ids]
    ttft = _p50([t.first_token_ms for _, t in local_drafts])

    def share(part, whole) -> str:
        n = len(part) if isinstance(part, list) else part
        return f"{n}/{len(whole)} ({100 * n / max(1, len(whole)):.0f}%)"

    out.append(f"\nModel: {model_name} · set: {args.set} ({len(rows)} questions) · frontier: {args.frontier} · "
               f"local max tokens {args.local_max_tokens or 'as configured'}\n")
    out.append("| measure | result | goal |\n|---|---|---|")
    out.append(f"| (a) local-routed answerable questions answered by the local tier, checked and right | "
               f"**{share(right_local, local_answerable)}** | ≥ 85% |")
    out.append(f"| (b) ...of which the local model wrote | **{share(right_model, right_local)}** | ≥ 50% |")
    out.append(f"| ...right only with the docs lines beneath the draft | {share(with_lines, right_local)} | |")
    out.append(f"| kept drafts (answerable) with docs lines beneath / the lines hold the labelled fact | "
               f"{share(lined, kept_answerable)} / {len(lines_right)} | |")
    out.append(f"| kept drafts (answerable) without lines as the quote was not close enough / of them wrong | "
               f"{len(unsure)} / {len(unsure_wrong)} | |")
    out.append(f"| (c) local-routed questions escalated to the frontier | **{share(local_escalated, local_routed)}** | ≤ 15% |")
    out.append(f"| (d) savings on this set (spend / all-frontier) | **{summary.savings_pct:.1f}%** "
               f"(${summary.spend_usd:.4f} / ${summary.counterfactual_usd:.4f}) | |")
    out.append(f"| (d) savings, traffic 80% local-routed | **{mix_savings(rows):.1f}%** | ≥ 60% |")
    out.append(f"| (e) unsupported prices / URLs shown as fact | **{prices} / {urls}** | 0 / 0 |")
    out.append(f"| (f) local time to first token, p50 | **{ttft / 1000:.1f} s** | |" if ttft is not None else "| (f) local TTFT | n/a | |")
    if baseline and ttft is not None:
        raw = sum(baseline) / len(baseline)
        out.append(f"| ...the same model's raw read of {BASELINE_TOKENS} tokens in this run (before / after the questions): "
                   f"{' / '.join(f'{b:.1f} s' for b in baseline)}; (f) ÷ their mean | **{ttft / 1000 / raw:.2f}** | |")
    out.append(f"| checked answers by tier (local model / docs quote / frontier) | "
               f"{summary.tier('local-model').answers} / {summary.tier('docs-quote').answers} / {summary.tier('frontier').answers} | |")
    out.append(f"| outcomes | {', '.join(f'{k} {v}' for k, v in sorted(outcomes.items()))} | |")
    out.append(f"| routing agrees with the label (answerable questions) | {share(len(route_ok), answerable)} | |")
    out.append(f"| answer cites the labelled file (answerable) | {share(len(cited_right), answerable)} | |")
    out.append(f"| local drafts kept (passed the check, answer the question) | {share(kept_local, local_drafts)} | |")
    out.append(f"| local drafts replaced by a confident docs quote | {share(quoted, local_drafts)} | |")
    out.append(f"| local drafts escalated to the frontier | {share(escalated, local_drafts)} | |")
    out.append(f"| unanswerable questions refused or handed off | {share(declined_unanswerable, unanswerable)} | |")
    out.append(f"| out-of-scope questions declined | {share(declined_scope, out_of_scope)} | |")
    if lies is not None:
        planted = [(t, style, sentence) for (_, t, _, _), told in zip(rows, lies) for style, sentence in told]
        frontier = [t for _, t, _, _ in rows if t.route == "frontier" and t.outcome == "answered"]
        out.append(f"| lying frontier answers shown with marks | {sum(1 for t in frontier if '⟦unverified' in t.answer)}/{len(frontier)} | |")
        missed = Counter(style for t, style, sentence in planted if shown_intact(t.answer, sentence))
        by_style = Counter(style for _, style, _ in planted)
        out.append(f"| planted lie sentences shown intact (no part marked) | **{sum(missed.values())}/{len(planted)}** | 0 |")
        out.append(f"| ...by style (shown/planted) | {', '.join(f'{s} {missed[s]}/{by_style[s]}' for s in LIE_STYLES if by_style[s])} | |")
        # The sentence check alone marks most lies whole; this is the fact check's own share.
        flagged = Counter()
        for t, style, sentence in planted:
            spans = (t.grounding or {}).get("unsupported", [])
            if any(span["kind"] != "sentence" and span["text"] in sentence for span in spans):
                flagged[style] += 1
            else:
                print(f"  not flagged by the fact check ({style}): {sentence!r}; check: {spans}", file=sys.stderr)
        out.append(f"| ...of which the fact check flagged a span (by style) | {', '.join(f'{s} {flagged[s]}/{by_style[s]}' for s in LIE_STYLES if by_style[s])} | |")
    for (item, turn, _, _), (p, u) in zip(rows, shown):
        if p or u:
            print(f"  unsupported shown: {p + u} in answer to {item['question'][:60]!r}", file=sys.stderr)
    for item, turn in local_answerable:
        if (item, turn) not in right_local:
            print(f"  local tier not right ({turn.answered_by}): {item['question'][:60]!r}", file=sys.stderr)
    return "\n".join(out)


def _decided_route(turn) -> str:
    # The router's decision is the first action's target: a local draft means "local".
    return "local" if any("local answer" in a or "local model failed" in a for a in turn.actions) or turn.route == "local" else turn.route


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()

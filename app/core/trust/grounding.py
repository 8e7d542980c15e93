"""Checks an answer against the passages it was generated from.

Each claim sentence is attributed to the passages that support it (`attribution`): the ones
its `[n]` marks cite (`[n]`, `[^n]`, `【n】`), else the ones closest to it in meaning (shared
words without an embedder), so an answer needn't type citations; `with_citations` adds them.
Framing ("Here is how:"), pleasantries, questions and hedges ("the documents do not
specify") are not claims unless they state a fact.

Two checks. The fact check (regex, no model) requires every price, number, percentage,
date, URL, email, endpoint, code identifier (digits in a name like "APP-001" make it a
name, not a quantity) and plan name in a sentence to appear, after normalisation, in that
sentence's own passages (`stated_facts` finds and normalises them), and every citation to
name a passage that was given. Example
values inside fenced code are placeholders; its names, paths and prices are checked.
Prices are held to more than their amount: the period they are per, the plan their
sentence names, and "free" as a $0 price for a plan (see `price_claims`).
The sentence check (needs the embedder) scores each claim sentence by its closeness to a
passage sentence or run of consecutive ones, counting the words it shares with them, and
judges the answer as a whole: the claims' scores averaged by their words must reach a
threshold, and no claim may be about nothing the passages discuss. With no passages, only an
answer that says the docs don't cover the question passes.
Passages may be hostile: only their text counts as evidence, and nothing here follows an
instruction found in them. `mark_unsupported` turns a failed check into text that shows
every unsupported span as unverified, in place.
"""
from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.core.text import CITATION_MARK, EXTRACTIVE_PREFIX, NO_MATCH_ANSWER, below, prose_text, split_sentences, word_count
from app.core.trust.attribution import (MIN_CLAIM_WORDS, SentenceSupport, attribute, citation_numbers, cited_passages,
                                        content_tokens, content_words)
from app.core.trust.price_claims import FREE_CLAIM, NOT_PLANS, PLAN, bound_plans, periods_after, plan_names
from app.core.trust.stated_facts import Evidence, answer_facts, has_word

if TYPE_CHECKING:
    from app.core.docs.embeddings import Embedder
    from app.core.passage import Passage

# Calibrated against people by bench/grounding_human.py (234 IBM MTRAG answers with human
# faithfulness ratings; halves split by conversation: A = ibmcloud + some clapnq, B = govt,
# fiqa + some clapnq):
#   .venv/bin/python bench/grounding_human.py --cache /tmp/mtrag.pkl [--sweep]
# A sentence's score (`attribution`) is its best cosine to a passage sentence or run of up to 3
# (WINDOW), plus COVERAGE_WEIGHT x (share of its content words its passages use - COVERAGE_BASE).
# The answer passes on meaning when its claims' scores, averaged by content words, reach
# ANSWER_SUPPORT_THRESHOLD and no claim is below SENTENCE_FLOOR (`answer_support`); facts stay
# per sentence and absolute. With no passages only a hedge passes.
#                                   balanced  faithful pass  unfaithful pass  references rejected
#   before (every sentence >= 0.50), A  0.72        83%            39%               20%
#   before, B                           0.67        72%            38%               26%
#   before, both                        0.69        78%            39%               23%
#   shipped (--sweep optimum on A), A   0.853       95.7%          25.0%              5.0%
#   shipped, B (held out)               0.759       80.0%          28.2%             13.2%
#   shipped, both                       0.809       88.6%          26.9%              9.0%
# The sweep (NOVELTY_WEIGHT 0-1, SENTENCE_FLOOR none-0.3, threshold 0.30-0.90) picks the best
# balanced accuracy on A with >= 85% of A's faithful answers passing; ties go to no novelty
# weight, then to the stricter floor (0.0-0.2 tie on A). The thresholds saw only A; the other
# changes (answer-level average, the no-passage rule, the fact-check fixes) were designed
# reading rows of both halves, so B is a hold-out for the constants, not for the design.
# Tried and not kept: IDF / word-rarity weights (from the file's passages or the MiniLM
# vocabulary's frequency order), a capitalised-name bonus, a share-of-unused-words penalty
# (NOVELTY_WEIGHT: helped B's balance, not A's, and cost B's faithful pass), and treating generic
# advice ("consult a professional") as no claim: none moved AUC on either half by more than
# +-0.02. B stays harder (its faithful finance answers reword freely): 80% of its faithful
# answers pass. 7 of the 167 faithful answers fail on a figure no passage states (the model's
# own knowledge: 2,341 miles, 2008, February 3, 1984, ...): the hard rule, not a threshold.
SENTENCE_SUPPORT_THRESHOLD = 0.50  # a failed answer's sentences below this are the ones marked unsupported
ANSWER_SUPPORT_THRESHOLD = 0.748  # the answer's support (see `answer_support`) must reach this
NOVELTY_WEIGHT = 0.0  # support lost per share of the answer's content words that no passage uses
SENTENCE_FLOOR = 0.2  # a sentence this far from every passage fails whatever the rest of the answer does

_CODE_FENCE = re.compile(r"^\s*(```|~~~)")
# Example values inside a code block ("--deprecate-at 2023-11-16T08:00") are placeholders,
# not statements; the names, paths and addresses in it must still be real.
_NOT_CHECKED_IN_CODE = {"number", "date", "percent"}
# "Hedges" say what the docs don't cover; they state nothing to check ("the documents do not specify").
_HEDGE = re.compile(
    r"\b(?:i\s+(?:don't|do not|can't|cannot|couldn't)\s+(?:know|say|tell|find|answer)|not sure"
    r"|i\s+(?:don't|do not)\s+have\s+(?:any\s+|specific\s+|enough\s+|more\s+|further\s+)*(?:information|details|knowledge)"
    r"|(?:docs?|documents?|documentation|sources?|passages?|text|texts|context|articles?|pages?|information)(?:\s+provided)?"
    r"\s+(?:don't|do not|doesn't|does not|didn't|did not)\s+(?:\w+ly\s+)?(?:say|mention|cover|specify|state|include|provide"
    r"|contain|discuss|address|give|offer|list|describe|detail|explain|tell)"
    r"|(?:couldn't|could not|can't|cannot)\s+find|no (?:specific |further |more |additional )?information"
    r"|not (?:explicitly |specifically |directly )?(?:mentioned|covered|specified|documented|stated|discussed|provided|included)"
    r"(?=\s*(?:[.,;]|$|\s+(?:in|by)\s+(?:the\s+)?(?:provided\s+|given\s+)?(?:docs?|documents?|documentation|sources?|passages?|text|context))))",
    re.I)
# "While the documents don't say X, they stress Y": a claim follows the hedge.
_CLAIM_AFTER_HEDGE = re.compile(r"(?:while|although|though|even though|whereas)\b", re.I)
_HEDGE_THEN_CLAIM = re.compile(r"[,;]\s*(?:but|however|yet|they|it)\b", re.I)
# Framing that introduces a list or code and states nothing itself ("To reset it, follow these steps:").
_FRAMING = re.compile(
    r"^(?:(?:to|for|if|when)\b[^,:]{0,80},\s*)?(?:(?:please|simply|just)\s+)?(?:here(?:'s|\s+is|\s+are)\b"
    r"|follow\s+(?:these|the(?:se)?\s+\w+|the)\s+(?:steps|instructions)|(?:do|try|consider)\s+the\s+following|as\s+follows"
    r"|below\s+(?:is|are)\b|you\s+(?:can|should|need\s+to|will\s+need\s+to|could|may)\s+(?:do\s+the\s+following"
    r"|follow\s+these\s+(?:steps|instructions)))", re.I)
_FRAMING_TAIL_WORDS = 6  # "Here is how you can do it." frames; "Here is how: open Settings and ..." claims
_PLEASANTRY = re.compile(
    r"^(?:(?:i\s+)?hope\s+(?:this|that|it|the\s+\w+)\s+helps?|let\s+me\s+know|feel\s+free|(?:you're|you\s+are)\s+(?:very\s+|most\s+)?welcome"
    r"|glad\s+(?:i\s+could|to)\s+help|happy\s+to\s+help|thanks?\b|thank\s+you|good\s+luck|stay\s+safe|(?:is\s+there\s+)?anything\s+else"
    r"|(?:i'm\s+|i\s+am\s+)?glad\s+(?:i\s+could|to)\s+help\b[^.!?]{0,20}[.!]?$|(?:sure|of\s+course|certainly|great\s+question)\b[!.,]?$|if\s+you\s+(?:have|need)\s+(?:any\s+)?(?:more|other|further|additional)?\s*"
    r"(?:questions?|help|assistance))", re.I)



@dataclass(frozen=True)
class UnsupportedSpan:
    text: str
    start: int
    end: int
    kind: str  # price number percent date url email endpoint identifier plan citation sentence
    reason: str

    def to_json(self) -> dict:
        return {"text": self.text, "kind": self.kind, "reason": self.reason}


@dataclass(frozen=True)
class GroundingResult:
    passed: bool
    unsupported: list[UnsupportedSpan] = field(default_factory=list)
    supporting: tuple[int, ...] = ()  # 0-based passages the supported claims rest on, best first
    sentences: tuple[SentenceSupport, ...] = ()
    support: float | None = None  # the answer's support by meaning (`answer_support`); None without an embedder or claims

    def to_json(self) -> dict:
        return {"passed": self.passed, "unsupported": [span.to_json() for span in self.unsupported],
                "supporting": list(self.supporting)}


def check_grounding(answer: str, passages: list[Passage], embedder: Embedder | None = None,
                    sentence_threshold: float = SENTENCE_SUPPORT_THRESHOLD, *,
                    answer_threshold: float = ANSWER_SUPPORT_THRESHOLD,
                    sentence_floor: float = SENTENCE_FLOOR) -> GroundingResult:
    """Attribute each claim sentence to the passages that support it, then check its facts
    against those passages; the support check by meaning runs only when an embedder is given.

    A sentence's `[n]` marks are its attribution when it has them; otherwise the passages
    most similar to it (by meaning with an embedder, by shared words without) are.
    Facts are checked sentence by sentence, absolutely. Meaning is judged for the answer as
    a whole (`answer_support` >= answer_threshold), as people judge it: one loosely worded
    sentence among well-supported ones does not sink an answer, but a sentence below
    sentence_floor (about nothing the passages discuss) always fails. When the answer falls
    short, its sentences below sentence_threshold (at least its weakest) are the ones marked.
    With no passages, only a hedge ("I don't have information on that") passes.
    """
    facts = list(answer_facts(answer))
    claims = _claims(answer, facts)
    sentences = attribute(answer, claims, passages, embedder)
    unsupported = _bad_citations(answer, len(passages)) + _check_facts(answer, passages, facts, sentences)
    support = None
    if embedder is not None and not passages:
        for start, end, prose in claims:
            if word_count(prose) >= MIN_CLAIM_WORDS:  # "It costs $49.": too short to judge by meaning; its facts are checked
                unsupported.append(UnsupportedSpan(answer[start:end], start, end, "sentence", "no passage text to support it"))
        if not claims and answer.strip() and not _hedges(answer):
            # Small talk with nothing to ground it: only saying the docs don't cover it is faithful here.
            start = len(answer) - len(answer.lstrip())
            unsupported.append(UnsupportedSpan(answer.strip(), start, start + len(answer.strip()), "sentence",
                                               "no passage to ground it, and it does not say the docs lack the answer"))
    elif embedder is not None and claims:
        support = answer_support([prose for _, _, prose in claims], [s.score for s in sentences], passages)
        pairs = list(zip(claims, sentences))
        # A sentence too short to judge by meaning is judged by its facts when it states one
        # ("2025-03-18.", "It costs $49."): they were checked above, absolutely.
        fact_starts = sorted(start for _, start, _, _, _ in facts)
        judged = ([(claim, s) for claim, s in pairs if word_count(claim[2]) >= MIN_CLAIM_WORDS]
                  or [(claim, s) for claim, s in pairs if not _states_fact(claim[0], claim[1], fact_starts)])
        weak = [(claim, s) for claim, s in judged if s.score < sentence_floor]
        if judged and support < answer_threshold:
            weak += [(claim, s) for claim, s in judged if sentence_floor <= s.score < sentence_threshold] or (
                [] if weak else [min(judged, key=lambda pair: pair[1].score)])
        for (start, end, _), s in weak:
            where = "its cited passage(s)" if s.cited else "the passages"
            why = (f"similarity to {where}, word overlap counted, is {below(s.score, sentence_floor)}" if s.score < sentence_floor else
                   f"similarity to {where}, word overlap counted, is {s.score:.2f}, and the answer's support is {below(support, answer_threshold)}")
            unsupported.append(UnsupportedSpan(answer[start:end], start, end, "sentence", why))
    unsupported.sort(key=lambda span: (span.start, span.end))
    failed = {(s.start, s.end) for s in unsupported if s.kind == "sentence"}
    supporting = _rank_passages(s for s in sentences if (s.start, s.end) not in failed)
    return GroundingResult(not unsupported, unsupported, supporting, tuple(sentences), support)


def answer_support(claims: list[str], scores: list[float], passages: list[Passage]) -> float:
    """The answer's support by meaning: its claim sentences' scores averaged by their weight
    (content words), less NOVELTY_WEIGHT x the share of its content words no passage uses.

    People accept an answer whose sentences reword the passages, and reject one that brings
    in what the passages never discuss (other rivers, other penalties): the average carries the
    first, the unused-word share the second. Both count words, so a long sentence weighs more.
    """
    tokens = [content_tokens(claim) for claim in claims]
    weights = [max(1, len(t)) for t in tokens]
    mean = sum(w * score for w, score in zip(weights, scores)) / sum(weights)
    used = set().union(*(content_words(f"{p.heading}\n{p.text}") for p in passages)) if passages else set()
    words = [word for t in tokens for word in t]
    novel = sum(word not in used for word in words) / len(words) if words else 0.0
    return round(mean - NOVELTY_WEIGHT * novel, 4)


def _hedges(answer: str) -> bool:
    return any(_is_hedge(prose_text(answer[start:end])) for start, end in split_sentences(answer))


def _rank_passages(sentences) -> tuple[int, ...]:
    """Passages by how many claims rest on them, then by their best support."""
    count: dict[int, int] = {}
    best: dict[int, float] = {}
    for sentence in sentences:
        for index in sentence.passages:
            count[index] = count.get(index, 0) + 1
            best[index] = max(best.get(index, 0.0), sentence.score)
    return tuple(sorted(count, key=lambda i: (-count[i], -best[i], i)))


def with_citations(answer: str, result: GroundingResult) -> str:
    """The answer with ` [n]` (1-based) after each attributed claim sentence that cites nothing.

    Sentences the check found unsupported get no mark: a citation would vouch for them.
    """
    failed = [(s.start, s.end) for s in result.unsupported if s.kind == "sentence"]
    out = answer
    for sentence in sorted(result.sentences, key=lambda s: -s.start):  # from the end: offsets stay valid
        if not sentence.passages or sentence.cited or CITATION_MARK.search(answer, sentence.start, sentence.end):
            continue
        if any(start <= sentence.start < end for start, end in failed):
            continue
        mark = " [" + ", ".join(str(i + 1) for i in sorted(sentence.passages)) + "]"
        out = out[:sentence.end] + mark + out[sentence.end:]
    return out


UNVERIFIED_OPEN, UNVERIFIED_CLOSE = "\u27e6unverified: ", "\u27e7"
UNVERIFIED_NOTE = "\u26a0 Not found in the docs: the parts marked \u201cunverified\u201d."


def mark_unsupported(answer: str, check: GroundingResult) -> str:
    """The answer with each unsupported span wrapped in place as ⟦unverified: …⟧.

    An unsupported sentence is marked whole, and the fact spans inside it are not marked
    again (nested marks are unreadable); overlapping spans merge into one mark. A note at
    the end says what the marks mean. No unsupported claim is left reading as fact.
    """
    # The marks are the desk's own signal: brackets of the same kind written by the model
    # could fake or break them, so they become plain brackets. One character for one keeps
    # the spans' offsets valid.
    text = answer.replace("\u27e6", "[").replace("\u27e7", "]")
    ranges = sorted((span.start, span.end) for span in check.unsupported if span.end > span.start)
    merged: list[list[int]] = []
    for start, end in ranges:
        if merged and start < merged[-1][1]:  # a fact inside a marked sentence joins it
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, position = [], 0
    for start, end in merged:
        out += [text[position:start], UNVERIFIED_OPEN, text[start:end], UNVERIFIED_CLOSE]
        position = end
    out.append(text[position:])
    marked = "".join(out)
    return f"{marked}\n\n{UNVERIFIED_NOTE}" if merged else marked


def cited_ids(answer: str, passages: list[Passage]) -> list[str]:
    """Ids of the passages the answer cites, in order of first citation; bad numbers are skipped."""
    ids: list[str] = []
    for match in CITATION_MARK.finditer(answer):
        for number in citation_numbers(match.group(1)):
            if 1 <= number <= len(passages) and passages[number - 1].id not in ids:
                ids.append(passages[number - 1].id)
    return ids


def _bad_citations(answer: str, passage_count: int) -> list[UnsupportedSpan]:
    spans = []
    for match in CITATION_MARK.finditer(answer):
        missing = [n for n in citation_numbers(match.group(1)) if not 1 <= n <= passage_count]
        if missing:
            reason = f"cites passage {', '.join(map(str, missing))} but only {passage_count} passage(s) were given"
            spans.append(UnsupportedSpan(match.group(0), match.start(), match.end(), "citation", reason))
    return spans


def check_facts(answer: str, passages: list[Passage]) -> list[UnsupportedSpan]:
    """Every checkable fact in the answer that the passages it rests on do not state.

    A fact counts as supported only by its sentence's passages: those the sentence cites,
    else those it is attributed to by shared words (`check_grounding` attributes by meaning
    when it has an embedder). Facts outside any claim sentence (code blocks, hedges) lean on
    every passage the answer cites, else on all of them. A price must also keep its period
    ("$19 per month" is not "$19 per year") and, when its sentence names a plan, be stated for
    that plan by one passage sentence or table row.
    """
    facts = list(answer_facts(answer))
    return _check_facts(answer, passages, facts, attribute(answer, _claims(answer, facts), passages, None))


def _check_facts(answer: str, passages: list[Passage], facts: list[tuple], sentences: list[SentenceSupport]) -> list[UnsupportedSpan]:
    plans = plan_names(passages)
    # "the Team plan" in the answer binds too when the passages name Team at all, even in
    # passing ("**Team, monthly:** ..."); a name they never use fails as a plan fact instead.
    every_text = "\n".join(f"{p.heading}\n{p.text}" for p in passages)
    plans |= {m.group("name") for m in PLAN.finditer(answer)
              if m.group("name") not in NOT_PLANS and has_word(m.group("name"), every_text)}
    scopes = _citation_scopes(answer, len(passages), sentences)
    code = _code_spans(answer)
    facts_of: dict[tuple[int, ...], Evidence] = {}

    def evidence(scope: tuple[int, ...]) -> Evidence:
        if scope not in facts_of:
            facts_of[scope] = Evidence([passages[i] for i in scope], plans)
        return facts_of[scope]

    everywhere = tuple(range(len(passages)))

    def where(scope: tuple[int, ...], how: str, kind: str, key) -> str:
        if how != "attributed":
            return _where(scope, how == "cited")
        if not evidence(everywhere).supports(kind, key):
            return "the passages"
        # Stated elsewhere: the sentence's own passage must carry it, or a true figure from
        # one page could dress up a claim about another.
        return "the passage" + ("s " if len(scope) != 1 else " ") + ", ".join(f"[{i + 1}]" for i in scope) + " this sentence rests on"

    # "I don't have information about version 6.16.0": a name a hedge says it can't speak to
    # is not stated as fact. Its quantities, prices, links and addresses are still checked.
    hedges = [(low, high) for low, high in split_sentences(answer) if _is_hedge(prose_text(answer[low:high]))]
    spans = []
    for kind, start, end, text, key in facts:
        if kind in _NOT_CHECKED_IN_CODE and any(low <= start < high for low, high in code):
            continue
        if kind == "identifier" and any(low <= start < high for low, high in hedges):
            continue
        scope, sentence, how = scopes.at(start)
        known = evidence(scope)
        if not known.supports(kind, key) and how == "attributed":
            lender = next((p for p in scopes.near.get(sentence, ()) if evidence((p,)).supports(kind, key)), None)
            if lender is not None:
                scope = tuple(sorted((*scope, lender)))
                known = evidence(scope)
        if not known.supports(kind, key):
            spans.append(UnsupportedSpan(text, start, end, kind, f"{kind} not found in {where(scope, how, kind, key)}"))
        elif kind == "price":
            bound = bound_plans(answer, sentence, start, plans)
            why = known.priced.binding_problem(key, periods_after(answer, end), bound, where(scope, how, kind, key))
            if why:
                spans.append(UnsupportedSpan(text, start, end, kind, why))
    for m in FREE_CLAIM.finditer(answer):
        scope, sentence, how = scopes.at(m.start())
        bound = bound_plans(answer, sentence, m.start(), plans)
        if bound and not evidence(scope).priced.says_free(bound):
            spans.append(UnsupportedSpan(m.group(0), m.start(), m.end(), "price",
                                         f"no line of {_where(scope, how == 'cited') if how != 'attributed' else 'the passage this sentence rests on'}"
                                         f" says the {' or '.join(sorted(bound))} plan is free"))
    return spans


def _where(scope: tuple[int, ...], cites_any: bool) -> str:
    if not cites_any:
        return "the passages"
    if not scope:
        return "the cited passages (none of the citations names a passage that exists)"
    return "the cited passage" + ("s " if len(scope) != 1 else " ") + ", ".join(f"[{i + 1}]" for i in scope)


@dataclass
class _Scopes:
    """Which passages each answer sentence may lean on: its citations, else its attribution."""
    sentences: list[tuple[int, int, tuple[int, ...], str]]  # start, end, scope, how: cited | attributed | all
    default: tuple[int, ...]
    how: str
    near: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)  # attributed sentences' FACT_MARGIN passages

    def at(self, position: int) -> tuple[tuple[int, ...], tuple[int, int] | None, str]:
        for start, end, scope, how in self.sentences:
            if start <= position < end:
                return scope, (start, end), how
        return self.default, None, self.how


def _citation_scopes(answer: str, passage_count: int, attributed: list[SentenceSupport] = ()) -> _Scopes:
    everything = cited_passages(answer, passage_count)
    # A citation to a passage that doesn't exist is reported by _bad_citations; it supports nothing.
    cites_any = bool(everything) or bool(CITATION_MARK.search(answer))
    default = everything if cites_any else tuple(range(passage_count))
    how = "cited" if cites_any else "all"
    by_span = {(s.start, s.end): s for s in attributed}
    sentences = []
    for start, end in split_sentences(answer):
        own = cited_passages(answer[start:end], passage_count)
        support = by_span.get((start, end))
        if own or (CITATION_MARK.search(answer, start, end) and not own):
            sentences.append((start, end, own, "cited"))
        elif support is not None and support.passages:
            sentences.append((start, end, tuple(sorted(support.passages)), "attributed"))
        else:
            sentences.append((start, end, default, how))
    return _Scopes(sentences, default, how, {(s.start, s.end): s.near for s in attributed if s.near})


def _code_spans(answer: str) -> list[tuple[int, int]]:
    """(start, end) of each fenced code block, fences included (cut as split_sentences cuts them)."""
    spans, opened, offset = [], None, 0
    for line in answer.splitlines(keepends=True):
        line_start, offset = offset, offset + len(line)
        if _CODE_FENCE.match(line):
            if opened is None:
                opened = line_start
            else:
                spans.append((opened, offset))
                opened = None
    if opened is not None:
        spans.append((opened, len(answer)))
    return spans


def _claims(answer: str, facts: list[tuple]) -> list[tuple[int, int, str]]:
    """(start, end, prose) for the sentences that assert something."""
    fact_starts = sorted(start for _, start, _, _, _ in facts)
    claims = []
    for start, end in split_sentences(answer):
        prose = prose_text(answer[start:end])
        if _is_claim(prose, _states_fact(start, end, fact_starts)):
            claims.append((start, end, prose))
    return claims


def _states_fact(start: int, end: int, fact_starts: list[int]) -> bool:
    """Does the span start..end hold a fact? `fact_starts`: the facts' starts, sorted."""
    at = bisect_left(fact_starts, start)
    return at < len(fact_starts) and fact_starts[at] < end


def _is_claim(prose: str, has_fact: bool) -> bool:
    if not prose or prose in (EXTRACTIVE_PREFIX, NO_MATCH_ANSWER) or _is_hedge(prose):
        return False
    if has_fact:  # a number, price, URL, endpoint, identifier or plan is always something to check
        return True
    if word_count(prose) < MIN_CLAIM_WORDS or prose.endswith(("?", ":")):  # questions and lead-ins state nothing
        return False
    if _PLEASANTRY.search(prose):
        return False
    framing = _FRAMING.match(prose)
    return not (framing and word_count(prose[framing.end():]) <= _FRAMING_TAIL_WORDS)


def _is_hedge(prose: str) -> bool:
    hedge = _HEDGE.search(prose)
    return bool(hedge) and not _HEDGE_THEN_CLAIM.search(prose[hedge.end():]) and not _CLAIM_AFTER_HEDGE.match(prose)


def claim_sentences(answer: str) -> list[tuple[int, int, str]]:
    """(start, end, prose) for answer sentences that assert something: not a hedge, a framing
    line ("Here is how:"), a pleasantry or a question, unless they state a fact."""
    return _claims(answer, list(answer_facts(answer)))


def check_sentences(answer: str, passages: list[Passage], embedder: Embedder,
                    threshold: float = SENTENCE_SUPPORT_THRESHOLD) -> list[UnsupportedSpan]:
    """The claim sentences no passage supports (the sentence half of `check_grounding`)."""
    return [span for span in check_grounding(answer, passages, embedder, threshold).unsupported if span.kind == "sentence"]

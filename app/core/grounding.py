"""Checks an answer against the passages it was generated from.

Two checks. The fact check (regex, no model) requires every price, number, percentage,
date, URL, email, endpoint, code identifier and plan name in the answer to appear, after
normalisation, in the passages the answer cites for it, and every citation (`[n]`, `[^n]`,
`【n】`) to name a passage that was given. Prices are held to more than their amount: the
period they are per, the plan their sentence names, and "free" as a $0 price for a plan.
The sentence check (optional, needs the embedder) requires each claim sentence to be close
to some passage sentence. Passages may be hostile: only their text counts as evidence, and
nothing here follows an instruction found in them. `mark_unsupported` turns a failed check
into text that shows every unsupported span as unverified, in place.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlsplit

from app.core.extractive import (CITATION_MARK, EXTRACTIVE_PREFIX, NO_MATCH_ANSWER, prose_text, split_sentences, table_cells,
                                 table_rows, word_count)

if TYPE_CHECKING:
    from app.core.embeddings import Embedder
    from app.core.passage import Passage

# Calibrated by bench/calibrate_grounding.py (defaults: seed 7, 160 railway-docs files, 3402
# passages, 300 sentences; 1070 paraphrase positives vs 1382 hard negatives from other files):
#   threshold  precision  recall  false-accept  F1
#     0.70       0.857     0.949     0.122     0.901
#     0.76       0.930     0.905     0.053     0.917   <- best F1, chosen
#     0.77       0.940     0.889     0.044     0.914   (best F1 with false-accept <= 5%)
#     0.80       0.963     0.842     0.025     0.898
# Recall by paraphrase kind at 0.76: words dropped 88.7%, reordered 100%, both 83.7%, merged
# with the next sentence 88.8%. The false-accept rate is an upper bound: the hardest
# "negatives" are the same fact restated on another page. Sentences about something else
# score far lower (hard-negative median 0.50).
SENTENCE_SUPPORT_THRESHOLD = 0.76
MIN_CLAIM_WORDS = 4

_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_AMOUNT = rf"(?:{_NUM}|\.\d+)"  # after a currency sign "$.50" is unambiguous
_MULT = r"(?P<mult>[kK]|M)?(?![A-Za-z0-9])"
_MONTH = (r"(?P<mon>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
          r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_UNIT_WORD = r"[A-Za-z]+"
_PER = rf"\s*(?:/|\bper\b)\s*{_UNIT_WORD}"
_PATH = r"(?<![\w/.:~@$-])/(?:[A-Za-z0-9_{}:.~-]+/?)+"
_METHOD = r"GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS"

_BACKTICK = re.compile(r"`([^`\n]{1,100})`")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_URL = re.compile(r"\bhttps?://[^\s<>()\[\]\"'`|]+|(?<![\w@.-])(?:www\.)?(?:[a-z0-9-]+\.)+"
                  r"(?:com|org|net|io|dev|app|ai|co|example|test|cloud|sh)\b(?:/[^\s<>()\[\]\"'`|]*)?", re.I)
_ENDPOINT = re.compile(rf"(?:\b(?P<method>{_METHOD})[\s`*|]+)?(?P<path>{_PATH})")
_CODES = r"USD|EUR|GBP|CAD|AUD|NZD|CHF|JPY|INR"
_CURRENCY_WORDS = r"(?:US\s+)?dollars?|euros?|pounds?|bucks|cents?"
_NUMBER_WORDS = {word: value for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_NUMBER_WORDS.update({word: 10 * value for value, word in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)})
_SCALE_WORDS = {"hundred": 100, "thousand": 1000, "million": 1000000}
_NUMBER_WORD = "(?:" + "|".join(sorted([*_NUMBER_WORDS, *_SCALE_WORDS], key=len, reverse=True)) + ")(?![a-z])"
_PRICE = [  # in this order: a sign or code before the amount wins over a word after it
    re.compile(rf"(?P<cur>(?<![A-Za-z])(?:US|CA|C|AU|A|NZ)\$|\$|\u20ac|\u00a3|\u00a5|\u20b9)\s?(?P<amount>{_AMOUNT}){_MULT}"),
    re.compile(rf"\b(?P<cur>{_CODES})\s?(?P<amount>{_AMOUNT}){_MULT}"),
    re.compile(rf"(?<![\w.])(?P<amount>{_NUM})(?P<mult>[kK]|M)?\s?"
               rf"(?P<cur>{_CODES}|\u20ac|\u00a3|\$|{_CURRENCY_WORDS})(?![A-Za-z])"),
    # "forty-nine dollars": a model that spells the amount out must not slip past the check.
    re.compile(rf"(?<![\w-])(?P<words>(?:an?\s+)?{_NUMBER_WORD}(?:(?:\s+and\s+|[\s-]+){_NUMBER_WORD})*)"
               rf"\s+(?P<cur>{_CURRENCY_WORDS})(?![A-Za-z])", re.I),
]
# What a price is per: "$19 per seat per month", "$19/mo", "$115.20 billed annually". Only
# these words count, so "$0.50 per extra envelope" states no period and binds to none.
_PERIOD_STEP = re.compile(r"\s*(?:(?:/|\bper\b|\ban?\b|\beach\b|\bevery\b)\s*(?:(?:extra|additional)\s+)?(?P<word>[A-Za-z]+)"
                          r"|,?\s*(?:(?:billed|paid|charged)\s+)?(?P<adverb>monthly|annually|yearly|weekly|daily|hourly|quarterly)\b)", re.I)
_PERIODS = {"hour": ("time", "hour"), "hourly": ("time", "hour"), "hr": ("time", "hour"),
            "day": ("time", "day"), "daily": ("time", "day"), "week": ("time", "week"), "weekly": ("time", "week"),
            "month": ("time", "month"), "mo": ("time", "month"), "monthly": ("time", "month"),
            "quarter": ("time", "quarter"), "quarterly": ("time", "quarter"),
            "year": ("time", "year"), "yr": ("time", "year"), "annum": ("time", "year"), "annually": ("time", "year"),
            "yearly": ("time", "year"), "seat": ("seat", "seat"), "user": ("seat", "seat"),
            "member": ("seat", "seat"), "person": ("seat", "seat"), "licence": ("seat", "seat"), "license": ("seat", "seat")}
# "The Pro plan is free": a $0 price claim about a plan, checked like a price.
# Only a lower-case "free" claims a price: "required for Free, Trial and Hobby plans" names a plan.
_FREE_CLAIM = re.compile(r"\b(?:[Ff]ree\s+of\s+charge|[Aa]t\s+no\s+(?:extra\s+|additional\s+)?(?:charge|cost)|[Nn]o\s+charge"
                         r"|[Ff]or\s+free|[Cc]osts?\s+nothing|(?:[Ii]s|[Aa]re|[Bb]e|[Ss]tays?|[Rr]emains?|[Bb]ecomes?|[Nn]ow)"
                         r"\s+(?:(?:completely|totally|entirely|always|still|now)\s+)?free(?:\s+of\s+charge)?)\b(?!\s+(?:trials?|seats?|up|plan|tier)\b)")
# A passage line that says something is free; lower-case "free" only, so the Free plan's
# name doesn't make every line about it a free-of-charge claim.
_FREE_WORD = re.compile(r"(?<![\w-])free(?![\w-])(?!\s+(?:plan|tier)\b)|(?i:free of charge|no charge|at no (?:extra |additional )?cost|costs? nothing)")
# Where an answer sentence changes subject, so "Team costs $12 and Business $24" binds each
# price to its own plan.
_CLAUSE_BREAK = re.compile(r"[,;:()\u2014\u2013]|\s-\s|\b(?:and|or|but|while|whereas|versus|vs|compared|then)\b")
_RESPECTIVELY = re.compile(r"\brespectively\b", re.I)
_MD_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$", re.M)
_PLAN_COLUMN = re.compile(r"\b(?:plan|tier|edition|package)s?\b", re.I)
_PERCENT = re.compile(rf"(?<![\w.])(?P<amount>{_NUM})\s?(?:%|percent\b|per\s?cent\b)")
_DATES = [re.compile(pattern) for pattern in (  # in this order, so the longer forms win
    r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b",
    rf"\b{_MONTH}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{{4}}))?\b",
    rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+(?P<y>\d{{4}}))?\b",
    rf"\b{_MONTH}\s+(?P<y>\d{{4}})\b",
    r"\b(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})\b",
    # d.m.y, d/m/y, d-m-y or the US m/d/y: both readings are candidates. Before this form was
    # known, "01.03.2026" read as the number 1.03 and matched "01.03.2025".
    r"\b(?P<a>\d{1,2})([./-])(?P<b>\d{1,2})\2(?P<y>\d{4}|\d{2})\b",
)]
_UNIT_NUMBER = re.compile(rf"(?<![\w.$\u20ac\u00a3])(?P<amount>{_NUM})(?P<mult>[kK]|M)?"
                          rf"(?P<unit>(?:{_PER})+|[ \t-]?{_UNIT_WORD}(?:{_PER})*)")
_BARE_NUMBER = re.compile(rf"(?<![\w.])(?P<amount>{_NUM})(?:st|nd|rd|th)?(?![\d])")
_HEADER = re.compile(r"(?<![\w-])X-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![\w-])"
                     r"|(?<![\w-])[A-Z][a-z]+(?:-[A-Z][a-z]+)+(?=:|\s+header)")
_SNAKE = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+(?![\w-])")
_CAMEL = re.compile(r"(?<![\w-])[a-z][a-z0-9]*(?:[A-Z][a-z0-9]+)+(?![\w-])")
_PLAN = re.compile(r"(?<![\w-])\**(?P<name>[A-Z][A-Za-z0-9+]*)\**\s+(?i:plan|tier)s?\b")
_HEDGE = re.compile(
    r"\b(?:i\s+(?:don't|do not|can't|cannot|couldn't)\s+(?:know|say|tell|find|answer)|not sure"
    r"|(?:docs?|documentation|sources?|passages?)\s+(?:don't|do not|doesn't|does not)\s+(?:say|mention|cover|specify|state|include)"
    r"|(?:couldn't|could not|can't|cannot)\s+find|no information|not (?:mentioned|covered|specified|documented))\b", re.I)

_NOT_UNITS = set("a an the and or to of in on at for by with from is are was were be been will can may if as than then "
                 "so but it its this that these those you your we our they their i more less plus per via into onto".split())
_NOT_PLANS = set("The This That These Those Each Every Any All Your Our My A An Which What Whichever No One Another "
                 "Other Same Current New Higher Lower Pricing Price Billing Payment Upgrade Downgrade "
                 "Paid Annual Monthly Yearly Both Either Trial Selected Previous Next Old".split())
_UNIT_SYNONYMS = {"gigabyte": "gb", "megabyte": "mb", "terabyte": "tb", "kilobyte": "kb", "min": "minute",
                  "sec": "second", "hr": "hour", "mo": "month", "yr": "year", "req": "request", "msec": "ms"}
_CURRENCIES = {"$": "USD", "us$": "USD", "c$": "CAD", "ca$": "CAD", "a$": "AUD", "au$": "AUD", "nz$": "NZD",
               "\u20ac": "EUR", "\u00a3": "GBP", "\u00a5": "JPY", "\u20b9": "INR",
               "dollar": "USD", "us dollar": "USD", "buck": "USD", "cent": "USD", "euro": "EUR", "pound": "GBP"}
_MONTHS = {name: i for i, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}


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

    def to_json(self) -> dict:
        return {"passed": self.passed, "unsupported": [span.to_json() for span in self.unsupported]}


def check_grounding(answer: str, passages: list[Passage], embedder: Embedder | None = None,
                    sentence_threshold: float = SENTENCE_SUPPORT_THRESHOLD) -> GroundingResult:
    """Fact and citation check always; sentence-support check only when an embedder is given."""
    unsupported = _bad_citations(answer, len(passages)) + check_facts(answer, passages)
    if embedder is not None:
        unsupported += check_sentences(answer, passages, embedder, sentence_threshold)
    unsupported.sort(key=lambda span: (span.start, span.end))
    return GroundingResult(passed=not unsupported, unsupported=unsupported)


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
        for number in _citation_numbers(match.group(1)):
            if 1 <= number <= len(passages) and passages[number - 1].id not in ids:
                ids.append(passages[number - 1].id)
    return ids


def _citation_numbers(inner: str) -> list[int]:
    numbers: list[int] = []
    for part in inner.split(","):
        bounds = [int(n) for n in re.split(r"[\u2013-]", part)]
        low, high = bounds[0], bounds[-1]
        # A range like [1-3] cites each number; a huge range is a typo, so only its ends count.
        numbers += list(range(low, high + 1)) if 0 <= high - low <= 20 else [low, high]
    return numbers


def _bad_citations(answer: str, passage_count: int) -> list[UnsupportedSpan]:
    spans = []
    for match in CITATION_MARK.finditer(answer):
        missing = [n for n in _citation_numbers(match.group(1)) if not 1 <= n <= passage_count]
        if missing:
            reason = f"cites passage {', '.join(map(str, missing))} but only {passage_count} passage(s) were given"
            spans.append(UnsupportedSpan(match.group(0), match.start(), match.end(), "citation", reason))
    return spans


def check_facts(answer: str, passages: list[Passage]) -> list[UnsupportedSpan]:
    """Every checkable fact in the answer that the passages it cites do not state.

    A fact counts as supported only by the passages cited for it: those its own sentence
    cites, else every passage the answer cites, else (an answer citing nothing) all of
    them; the pipeline rejects uncited local answers separately. A price must also keep
    its period ("$19 per month" is not "$19 per year") and, when its sentence names a
    plan, be stated for that plan by one passage sentence or table row.
    """
    plans = plan_names(passages)
    # "the Team plan" in the answer binds too when the passages name Team at all, even in
    # passing ("**Team, monthly:** ..."); a name they never use fails as a plan fact instead.
    every_text = "\n".join(f"{p.heading}\n{p.text}" for p in passages)
    plans |= {m.group("name") for m in _PLAN.finditer(answer)
              if m.group("name") not in _NOT_PLANS and _has_word(m.group("name"), every_text)}
    scopes = _citation_scopes(answer, len(passages))
    facts_of: dict[tuple[int, ...], _Evidence] = {}

    def evidence(scope: tuple[int, ...]) -> _Evidence:
        if scope not in facts_of:
            facts_of[scope] = _Evidence([passages[i] for i in scope], plans)
        return facts_of[scope]

    spans = []
    for kind, start, end, text, key in _answer_facts(answer):
        scope, sentence = scopes.at(start)
        where = _where(scope, scopes.cites_any)
        known = evidence(scope)
        if not known.supports(kind, key):
            spans.append(UnsupportedSpan(text, start, end, kind, f"{kind} not found in {where}"))
        elif kind == "price":
            bound = _bound_plans(answer, sentence, start, plans)
            why = known.price_binding_problem(key, _periods_after(answer, end), bound, where)
            if why:
                spans.append(UnsupportedSpan(text, start, end, kind, why))
    for m in _FREE_CLAIM.finditer(answer):
        scope, sentence = scopes.at(m.start())
        bound = _bound_plans(answer, sentence, m.start(), plans)
        if bound and not evidence(scope).says_free(bound):
            spans.append(UnsupportedSpan(m.group(0), m.start(), m.end(), "price",
                                         f"no line of {_where(scope, scopes.cites_any)} says the {' or '.join(sorted(bound))} plan is free"))
    return spans


def _where(scope: tuple[int, ...], cites_any: bool) -> str:
    if not cites_any:
        return "the passages"
    if not scope:
        return "the cited passages (none of the citations names a passage that exists)"
    return "the cited passage" + ("s " if len(scope) != 1 else " ") + ", ".join(f"[{i + 1}]" for i in scope)


@dataclass
class _Scopes:
    """Which passages each answer sentence may lean on, by its citations."""
    sentences: list[tuple[int, int, tuple[int, ...]]]
    default: tuple[int, ...]
    cites_any: bool

    def at(self, position: int) -> tuple[tuple[int, ...], tuple[int, int] | None]:
        for start, end, scope in self.sentences:
            if start <= position < end:
                return scope, (start, end)
        return self.default, None


def _citation_scopes(answer: str, passage_count: int) -> _Scopes:
    def cited(text: str) -> list[int]:
        return sorted({n - 1 for m in CITATION_MARK.finditer(text) for n in _citation_numbers(m.group(1)) if 1 <= n <= passage_count})

    everything = tuple(cited(answer))
    # A citation to a passage that doesn't exist is reported by _bad_citations; it supports nothing.
    cites_any = bool(everything) or bool(CITATION_MARK.search(answer))
    default = everything if cites_any else tuple(range(passage_count))
    sentences = []
    for start, end in split_sentences(answer):
        own = tuple(cited(answer[start:end]))
        sentences.append((start, end, own or default))
    return _Scopes(sentences, default, cites_any)


def plan_names(passages: list[Passage]) -> set[str]:
    """Plan names the passages use: "X plan"/"X tier", and the first column of a plan table."""
    names = set()
    for passage in passages:
        for text in (passage.heading, passage.text):
            names |= {m.group("name") for m in _PLAN.finditer(text) if m.group("name") not in _NOT_PLANS}
        for start, header in table_rows(passage.text).items():
            if not header or not _PLAN_COLUMN.search(header[0]):
                continue
            end = passage.text.find("\n", start)
            first = table_cells(passage.text[start:end if end >= 0 else None])[0].strip(" *_`")
            if re.fullmatch(r"[A-Z][A-Za-z0-9+]{1,20}", first) and first not in _NOT_PLANS:
                names.add(first)
    return names


def _plan_mentions(text: str, plans: set[str], offset: int = 0) -> list[tuple[int, str]]:
    """(position, plan) for each plan named in text: "Team", or "team plan" in lower case."""
    if not plans:
        return []
    found = []
    for m in _plan_pattern(tuple(sorted(plans, key=lambda name: (-len(name), name)))).finditer(text):
        name = m.group("name") or next(p for p in plans if p.lower() == m.group("lower").lower())
        found.append((offset + m.start(), name))
    return found


@functools.lru_cache(maxsize=64)
def _plan_pattern(plans: tuple[str, ...]) -> re.Pattern:
    names = "|".join(re.escape(name) for name in plans)
    return re.compile(rf"(?<![\w-])(?:(?P<name>{names})|(?P<lower>(?i:{names}))\s+(?i:plan|tier))(?![\w-])")


def _bound_plans(answer: str, sentence: tuple[int, int] | None, position: int, plans: set[str]) -> frozenset[str]:
    """The plans a price (or a "free") at `position` is said to belong to.

    The plans named in its own clause; failing that, those of the whole sentence.
    "Team costs $12 and Business $24" binds $12 to Team and $24 to Business; "Team and
    Business cost $12 and $24 respectively" binds both prices to both plans.
    """
    if sentence is None:
        return frozenset()
    start, end = sentence
    text = answer[start:end]
    mentions = _plan_mentions(text, plans, start)
    if not mentions:
        return frozenset()
    if not _RESPECTIVELY.search(text):
        breaks = [start + m.start() for m in _CLAUSE_BREAK.finditer(text)]
        low = max((b for b in breaks if b <= position), default=start)
        high = min((b for b in breaks if b > position), default=end)
        own = frozenset(name for at, name in mentions if low <= at < high)
        if own:
            return own
    return frozenset(name for _, name in mentions)


def _periods_after(text: str, end: int) -> frozenset[tuple[str, str]]:
    """("time", "month"), ("seat", "seat")... for the period words right after a price."""
    periods = set()
    position = end
    while m := _PERIOD_STEP.match(text, position):
        word = _singular(m.group("word") or m.group("adverb"))
        period = _PERIODS.get(word) or _PERIODS.get(word.lower())
        if period is None:
            break
        periods.add(period)
        position = m.end()
    return frozenset(periods)


def _periods_agree(said: frozenset, stated: frozenset) -> bool:
    """Each kind of period both sides state must overlap: per month vs per year fails, per seat vs nothing passes."""
    for dimension in ("time", "seat"):
        ours = {value for kind, value in said if kind == dimension}
        theirs = {value for kind, value in stated if kind == dimension}
        if ours and theirs and not ours & theirs:
            return False
    return True


@dataclass(frozen=True)
class _PriceStated:
    key: tuple[str, str]
    periods: frozenset
    plans: frozenset  # the plans its passage sentence or table row is about; empty: no plan in view


def _passage_units(passage: Passage, plans: set[str]) -> list[tuple[int, int, frozenset]]:
    """(start, end, plans it is about) for each sentence or table row of the passage.

    A sentence naming no plan is about the plans of the line it continues ("**Team,
    monthly:** you add 3 seats... You pay $12.00 now"), else of its section heading.
    """
    text = passage.text
    headings = [(m.start(), m.group(1)) for m in _MD_HEADING.finditer(text)]
    outer = frozenset(name for _, name in _plan_mentions(passage.heading, plans))
    units = []
    for start, end in split_sentences(text):
        about = frozenset(name for _, name in _plan_mentions(text[start:end], plans))
        if not about:
            line_start = text.rfind("\n", 0, start) + 1
            about = frozenset(name for _, name in _plan_mentions(text[line_start:start], plans))
        if not about:
            above = [title for at, title in headings if at < start]
            about = frozenset(name for _, name in _plan_mentions(above[-1], plans)) if above else frozenset()
            about = about or outer
        units.append((start, end, about))
    return units


def _answer_facts(answer: str) -> Iterator[tuple[str, int, int, str, object]]:
    """(kind, start, end, text, key) for each fact; each character belongs to one fact at most."""
    masked = [answer]

    def take(pattern: re.Pattern) -> list[re.Match]:
        matches = list(pattern.finditer(masked[0]))
        text = masked[0]
        for m in matches:  # blank what was taken so later, looser patterns can't reuse it
            text = text[:m.start()] + " " * (m.end() - m.start()) + text[m.end():]
        masked[0] = text
        return matches

    def fact(kind: str, m: re.Match, key: object, group: int | str = 0):
        start, end = m.span(group)
        return kind, start, end, answer[start:end], key

    take(CITATION_MARK)  # markers are checked separately and are not facts
    for m in take(_BACKTICK):
        yield fact("identifier", m, ("code", m.group(1).strip()))
    for m in take(_EMAIL):
        yield fact("email", m, m.group(0).lower().rstrip("."))
    for m in take(_URL):
        url = _strip_trailing(m.group(0))
        yield "url", m.start(), m.start() + len(url), url, _url_key(url)
    for m in take(_ENDPOINT):
        path = _strip_trailing(m.group("path"))
        if m.group("method") or path.strip("/").count("/") >= 1:  # "/month" alone is a unit, not an endpoint
            yield "endpoint", m.start(), m.start("path") + len(path), answer[m.start():m.start("path") + len(path)], (m.group("method"), _path_key(path))
    for pattern in _PRICE:
        for m in take(pattern):
            yield fact("price", m, _price_key(m))
    for m in take(_PERCENT):
        yield fact("percent", m, _number(m.group("amount")))
    for pattern in _DATES:
        for m in take(pattern):
            yield fact("date", m, _date_keys(m))
    for m in take(_UNIT_NUMBER):
        unit = _unit_key(m.group("unit"))
        if unit is not None:
            yield "number", m.start(), m.end(), m.group(0).strip(), (_number(m.group("amount"), m.group("mult")), unit)
        elif sum(ch.isdigit() for ch in m.group("amount")) >= 2:
            yield fact("number", m, _number(m.group("amount"), m.group("mult")), "amount")
    for m in take(_BARE_NUMBER):
        if sum(ch.isdigit() for ch in m.group("amount")) >= 2:
            yield fact("number", m, _number(m.group("amount")), "amount")
    for m in take(_HEADER):
        yield fact("identifier", m, ("header", m.group(0).lower()))
    for pattern in (_SNAKE, _CAMEL):
        for m in take(pattern):
            yield fact("identifier", m, ("word", m.group(0)))
    for m in take(_PLAN):
        if m.group("name") not in _NOT_PLANS:
            yield fact("plan", m, m.group("name"))


class _Evidence:
    """Everything the passages state, indexed in the same normal forms as the answer's facts."""

    def __init__(self, passages: list[Passage], plans: set[str] = frozenset()):
        text = "\n\n".join(f"{p.heading}\n{p.text}" for p in passages)
        self.text = text
        self.stated_prices: list[_PriceStated] = []
        self.free_for: list[frozenset] = []  # per passage line that says something is free: the plans it is about
        for passage in passages:
            units = _passage_units(passage, plans)
            outside = frozenset(name for _, name in _plan_mentions(passage.heading, plans))  # code, headings
            for pattern in _PRICE:
                for m in pattern.finditer(passage.text):
                    key = _price_key(m)
                    about = next((about for start, end, about in units if start <= m.start() < end), outside)
                    self.stated_prices.append(_PriceStated(key, _periods_after(passage.text, m.end()), about))
                    if key[1] == "0":
                        self.free_for.append(about)
            self.free_for += [about for start, end, about in units if _FREE_WORD.search(passage.text, start, end)]
        self.lower = text.lower()
        self.flat = " ".join(text.split())
        self.emails = {m.group(0).lower().rstrip(".") for m in _EMAIL.finditer(text)}
        urls = [_strip_trailing(m.group(0)) for m in _URL.finditer(text)]
        self.urls = {_url_key(u) for u in urls} | {_url_key(u, scheme=False) for u in urls}
        self.paths = {_path_key(urlsplit(u if "://" in u else "//" + u).path) for u in urls}
        self.endpoints = set()
        for m in _ENDPOINT.finditer(text):
            path = _path_key(_strip_trailing(m.group("path")))
            self.paths.add(path)
            self.endpoints.add((m.group("method"), path))
        self.prices = {_price_key(m) for pattern in _PRICE for m in pattern.finditer(text)}
        self.percents = {_number(m.group("amount")) for m in _PERCENT.finditer(text)}
        self.numbers = {_number(m.group("amount")) for m in _BARE_NUMBER.finditer(text)}
        self.units: dict[str, set[tuple]] = {}
        for m in _UNIT_NUMBER.finditer(text):
            number, unit = _number(m.group("amount"), m.group("mult")), _unit_key(m.group("unit"))
            self.numbers.add(number)
            self.units.setdefault(number, set()).add(unit or ())
        self.dates = {key for pattern in _DATES for m in pattern.finditer(text) for key in _date_keys(m)}

    def supports(self, kind: str, key) -> bool:
        if kind == "number" and isinstance(key, tuple):  # "100 requests" is supported by "100 requests per minute"
            number, unit = key
            return any(known[:len(unit)] == unit for known in self.units.get(number, ()))
        if kind == "date":
            return any(all(a is None or a == b for a, b in zip(want, have)) for want in key for have in self.dates)
        if kind == "endpoint":
            return key in self.endpoints if key[0] else key[1] in self.paths
        if kind == "url":
            return key in self.urls or ("://" not in key and _url_key(key, scheme=False) in self.urls)
        if kind == "plan":  # named as a word, or "free plan" written in lower case
            return _has_word(key, self.text) or bool(re.search(rf"(?<![\w-]){re.escape(key.lower())}\**\s+(?:plan|tier)", self.lower))
        if kind == "identifier":
            flavour, value = key
            if flavour == "code":
                return " ".join(value.split()) in self.flat
            return _has_word(value, self.lower if flavour == "header" else self.text)  # headers ignore case
        return key in {"price": self.prices, "percent": self.percents, "number": self.numbers, "email": self.emails}[kind]

    def price_binding_problem(self, key: tuple[str, str], periods: frozenset, plans: frozenset, where: str) -> str | None:
        """Why a price the passages do state is still not supported as said, or None."""
        stated = [p for p in self.stated_prices if p.key == key]
        timed = [p for p in stated if _periods_agree(periods, p.periods)]
        if stated and not timed:
            said = sorted({value for p in stated for _, value in p.periods})
            return f"price stated per {'/'.join(said)} in {where}, not per {'/'.join(sorted(v for _, v in periods))}"
        # A price stated with no plan in view applies to whichever plan the answer names;
        # one stated for another plan does not.
        if plans and timed and not any(not p.plans or p.plans & plans for p in timed):
            return f"price not stated for the {' or '.join(sorted(plans))} plan in {where}"
        return None

    def says_free(self, plans: frozenset) -> bool:
        """Some passage line about one of these plans says it is free or $0."""
        return any(about & plans for about in self.free_for)


def _has_word(word: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def _strip_trailing(token: str) -> str:
    return token.rstrip(".,;:!?'\")")


def _url_key(url: str, scheme: bool = True) -> str:
    url = _strip_trailing(url).lower().rstrip("/")
    return url if scheme else re.sub(r"^(?:https?://)?(?:www\.)?", "", url)


def _path_key(path: str) -> str:
    # Parameter names are the docs' choice: /documents/{id} and /documents/{document_id} are one endpoint.
    path = re.sub(r"\{[^}/]*\}|(?<=/):[A-Za-z_]\w*", "{}", path.lower())
    return path.rstrip("/") or "/"


def _number(amount: str, mult: str | None = None) -> str:
    try:
        value = Decimal(amount.replace(",", "")) * {"k": 1000, "K": 1000, "M": 1000000}.get(mult or "", 1)
    except InvalidOperation:
        return amount
    return format(value.normalize(), "f")  # "49.00" -> "49", "5,000" -> "5000"


def _price_key(m: re.Match) -> tuple[str, str]:
    """("USD", "49") for "$49", "49 USD", "$49.00", "forty-nine dollars"; cents count as dollars."""
    written = " ".join(m.group("cur").lower().split())
    currency = _CURRENCIES.get(written) or _CURRENCIES.get(written.rstrip("s")) or written.upper()
    groups = m.groupdict()
    amount = str(_words_number(groups["words"])) if groups.get("words") else _number(groups["amount"], groups.get("mult"))
    if written.startswith("cent"):
        amount = _number(str(Decimal(amount) / 100))
    return currency, amount


def _words_number(words: str) -> int:
    """"forty-nine" -> 49, "a hundred and five" -> 105, "two thousand" -> 2000."""
    total = current = 0
    for word in re.split(r"[\s-]+", words.lower()):
        if word in _NUMBER_WORDS:
            current += _NUMBER_WORDS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALE_WORDS:
            total, current = total + max(current, 1) * _SCALE_WORDS[word], 0
    return total + current


def _date_keys(m: re.Match) -> list[tuple]:
    """(year, month, day) candidates, None for the parts not stated."""
    groups = m.groupdict()
    year = groups.get("y")
    year = None if year is None else int(year) + (2000 if len(year) == 2 else 0)
    if "a" in groups:
        a, b = int(groups["a"]), int(groups["b"])
        return [(year, a, b), (year, b, a)]
    month = int(groups["m"]) if groups.get("m") else _MONTHS[groups["mon"][:3].lower()]
    day = int(groups["d"]) if groups.get("d") else None
    return [(year, month, day)]


def _unit_key(unit: str) -> tuple[str, ...] | None:
    """("request", "/minute") for "requests per minute"; None when the word after the number isn't a unit."""
    parts = re.findall(r"\s*(/|\bper\b)?\s*([A-Za-z]+)", unit)
    first = parts[0][1] if parts and not parts[0][0] else ""
    # "in 2025 you", "by 2025 Team plans": a common word or a Capitalised name is no unit.
    if not parts or first.lower() in _NOT_UNITS or (first.istitle() and len(first) > 1):
        return None
    return tuple(("/" if slash else "") + _singular(word) for slash, word in parts)


def _singular(word: str) -> str:
    word = word.lower()
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith("ss") and len(word) >= 3:
        word = word[:-1]
    return _UNIT_SYNONYMS.get(word, word)


def claim_sentences(answer: str) -> list[tuple[int, int, str]]:
    """(start, end, prose) for answer sentences that assert something: not short, not a hedge."""
    claims = []
    for start, end in split_sentences(answer):
        prose = prose_text(answer[start:end])
        if word_count(prose) >= MIN_CLAIM_WORDS and not _HEDGE.search(prose) and prose not in (EXTRACTIVE_PREFIX, NO_MATCH_ANSWER):
            claims.append((start, end, prose))
    return claims


def evidence_sentences(passages: list[Passage]) -> list[str]:
    """The passage sentences an answer sentence may lean on (the calibration scores these too)."""
    sentences = (prose_text(p.text[s:e]) for p in passages for s, e in split_sentences(p.text))
    return [s for s in dict.fromkeys(sentences) if word_count(s) >= 3]


def check_sentences(answer: str, passages: list[Passage], embedder: Embedder,
                    threshold: float = SENTENCE_SUPPORT_THRESHOLD) -> list[UnsupportedSpan]:
    claims = claim_sentences(answer)
    evidence = evidence_sentences(passages)
    if not claims:
        return []
    if not evidence:
        return [UnsupportedSpan(answer[s:e], s, e, "sentence", "no passage text to support it") for s, e, _ in claims]
    vectors = embedder.embed([prose for _, _, prose in claims] + evidence)  # one batch: one forward pass
    best = (vectors[:len(claims)] @ vectors[len(claims):].T).max(axis=1)
    return [UnsupportedSpan(answer[s:e], s, e, "sentence",
                            f"closest passage sentence has similarity {score:.2f} < {threshold:.2f}")
            for (s, e, _), score in zip(claims, best.tolist()) if score < threshold]

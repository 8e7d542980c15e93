"""Prices in text: how they are written, what they are per, and which plan they belong to.

The grounding check reads an answer's prices with these patterns and asks `PriceEvidence`
whether the cited passages state each one as said: the same amount in the same currency
("$49" = "49 USD" = "$49.00" = "forty-nine dollars"), for a compatible period ("per month"
is not "per year"), and for the plan the answer's sentence names ("Pro … $49" is wrong when
$49 is the Team price). "The X plan is free" is a $0 price claim about X.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from app.core.text import split_sentences, table_cells, table_rows

if TYPE_CHECKING:
    from app.core.passage import Passage

NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_AMOUNT = rf"(?:{NUM}|\.\d+)"  # after a currency sign "$.50" is unambiguous
_MULT = r"(?P<mult>[kK]|M)?(?![A-Za-z0-9])"
_CODES = r"USD|EUR|GBP|CAD|AUD|NZD|CHF|JPY|INR"
_CURRENCY_WORDS = r"(?:US\s+)?dollars?|euros?|pounds?|bucks|cents?"
_NUMBER_WORDS = {word: value for value, word in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_NUMBER_WORDS.update({word: 10 * value for value, word in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), 2)})
_SCALE_WORDS = {"hundred": 100, "thousand": 1000, "million": 1000000}
_NUMBER_WORD = "(?:" + "|".join(sorted([*_NUMBER_WORDS, *_SCALE_WORDS], key=len, reverse=True)) + ")(?![a-z])"
PRICE_PATTERNS = [  # in this order: a sign or code before the amount wins over a word after it
    re.compile(rf"(?P<cur>(?<![A-Za-z])(?:US|CA|C|AU|A|NZ)\$|\$|\u20ac|\u00a3|\u00a5|\u20b9)\s?(?P<amount>{_AMOUNT}){_MULT}"),
    re.compile(rf"\b(?P<cur>{_CODES})\s?(?P<amount>{_AMOUNT}){_MULT}"),
    re.compile(rf"(?<![\w.])(?P<amount>{NUM})(?P<mult>[kK]|M)?\s?"
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
FREE_CLAIM = re.compile(r"\b(?:[Ff]ree\s+of\s+charge|[Aa]t\s+no\s+(?:extra\s+|additional\s+)?(?:charge|cost)|[Nn]o\s+charge"
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
PLAN = re.compile(r"(?<![\w-])\**(?P<name>[A-Z][A-Za-z0-9+]*)\**\s+(?i:plan|tier)s?\b")
NOT_PLANS = set("The This That These Those Each Every Any All Your Our My A An Which What Whichever No One Another "
                 "Other Same Current New Higher Lower Pricing Price Billing Payment Upgrade Downgrade "
                 "Paid Annual Monthly Yearly Both Either Trial Selected Previous Next Old".split())
_UNIT_SYNONYMS = {"gigabyte": "gb", "megabyte": "mb", "terabyte": "tb", "kilobyte": "kb", "min": "minute",
                  "sec": "second", "hr": "hour", "mo": "month", "yr": "year", "req": "request", "msec": "ms"}
_CURRENCIES = {"$": "USD", "us$": "USD", "c$": "CAD", "ca$": "CAD", "a$": "AUD", "au$": "AUD", "nz$": "NZD",
               "\u20ac": "EUR", "\u00a3": "GBP", "\u00a5": "JPY", "\u20b9": "INR",
               "dollar": "USD", "us dollar": "USD", "buck": "USD", "cent": "USD", "euro": "EUR", "pound": "GBP"}


def plan_names(passages: list[Passage]) -> set[str]:
    """Plan names the passages use: "X plan"/"X tier", and the first column of a plan table."""
    names = set()
    for passage in passages:
        for text in (passage.heading, passage.text):
            names |= {m.group("name") for m in PLAN.finditer(text) if m.group("name") not in NOT_PLANS}
        for start, header in table_rows(passage.text).items():
            if not header or not _PLAN_COLUMN.search(header[0]):
                continue
            end = passage.text.find("\n", start)
            first = table_cells(passage.text[start:end if end >= 0 else None])[0].strip(" *_`")
            if re.fullmatch(r"[A-Z][A-Za-z0-9+]{1,20}", first) and first not in NOT_PLANS:
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


def bound_plans(answer: str, sentence: tuple[int, int] | None, position: int, plans: set[str]) -> frozenset[str]:
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


def periods_after(text: str, end: int) -> frozenset[tuple[str, str]]:
    """("time", "month"), ("seat", "seat")... for the period words right after a price."""
    periods = set()
    position = end
    while m := _PERIOD_STEP.match(text, position):
        word = singular(m.group("word") or m.group("adverb"))
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


# number_key and singular also normalise the plain numbers and unit words of the fact check.
def number_key(amount: str, mult: str | None = None) -> str:
    try:
        value = Decimal(amount.replace(",", "")) * {"k": 1000, "K": 1000, "M": 1000000}.get(mult or "", 1)
    except InvalidOperation:
        return amount
    return format(value.normalize(), "f")  # "49.00" -> "49", "5,000" -> "5000"


def price_key(m: re.Match) -> tuple[str, str]:
    """("USD", "49") for "$49", "49 USD", "$49.00", "forty-nine dollars"; cents count as dollars."""
    written = " ".join(m.group("cur").lower().split())
    currency = _CURRENCIES.get(written) or _CURRENCIES.get(written.rstrip("s")) or written.upper()
    groups = m.groupdict()
    amount = str(_words_number(groups["words"])) if groups.get("words") else number_key(groups["amount"], groups.get("mult"))
    if written.startswith("cent"):
        amount = number_key(str(Decimal(amount) / 100))
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


def singular(word: str) -> str:
    word = word.lower()
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith("ss") and len(word) >= 3:
        word = word[:-1]
    return _UNIT_SYNONYMS.get(word, word)


class PriceEvidence:
    """The prices the passages state, each with its period and the plans it is about, and
    the plans their lines call free."""

    def __init__(self, passages: list[Passage], plans: set[str]):
        self.stated: list[_PriceStated] = []
        self.free_for: list[frozenset] = []  # per passage line that says something is free: the plans it is about
        for passage in passages:
            units = _passage_units(passage, plans)
            outside = frozenset(name for _, name in _plan_mentions(passage.heading, plans))  # code, headings
            for pattern in PRICE_PATTERNS:
                for m in pattern.finditer(passage.text):
                    key = price_key(m)
                    about = next((about for start, end, about in units if start <= m.start() < end), outside)
                    self.stated.append(_PriceStated(key, periods_after(passage.text, m.end()), about))
                    if key[1] == "0":
                        self.free_for.append(about)
            self.free_for += [about for start, end, about in units if _FREE_WORD.search(passage.text, start, end)]

    def binding_problem(self, key: tuple[str, str], periods: frozenset, plans: frozenset, where: str) -> str | None:
        """Why a price the passages do state is still not supported as said, or None."""
        stated = [p for p in self.stated if p.key == key]
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

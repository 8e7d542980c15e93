"""The facts an answer states that can be checked absolutely, and what passages state.

`answer_facts` finds each price, number, percentage, date, URL, email, endpoint, code
identifier and plan name in an answer, with a key in a normal form ("$19/mo" and "$19 per
month" are one price; "Jan 5, 2026" and "2026-01-05" one date); `Evidence` indexes the
same kinds of facts in passages under the same keys, and says whether it `supports` one.
The grounding check (`grounding`) decides which passages each sentence may lean on.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlsplit

from app.core.text import CITATION_MARK
from app.core.trust.price_claims import NOT_PLANS, NUM, PLAN, PRICE_PATTERNS, PriceEvidence, number_key, price_key, singular

if TYPE_CHECKING:
    from app.core.passage import Passage

_MONTH = (r"(?P<mon>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
          r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_UNIT_WORD = r"[A-Za-z]+"
_PER = rf"\s*(?:/|\bper\b)\s*{_UNIT_WORD}"
_PATH = r"(?<![\w/.:~@$-])/(?:[A-Za-z0-9_{}:.~-]+/?)+"
_METHOD = r"GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS"

# Runs of equal length open and close: "```  cmd  ```" written inline is one code span.
_BACKTICK = re.compile(r"(?<!`)(`+)(?!`)([^`\n]{1,200}?)(?<!`)\1(?!`)")
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_URL = re.compile(r"\bhttps?://[^\s<>()\[\]\"'`|]+|(?<![\w@.-])(?:www\.)?(?:[a-z0-9-]+\.)+"
                  r"(?:com|org|net|io|dev|app|ai|co|example|test|cloud|sh)\b(?:/[^\s<>()\[\]\"'`|]*)?", re.I)
_GLUED_URL = re.compile(r"(?<=\w)https?://[^\s<>()\[\]\"'`|]+")
_ENDPOINT = re.compile(rf"(?:\b(?P<method>{_METHOD})[\s`*|]+)?(?P<path>{_PATH})")
_PERCENT = re.compile(rf"(?<![\w.])(?P<amount>{NUM})\s?(?:%|percent\b|per\s?cent\b)")
_DATES = [re.compile(pattern) for pattern in (  # in this order, so the longer forms win
    r"\b(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b",
    rf"\b{_MONTH}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<y>\d{{4}}))?\b",
    rf"\b(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+(?P<y>\d{{4}}))?\b",
    rf"\b{_MONTH}\s+(?P<y>\d{{4}})\b",
    r"\b(?P<y>\d{4})/(?P<m>\d{1,2})/(?P<d>\d{1,2})\b",
    # d.m.y, d/m/y, d-m-y or the US m/d/y: both readings are candidates. Before this form was
    # known, "01.03.2026" read as the number 1.03 and matched "01.03.2025".
    r"\b(?P<a>\d{1,2})([./-])(?P<b>\d{1,2})\2(?P<y>\d{4}|\d{2})\b",
)]


def starts_with_date(text: str) -> bool:
    """Does `text` open with a whole date, day and year ("2025-03-18 …", "March 18, 2025",
    "18 Mar 2025")? Not the d.m.y form: at the start of a title "1.2.10" is a version."""
    return any((m := pattern.match(text)) and m.groupdict().get("d") and m.groupdict().get("y") for pattern in _DATES[:5])


_UNIT_NUMBER = re.compile(rf"(?<![\w.$\u20ac\u00a3])(?P<amount>{NUM})(?P<mult>[kK]|M)?"
                          rf"(?P<unit>(?:{_PER})+|[ \t-]?{_UNIT_WORD}(?:{_PER})*)")
_BARE_NUMBER = re.compile(rf"(?<![\w.])(?P<amount>{NUM})(?:st|nd|rd|th)?(?![\d])")
_HEADER = re.compile(r"(?<![\w-])X-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![\w-])"
                     r"|(?<![\w-])[A-Z][a-z]+(?:-[A-Z][a-z]+)+(?=:|\s+header)")
_SNAKE = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+(?![\w-])")
_CAMEL = re.compile(r"(?<![\w-])[a-z][a-z0-9]*(?:[A-Z][a-z0-9]+)+(?![\w-])")
# Identifiers that contain digits ("Form APP-001", "ISO 8601", "dal10", "v2.1", "6.15.0"):
# names, not quantities, so they must appear as written and their digits are not numbers.
_DIGIT_ID = re.compile(r"(?<![\w$.-])(?=[A-Za-z0-9.-]*\d)[A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*(?![\w-])"
                       r"|(?<![\w.])(?:[A-Z]{2,}\s+\d{3,}|(?:Form|Section|Rule|Article|Chapter|Schedule|Publication)\s+[A-Z]*\d+)(?:[-.]\d+)*[A-Z]?(?![\w-])"
                       r"|(?<![\w.])\d+(?:\.\d+){2,}(?!\w|\.\d)")
_FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?![\w-])")
# A list number: at a line's start or after a space, then "." or ")" and the item's first word.
_ENUMERATOR = re.compile(r"(?:^|(?<=\s))(?P<n>\d{1,2})[.)][ \t]+(?=[*_\w\"'(`])", re.M)
_OR_MORE = re.compile(r"(?<=\d)\+(?=[ \t]?[A-Za-z])")
_SPACED_HYPHEN = re.compile(r"(?<=\d) - (?=[A-Za-z])")

_NOT_UNITS = set("a an the and or to of in on at for by with from is are was were be been will can may if as than then "
                 "so but it its this that these those you your we our they their i more less plus per via into onto "
                 "different other new such before after since until ago".split())
_YEAR = re.compile(r"1[89]\d\d|20\d\d")  # "2008 housing crisis": a year takes no unit
_MONTHS = {name: i for i, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), start=1)}


def answer_facts(answer: str) -> Iterator[tuple[str, int, int, str, object]]:
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
    # "9. Primary ciliary dyskinesia 10. Antisperm antibodies": list numbers count items, they are no quantity.
    # A number counts as one only in a run that starts at 1 ("costs 10. Then" is a quantity).
    listed: set[int] = set()
    for m in _ENUMERATOR.finditer(masked[0]):
        number = int(m.group("n"))
        if number == 1 or number - 1 in listed:
            listed.add(number)
            masked[0] = masked[0][:m.start("n")] + " " * len(m.group("n")) + masked[0][m.end("n"):]
    for m in take(_BACKTICK):
        yield fact("identifier", m, ("code", m.group(2).strip()))
    for m in take(_EMAIL):
        yield fact("email", m, m.group(0).lower().rstrip("."))
    for m in take(_URL):
        url = _strip_trailing(m.group(0))
        yield "url", m.start(), m.start() + len(url), url, _url_key(url)
    for m in take(_ENDPOINT):
        path = _strip_trailing(m.group("path"))
        if m.group("method") or path.strip("/").count("/") >= 1:  # "/month" alone is a unit, not an endpoint
            yield "endpoint", m.start(), m.start("path") + len(path), answer[m.start():m.start("path") + len(path)], (m.group("method"), _path_key(path))
    for pattern in PRICE_PATTERNS:
        for m in take(pattern):
            yield fact("price", m, price_key(m))
    for m in take(_PERCENT):
        yield fact("percent", m, number_key(m.group("amount")))
    for pattern in _DATES:
        for m in take(pattern):
            yield fact("date", m, _date_keys(m))
    for m in take(_FLAG):
        yield fact("identifier", m, ("word", m.group(0)))
    for m in take(_DIGIT_ID):
        yield fact("identifier", m, ("token", " ".join(m.group(0).split()).lower()))
    for m in take(_UNIT_NUMBER):
        unit = None if _YEAR.fullmatch(m.group("amount")) else _unit_key(m.group("unit"))
        if unit is not None:
            yield "number", m.start(), m.end(), m.group(0).strip(), (number_key(m.group("amount"), m.group("mult")), unit)
        elif sum(ch.isdigit() for ch in m.group("amount")) >= 2:
            yield fact("number", m, number_key(m.group("amount"), m.group("mult")), "amount")
    for m in take(_BARE_NUMBER):
        if sum(ch.isdigit() for ch in m.group("amount")) >= 2:
            yield fact("number", m, number_key(m.group("amount")), "amount")
    for m in take(_HEADER):
        yield fact("identifier", m, ("header", m.group(0).lower()))
    for pattern in (_SNAKE, _CAMEL):
        for m in take(pattern):
            yield fact("identifier", m, ("word", m.group(0)))
    for m in take(PLAN):
        if m.group("name") not in NOT_PLANS:
            yield fact("plan", m, m.group("name"))


class Evidence:
    """Everything the passages state, indexed in the same normal forms as the answer's facts."""

    def __init__(self, passages: list[Passage], plans: set[str] = frozenset()):
        # "315 - mile" (tokenised text) is "315-mile"
        # "10+ years" states 10 years (at least): the "+" may not hide the unit from the number.
        text = _OR_MORE.sub("", _SPACED_HYPHEN.sub("-", "\n\n".join(f"{p.heading}\n{p.text}" for p in passages)))
        self.text = text
        self.priced = PriceEvidence(passages, plans)  # each price with its period and plan
        self.lower = text.lower()
        self.flat = " ".join(text.split())
        self.emails = {m.group(0).lower().rstrip(".") for m in _EMAIL.finditer(text)}
        # A link glued to the text before it ("208-4832https://...") is still a link the docs give.
        urls = [_strip_trailing(m.group(0)) for m in (*_URL.finditer(text), *_GLUED_URL.finditer(text))]
        self.urls = {_url_key(u) for u in urls} | {_url_key(u, scheme=False) for u in urls}
        self.paths = {_path_key(urlsplit(u if "://" in u else "//" + u).path) for u in urls}
        self.endpoints = set()
        for m in _ENDPOINT.finditer(text):
            path = _path_key(_strip_trailing(m.group("path")))
            self.paths.add(path)
            self.endpoints.add((m.group("method"), path))
        self.prices = {price_key(m) for pattern in PRICE_PATTERNS for m in pattern.finditer(text)}
        self.percents = {number_key(m.group("amount")) for m in _PERCENT.finditer(text)}
        self.numbers = {number_key(m.group("amount")) for m in _BARE_NUMBER.finditer(text)}
        self.units: dict[str, set[tuple]] = {}
        for m in _UNIT_NUMBER.finditer(text):
            number, unit = number_key(m.group("amount"), m.group("mult")), _unit_key(m.group("unit"))
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
            return has_word(key, self.text) or bool(re.search(rf"(?<![\w-]){re.escape(key.lower())}\**\s+(?:plan|tier)", self.lower))
        if kind == "identifier":
            flavour, value = key
            if flavour == "code":
                return " ".join(value.split()) in self.flat
            if flavour == "token":  # "ISO 8601", "app-001": as written, any case
                return has_word(value, " ".join(self.lower.split()))
            return has_word(value, self.lower if flavour == "header" else self.text)  # headers ignore case
        return key in {"price": self.prices, "percent": self.percents, "number": self.numbers, "email": self.emails}[kind]


def has_word(word: str, text: str) -> bool:
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
    return tuple(("/" if slash else "") + singular(word) for slash, word in parts)


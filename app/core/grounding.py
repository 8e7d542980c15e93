"""Checks an answer against the passages it was generated from.

Two checks. The fact check (regex, no model) requires every price, number, percentage,
date, URL, email, endpoint, code identifier and plan name in the answer to appear, after
normalisation, in the passages the answer cites for it, and every citation (`[n]`, `[^n]`,
`【n】`) to name a passage that was given. Prices are held to more than their amount: the
period they are per, the plan their sentence names, and "free" as a $0 price for a plan
(how prices are read and bound lives in `price_claims`).
The sentence check (optional, needs the embedder) requires each claim sentence to be close
to some passage sentence. Passages may be hostile: only their text counts as evidence, and
nothing here follows an instruction found in them. `mark_unsupported` turns a failed check
into text that shows every unsupported span as unverified, in place.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator
from urllib.parse import urlsplit

from app.core.extractive import CITATION_MARK, EXTRACTIVE_PREFIX, NO_MATCH_ANSWER, prose_text, split_sentences, word_count
from app.core.price_claims import (FREE_CLAIM, NOT_PLANS, NUM, PLAN, PRICE_PATTERNS, PriceEvidence, bound_plans, number_key,
                                   periods_after, plan_names, price_key, singular)

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
_PERCENT = re.compile(rf"(?<![\w.])(?P<amount>{NUM})\s?(?:%|percent\b|per\s?cent\b)")
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
_UNIT_NUMBER = re.compile(rf"(?<![\w.$\u20ac\u00a3])(?P<amount>{NUM})(?P<mult>[kK]|M)?"
                          rf"(?P<unit>(?:{_PER})+|[ \t-]?{_UNIT_WORD}(?:{_PER})*)")
_BARE_NUMBER = re.compile(rf"(?<![\w.])(?P<amount>{NUM})(?:st|nd|rd|th)?(?![\d])")
_HEADER = re.compile(r"(?<![\w-])X-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?![\w-])"
                     r"|(?<![\w-])[A-Z][a-z]+(?:-[A-Z][a-z]+)+(?=:|\s+header)")
_SNAKE = re.compile(r"(?<![\w-])[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+(?![\w-])")
_CAMEL = re.compile(r"(?<![\w-])[a-z][a-z0-9]*(?:[A-Z][a-z0-9]+)+(?![\w-])")
_HEDGE = re.compile(
    r"\b(?:i\s+(?:don't|do not|can't|cannot|couldn't)\s+(?:know|say|tell|find|answer)|not sure"
    r"|(?:docs?|documentation|sources?|passages?)\s+(?:don't|do not|doesn't|does not)\s+(?:say|mention|cover|specify|state|include)"
    r"|(?:couldn't|could not|can't|cannot)\s+find|no information|not (?:mentioned|covered|specified|documented))\b", re.I)

_NOT_UNITS = set("a an the and or to of in on at for by with from is are was were be been will can may if as than then "
                 "so but it its this that these those you your we our they their i more less plus per via into onto".split())
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
    plans |= {m.group("name") for m in PLAN.finditer(answer)
              if m.group("name") not in NOT_PLANS and _has_word(m.group("name"), every_text)}
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
            bound = bound_plans(answer, sentence, start, plans)
            why = known.priced.binding_problem(key, periods_after(answer, end), bound, where)
            if why:
                spans.append(UnsupportedSpan(text, start, end, kind, why))
    for m in FREE_CLAIM.finditer(answer):
        scope, sentence = scopes.at(m.start())
        bound = bound_plans(answer, sentence, m.start(), plans)
        if bound and not evidence(scope).priced.says_free(bound):
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
    for pattern in PRICE_PATTERNS:
        for m in take(pattern):
            yield fact("price", m, price_key(m))
    for m in take(_PERCENT):
        yield fact("percent", m, number_key(m.group("amount")))
    for pattern in _DATES:
        for m in take(pattern):
            yield fact("date", m, _date_keys(m))
    for m in take(_UNIT_NUMBER):
        unit = _unit_key(m.group("unit"))
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


class _Evidence:
    """Everything the passages state, indexed in the same normal forms as the answer's facts."""

    def __init__(self, passages: list[Passage], plans: set[str] = frozenset()):
        text = "\n\n".join(f"{p.heading}\n{p.text}" for p in passages)
        self.text = text
        self.priced = PriceEvidence(passages, plans)  # each price with its period and plan
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
            return _has_word(key, self.text) or bool(re.search(rf"(?<![\w-]){re.escape(key.lower())}\**\s+(?:plan|tier)", self.lower))
        if kind == "identifier":
            flavour, value = key
            if flavour == "code":
                return " ".join(value.split()) in self.flat
            return _has_word(value, self.lower if flavour == "header" else self.text)  # headers ignore case
        return key in {"price": self.prices, "percent": self.percents, "number": self.numbers, "email": self.emails}[kind]


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

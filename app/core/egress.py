"""What may leave the machine: redaction of personal data and secrets, and local-only docs.

Everything sent to a frontier model passes `redact` first. Detectors are precise rather
than greedy: a support answer full of `[PHONE]` where prices and dates used to be is
useless, so card numbers must pass Luhn, IBANs their mod-97 checksum, phone numbers need
phone punctuation, and long tokens count as secrets only when they look random.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Callable, Iterable

PLACEHOLDERS = {"secret": "[SECRET]", "email": "[EMAIL]", "iban": "[IBAN]", "card": "[CARD]", "phone": "[PHONE]"}


@dataclass(frozen=True)
class Redaction:
    text: str
    count: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


# Secrets with a known shape. Each pattern's "secret" group is what gets replaced, so
# "Authorization: Bearer [SECRET]" still tells the model what kind of thing was there.
_TOKEN_CHARS = r"[A-Za-z0-9._~+/=-]"
_KNOWN_SECRETS = [re.compile(pattern) for pattern in (
    r"(?P<secret>\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)",  # JWT
    r"(?P<secret>\bsk-ant-[A-Za-z0-9_-]{10,})",  # Anthropic
    r"(?P<secret>\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{16,})",  # OpenAI-style
    r"(?P<secret>\b[rsp]k_(?:live|test)_[A-Za-z0-9]{10,})",  # Stripe
    r"(?P<secret>\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,})",  # GitHub
    r"(?P<secret>\bxox[abposr]-[A-Za-z0-9-]{10,})",  # Slack
    r"(?P<secret>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)",  # AWS access key id
    r"(?P<secret>\bAIza[0-9A-Za-z_-]{35})",  # Google API key
    # Header values: a digit or length marks a credential, so "Bearer authentication" stays.
    rf"\b(?i:bearer|basic)\s+(?P<secret>(?=\S*\d){_TOKEN_CHARS}{{8,}}|{_TOKEN_CHARS}{{20,}})",
    r"\b(?i:password|passwd|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret)"
    r"[\"']?\s*[:=]\s*[\"']?(?P<secret>[^\s\"',;]{6,})",
)]
# Candidates for unnamed secrets: long runs of base64/hex alphabet, judged by `_looks_random`.
_LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/_=-])")
# A path segment that is a plain word ("/organizations/") marks a path, not a key.
_WORD_SEGMENT = re.compile(r"(?:^|/)[a-z]{3,}(?:-[a-z]+)*(?:/|$)")
_PIECE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_VOWEL = re.compile(r"[aeiouyAEIOUY]")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[A-Z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d.,/-])[2-6]\d{3}(?:[ -]?\d){9,15}(?![\d-]|[.,]\d)")
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-])"  # +44 20 7946 0958, +1 (415) 555-0100
    r"|(?<![\w$.,/-])(?:1[ .-])?\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}(?![\w-])"  # (415) 555-0100
    r"|(?<![\w$.,/-])(?:1[ .-])?\d{3}([ .-])\d{3}\1\d{4}(?![\w-]|[.,]\d)"  # 415-555-0100, 415.555.0100
)


def redact(text: str, keep: Iterable[str] = ()) -> Redaction:
    """Replace secrets, emails, IBANs, payment cards and phone numbers with placeholders.

    `keep` lists email addresses that may be sent as they are (the docs' own published
    addresses, e.g. support@quillstack.example); everything else personal is replaced.
    """
    keep_lower = {address.lower() for address in keep}
    spans: list[tuple[int, int, str]] = []  # detectors run in priority order; first claim wins

    def claim(start: int, end: int, kind: str) -> None:
        if not any(start < taken_end and taken_start < end for taken_start, taken_end, _ in spans):
            spans.append((start, end, kind))

    for pattern in _KNOWN_SECRETS:
        for match in pattern.finditer(text):
            claim(match.start("secret"), match.end("secret"), "secret")
    for match in _LONG_TOKEN.finditer(text):
        for start, end in _random_segments(match.group(0), match.start()):
            claim(start, end, "secret")
    for match in _EMAIL.finditer(text):
        if match.group(0).lower() not in keep_lower:
            claim(match.start(), match.end(), "email")
    _claim_valid(text, _IBAN, _is_iban, "iban", claim)
    _claim_valid(text, _CARD, _is_card, "card", claim)
    _claim_valid(text, _PHONE, _is_phone, "phone", claim)

    kinds = Counter(kind for _, _, kind in spans)
    for start, end, kind in sorted(spans, reverse=True):
        text = text[:start] + PLACEHOLDERS[kind] + text[end:]
    return Redaction(text, len(spans), dict(kinds))


def _claim_valid(text: str, pattern: re.Pattern, valid: Callable[[str], bool], kind: str, claim) -> None:
    for match in pattern.finditer(text):
        if valid(match.group(0)):
            claim(match.start(), match.end(), kind)


def _random_segments(token: str, offset: int) -> list[tuple[int, int]]:
    """Spans of `token` that look like secrets. Paths are judged per segment, so
    /v2/organizations/members keeps its words while a random id inside it goes."""
    if _looks_random(token) and not token.startswith("/"):
        return [(offset, offset + len(token))]
    spans, position = [], 0
    for segment in token.split("/"):
        if len(segment) >= 32 and _looks_random(segment):
            spans.append((offset + position, offset + position + len(segment)))
        position += len(segment) + 1
    return spans


def _looks_random(token: str) -> bool:
    body = token.rstrip("=")
    if len(body) < 32 or _UUID.match(body) or _WORD_SEGMENT.search(body):
        return False
    classes = sum(any(test(ch) for ch in body) for test in (str.islower, str.isupper, str.isdigit))
    if classes < 2:  # one class is a long number or a shouted word, not a key
        return False
    if all(ch in "0123456789abcdefABCDEF" for ch in body):  # digests and hex keys: 16 symbols
        return _entropy(body) >= 3.0
    # Identifiers and slugs are made of pronounceable words; measured on random keys,
    # word-like pieces cover at most ~75% of a mixed-case key and ~95% of a lowercase one.
    if _wordiness(body) >= (0.6 if "-" in body or "_" in body else 0.9):
        return False
    return _entropy(body) >= 3.5


def _wordiness(token: str) -> float:
    """Share of letters and digits in vowel-bearing word pieces of 3+ letters (camelCase split)."""
    covered = sum(len(piece) for piece in _PIECE.findall(token) if len(piece) >= 3 and piece.isalpha() and _VOWEL.search(piece))
    return covered / max(1, sum(ch.isalnum() for ch in token))


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _is_card(candidate: str) -> bool:
    digits = [int(ch) for ch in candidate if ch.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _is_iban(candidate: str) -> bool:
    compact = re.sub(r"[ -]", "", candidate)
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _is_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    return 7 <= digits <= 15 if candidate.startswith("+") else digits in (10, 11)


def is_local_only(file: str, globs: list[str]) -> bool:
    """True when `file` (a path relative to the docs folder) matches a local-only glob.

    Globs use fnmatch on POSIX paths. A glob ending in "/" or matching one of the file's
    folders covers everything inside it ("internal/", "internal", "*/private"). A leading
    "**/" also matches at the top level.
    """
    path = file.replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    parts = path.split("/")
    folders = ["/".join(parts[:i]) for i in range(1, len(parts))]
    for glob in globs:
        glob = glob.strip().replace("\\", "/")
        while glob.startswith("./"):
            glob = glob[2:]
        if not glob:
            continue
        folder_only = glob.endswith("/")
        patterns = {glob.rstrip("/")}
        if glob.startswith("**/"):
            patterns.add(glob[3:].rstrip("/"))
        candidates = folders if folder_only else [path] + folders
        if any(fnmatchcase(candidate, pattern) for pattern in patterns for candidate in candidates):
            return True
    return False

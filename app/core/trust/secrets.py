"""Keeping the configured API key out of everything the desk writes or shows.

An exact-match replace is not enough: an API error may echo the key upper-cased,
URL-encoded, with an escaped "\\r", split by a space or cut short. So any token that shares
a run of `WINDOW` characters with the key (case-insensitively, after URL-decoding) is
masked. A run that long of a random key does not occur in ordinary text by chance.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

WINDOW = 10
MASK = "***"
_TOKEN = re.compile(r"[^\s\"'<>()\[\]{},;]+")


def scrub(text: str, secret: str | None) -> str:
    """`text` with every token that carries part of `secret` replaced by ***."""
    if not text or not secret or len(secret) < WINDOW:
        return text.replace(secret, MASK) if text and secret else text
    windows = _windows(secret)

    def mask(match: re.Match) -> str:
        token = match.group()
        folded = unquote(token).lower().replace("\\r", "").replace("\\n", "")
        return MASK if any(folded[i:i + WINDOW] in windows for i in range(len(folded) - WINDOW + 1)) else token

    return _TOKEN.sub(mask, text)


def _windows(secret: str) -> set[str]:
    folded = secret.lower()
    return {folded[i:i + WINDOW] for i in range(len(folded) - WINDOW + 1)}

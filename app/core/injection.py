"""Documents are data: passages that talk to the assistant are quarantined.

Retrieved passages that address the model ("ignore previous instructions", "SYSTEM:",
"the assistant must ...", forged <passage>/<system> delimiters) never reach a model, an
extractive answer or the grounding evidence. This is one layer: prompts also delimit
passages and say they are data, and the grounding check rejects claims no clean passage
supports. Patterns are specific to text aimed at an AI, so ordinary docs ("ignore this
warning if ...") pass.
"""
from __future__ import annotations

import re

from app.core.passage import Passage

_PATTERNS = [
    (re.compile(p, re.IGNORECASE | re.MULTILINE), why) for p, why in (
        (r"\b(ignore|disregard|forget|override)\b[^.\n]{0,40}\b(previous|prior|above|earlier|all|your|system)\b[^.\n]{0,20}\b(instructions?|rules|prompt|guidelines)", "tells the model to ignore its instructions"),
        (r"^\s*(system|assistant)\s*:", "poses as a system or assistant message"),
        (r"</?\s*(passage|passages|system|instructions?|context)\b[^>]*>", "forges prompt delimiters"),
        (r"\b(you are now|switch to|enter)\b[^.\n]{0,30}\b(mode|role|persona)\b", "tries to change the model's role"),
        (r"\b(reveal|print|show|repeat)\b[^.\n]{0,30}\bsystem prompt\b", "asks for the system prompt"),
        (r"\b(the |an? )?(AI |support )?assistant\b[^.\n]{0,20}\b(must|should|shall|always|never)\b", "gives the assistant orders"),
        (r"\b(instructions?|note) for the (AI |support )?(assistant|model|bot)\b", "gives the assistant orders"),
        (r"\btell (the )?(customers?|users?)\b[^.\n]{0,40}\b(free|that|to)\b", "scripts what customers are told"),
    )
]


def injection_reason(text: str) -> str | None:
    for pattern, why in _PATTERNS:
        if pattern.search(text):
            return why
    return None


def quarantine(passages: list[Passage]) -> tuple[list[Passage], list[tuple[Passage, str]]]:
    """Split passages into (clean, [(quarantined passage, why)])."""
    clean, held = [], []
    for passage in passages:
        why = injection_reason(passage.text)
        (held.append((passage, why)) if why else clean.append(passage))
    return clean, held

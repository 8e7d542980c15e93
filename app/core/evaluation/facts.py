"""Does an answer state a labelled fact, and which files does it cite?

Labelled facts are short notes ("email link valid 60 minutes, works once"), not sentences
an answer would repeat, so the match is deliberately loose on words and strict on numbers:
- every number of the fact (prices, limits, durations, dates' parts) appears in the answer;
- and at least FACT_MIN_WORDS of the fact's content words do (crude stems, as the relevance
  check compares words), so "Forgot password?" meets "forgotten" and "links" meets "link",
  and an acronym of three letters or more meets its spelled-out form ("RPO": "recovery point
  objective").
A fact with no number and fewer than two content words ("no") can't be judged by words:
only the cited file decides (`judgeable` is False). Text marked ⟦unverified⟧ is not shown as
fact, so it never counts.

`frontdesk eval` and the benchmarks (bench/labels.py) judge with these same rules.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.text import numbers
from app.core.trust.relevance import word_keys

FACT_MIN_WORDS = 0.6
UNVERIFIED = re.compile(r"⟦unverified: [^⟧]*⟧")
CITATION = re.compile(r"[\[【]\^?\s*(\d+(?:\s*,\s*\d+)*)\s*[\]】]")


def _words(text: str) -> set[str]:
    return {k for k in word_keys(text) if not k.isdigit()}


_ACRONYM = re.compile(r"\b[A-Z]{3,5}\b")  # two letters ("EU", "ID") would be spelled by chance
_LETTERS = re.compile(r"[A-Za-z]+")


def _spelled_out(fact: str, answer: str) -> set[str]:
    """The fact's acronyms the answer spells out instead ("RPO": "recovery point objective"),
    as word keys: an answer that expands the docs' own abbreviation still states the fact."""
    initials = "".join(word[0].lower() for word in _LETTERS.findall(answer))
    return {key for acronym in _ACRONYM.findall(fact) if acronym.lower() in initials
            for key in _words(acronym)}


def shown_as_fact(answer: str) -> str:
    """The answer without its ⟦unverified⟧ spans: what a customer is told as fact."""
    return UNVERIFIED.sub(" ", answer)


@dataclass(frozen=True)
class FactMatch:
    numbers_ok: bool  # every number of the fact is in the answer
    any_number: bool  # at least one is
    words: float  # share of the fact's content words present
    judgeable: bool

    @property
    def ok(self) -> bool:
        return self.numbers_ok and (self.words >= FACT_MIN_WORDS or not self.judgeable)

    @property
    def none(self) -> bool:
        """Nothing of the fact at all: none of its numbers and at most a quarter of its words."""
        return self.judgeable and self.words <= 0.25 and not self.any_number


def fact_match(fact: str, answer: str) -> FactMatch:
    shown = shown_as_fact(answer)
    want_numbers, want_words = numbers(fact), _words(fact)
    have_numbers, have_words = numbers(shown), _words(shown) | _spelled_out(fact, shown)
    words = len(want_words & have_words) / len(want_words) if want_words else 1.0
    judgeable = bool(want_numbers) or len(want_words) >= 2
    return FactMatch(want_numbers <= have_numbers, bool(want_numbers & have_numbers), words, judgeable)


def cited_files(answer: str, sources: list[dict]) -> set[str]:
    """Files the answer cites by [n]; all its sources when it cites none."""
    picked = {int(n) for m in CITATION.finditer(answer) for n in m.group(1).split(",")}
    chosen = [s for i, s in enumerate(sources, 1) if i in picked] or sources
    return {s["file"] for s in chosen}

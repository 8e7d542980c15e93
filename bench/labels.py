"""Is an answer right? Judged against the labelled fact and file of a question.

The fact matching itself lives in the core (app/core/evaluation/facts.py), so the
benchmarks and `frontdesk eval` judge answers by the same rules; this module keeps the
benchmarks' names and their one verdict, `is_right`.
"""
from __future__ import annotations

from app.core.evaluation.facts import cited_files, fact_match


def expected_files(item: dict) -> set[str]:
    """The files a right answer may cite: `file`, and `files` when several state the fact."""
    return set(item.get("files") or []) | ({item["file"]} if item.get("file") else set())


def labelled_facts(item: dict) -> list[str]:
    """`fact`, or every one of `facts` (the held-out sets label a question with several)."""
    return list(item.get("facts") or []) or ([item["fact"]] if item.get("fact") else [])


def is_right(item: dict, answer: str, sources: list[dict]) -> bool:
    """The answer states every labelled fact and cites a labelled file."""
    facts = labelled_facts(item)
    if not item.get("answerable") or not facts:
        return False
    return all(fact_match(fact, answer).ok for fact in facts) and bool(expected_files(item) & cited_files(answer, sources))

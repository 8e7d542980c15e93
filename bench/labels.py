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


def is_right(item: dict, answer: str, sources: list[dict]) -> bool:
    """The answer states the labelled fact and cites a labelled file."""
    if not item.get("answerable") or not item.get("fact"):
        return False
    return fact_match(item["fact"], answer).ok and bool(expected_files(item) & cited_files(answer, sources))

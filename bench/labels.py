"""Is an answer right? Judged against the labelled fact and file of a question.

The fact matching itself lives in the core (app/core/evaluation/facts.py), so the
benchmarks and `frontdesk eval` judge answers by the same rules; this module keeps the
benchmarks' names and their one verdict, `is_right`.
"""
from __future__ import annotations

from app.core.evaluation.facts import cited_files, fact_match


def is_right(item: dict, answer: str, sources: list[dict]) -> bool:
    """The answer states the labelled fact and cites the labelled file."""
    if not item.get("answerable") or not item.get("fact"):
        return False
    return fact_match(item["fact"], answer).ok and item.get("file") in cited_files(answer, sources)

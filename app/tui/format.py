"""How turns, costs and sources read on screen. Pure functions: no widgets, no core imports.

User and model text is always wrapped in `Content` (never parsed as markup), so a
bracket in a question or a document can't restyle or break the screen.
"""
from __future__ import annotations

import math
import re
from typing import Any

from textual.content import Content

OUTCOME_LABELS = {
    "answered": "✓ answered",
    "extractive": "❝ quoted from docs",
    "refused": "⊘ declined",
    "handoff": "☎ handoff offered",
    "stopped": "■ stopped",
    "failed": "✗ failed",
}
OUTCOME_STYLES = {
    "answered": "$success bold",
    "extractive": "$accent bold",
    "refused": "$warning bold",
    "handoff": "$warning bold",
    "stopped": "$warning bold",
    "failed": "$error bold",
}
# The pipeline marks claims the docs don't support like this; they must never read as fact.
UNVERIFIED = re.compile(r"⟦unverified:.*?⟧", re.DOTALL)
NOT_FOUND_LINE = re.compile(r"^⚠ Not found in the docs:.*$", re.MULTILINE)


def money(usd: float | None, places: int | None = None) -> str:
    """Dollars with enough decimals to show the first two significant digits of a tiny cost."""
    value = usd or 0.0
    if places is None:
        places = 2 if value == 0 or abs(value) >= 0.1 else min(6, 1 - math.floor(math.log10(abs(value))))
    return f"${value:.{places}f}"


def seconds(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"


def clip(text: str, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def who_answered(turn: Any) -> str:
    """Local model name, Claude model, docs only, or nobody (refused/handoff)."""
    if turn.outcome == "stopped":  # the pipeline names the model only once a draft is kept
        return f"stopped: {turn.model}" if turn.model else "stopped during the draft"
    if turn.outcome == "extractive" or (turn.model or "").startswith("docs"):
        return "docs only (extractive quote)"
    if turn.outcome in ("refused", "handoff") or not turn.model:
        return "no model"
    if turn.route == "frontier":
        return f"Claude {turn.model}"
    return f"local {turn.model}"


def grounding_label(turn: Any) -> str:
    passed = (turn.grounding or {}).get("passed")
    if passed is None:  # refusals, handoffs and verbatim quotes have no model text to check
        return "n/a"
    return "passed" if passed else "FAILED"


def outcome_content(outcome: str) -> Content:
    return Content.styled(OUTCOME_LABELS.get(outcome, outcome), OUTCOME_STYLES.get(outcome, "bold"))


def turn_meta(turn: Any) -> Content:
    """The answer footer: outcome, who and why, check verdict, cost, latency."""
    check = grounding_label(turn)
    check_style = {"passed": "$success", "FAILED": "$error"}.get(check, "$text-muted")  # n/a: muted
    saved = (turn.counterfactual_cost_usd or 0.0) - (turn.cost_usd or 0.0)
    return Content.assemble(
        outcome_content(turn.outcome), " · ", (who_answered(turn), "bold"), " · check ", (check, check_style), "\n",
        ("why ", "$text-muted"), turn.reason or "—", "\n",
        ("cost ", "$text-muted"), money(turn.cost_usd), (" · all-frontier ", "$text-muted"),
        money(turn.counterfactual_cost_usd), (" · saved ", "$text-muted"), money(saved),
        (" · latency ", "$text-muted"), seconds(turn.total_ms),
    )


def answer_content(text: str) -> Content:
    """The final answer with unverified spans and 'not found' lines in the warning colour."""
    parts: list[str | tuple[str, str]] = []
    position = 0
    marks = sorted([*UNVERIFIED.finditer(text), *NOT_FOUND_LINE.finditer(text)], key=lambda m: m.start())
    for match in marks:
        if match.start() < position:
            continue
        parts.append(text[position:match.start()])
        parts.append((match.group(0), "$warning bold underline"))
        position = match.end()
    parts.append(text[position:])
    return Content.assemble(*parts)


def source_label(number: int, source: dict) -> str:
    heading = f" § {source['heading']}" if source.get("heading") else ""
    score = source.get("score")
    tail = f"  ({score:.2f})" if isinstance(score, (int, float)) and score else ""
    return f"[{number}] {source.get('file', '?')}{heading}{tail}"


def summary_line(summary: Any) -> Content:
    return Content.assemble(
        (f"{summary.turns}", "bold"), " turn · " if summary.turns == 1 else " turns · ", (f"{summary.share_local:.0%}", "bold"),
        " local · spend ", (money(summary.spend_usd), "bold"), " · saved ",
        (f"{money(summary.savings_usd)} ({summary.savings_pct:.0f}%)", "$success bold"), " vs all-frontier",
    )


def explain(error: BaseException) -> tuple[str, str]:
    """(title, fix) for any exception: domain errors carry both; anything else gets a generic fix."""
    title = getattr(error, "title", None)
    if title:
        return title, getattr(error, "fix", "") or ""
    return (f"{type(error).__name__}: {error}",
            "Unexpected error; the app keeps running. Try again, and report it if it repeats.")

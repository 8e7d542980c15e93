"""How turns, costs and sources read on screen. Pure functions: no widgets; from the core only
its public face's `printable`.

User and model text is always wrapped in `Content` (never parsed as markup), so a
bracket in a question or a document can't restyle or break the screen; and passed through
`printable`, because Content drops only a few control characters and lets ESC reach the
terminal.
"""
from __future__ import annotations

import math
import re
from typing import Any

from textual.content import Content

from app.core import printable

OUTCOME_LABELS = {
    "answered": "✓ answered",
    "extractive": "❝ quoted from docs",
    "refused": "⊘ declined",
    "handoff": "☎ handoff offered",
    "stopped": "■ stopped",
    "failed": "✗ failed",
}
# Text colours are the theme's `$text-*` variants: readable on light backgrounds too.
OUTCOME_STYLES = {
    "answered": "$text-success bold",
    "extractive": "$text-primary bold",
    "refused": "$text-warning bold",
    "handoff": "$text-warning bold",
    "stopped": "$text-warning bold",
    "failed": "$text-error bold",
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
    text = " ".join(printable(text).split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def who_answered(turn: Any) -> str:
    """Local model name, Claude model, docs only, or nobody (refused/handoff)."""
    if turn.outcome == "stopped":  # the pipeline names the model only once a draft is kept
        return f"stopped: {turn.model}" if turn.model else "stopped during the draft"
    if turn.answered_by == "docs-quote" or turn.outcome == "extractive":
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


def cost_versus_frontier(turn: Any) -> str:
    """'all-frontier $F, saved $S', or '$D more than all-frontier $F' (never a negative saving)."""
    frontier = turn.counterfactual_cost_usd or 0.0
    saved = frontier - (turn.cost_usd or 0.0)
    if saved >= 0:
        return f"all-frontier {money(frontier, 6)}, saved {money(saved, 6)}"
    return f"{money(-saved, 6)} more than all-frontier {money(frontier, 6)}"


def turn_meta(turn: Any) -> Content:
    """The answer footer: outcome, who and why, check verdict, cost, latency."""
    check = grounding_label(turn)
    check_style = {"passed": "$text-success", "FAILED": "$text-error"}.get(check, "$text-muted")  # n/a: muted
    frontier = turn.counterfactual_cost_usd or 0.0
    saved = frontier - (turn.cost_usd or 0.0)
    # A turn can cost more than all-frontier (a paid local draft, then an escalation): say so,
    # the same words as the CLI, never "saved $-…".
    if saved >= 0:
        versus = ((" · all-frontier ", "$text-muted"), money(frontier), (" · saved ", "$text-muted"), money(saved))
    else:
        versus = (" · ", money(-saved), (" more than all-frontier ", "$text-muted"), money(frontier))
    return Content.assemble(
        outcome_content(turn.outcome), " · ", (who_answered(turn), "bold"), " · check ", (check, check_style), "\n",
        ("why ", "$text-muted"), turn.reason or "—", "\n",
        ("cost ", "$text-muted"), money(turn.cost_usd), *versus,
        (" · latency ", "$text-muted"), seconds(turn.total_ms),
    )


# Inline Markdown the models and the docs use: code, bold, italic and links. Code is matched
# first so that `**` inside it stays literal.
INLINE = re.compile(
    r"`(?P<code>[^`\n]+)`"
    r"|\*\*(?P<bold>[^\n]+?)\*\*"
    r"|__(?P<bold2>[^\n]+?)__"
    r"|(?<![\w*])\*(?P<italic>[^\s*][^*\n]*?)(?<!\s)\*(?![\w*])"
    r"|\[(?P<link>[^\]\n]+)\]\((?P<url>[^)\s]+)\)"
)
CODE_STYLE = "$text-primary"
UNVERIFIED_STYLE = "$text-warning bold underline"


def _join(*styles: str) -> str:
    return " ".join(s for s in styles if s)


def _inline(text: str, style: str = "") -> list[tuple[str, str]]:
    parts: list[tuple[str, str]] = []
    position = 0
    for match in INLINE.finditer(text):
        if match.start() > position:
            parts.append((text[position:match.start()], style))
        if match["code"] is not None:
            parts.append((match["code"], _join(style, CODE_STYLE)))
        elif match["bold"] is not None or match["bold2"] is not None:
            parts.extend(_inline(match["bold"] or match["bold2"], _join(style, "bold")))
        elif match["italic"] is not None:
            parts.extend(_inline(match["italic"], _join(style, "italic")))
        else:
            parts.extend(_inline(match["link"], _join(style, "underline")))
            parts.append((f" ({match['url']})", _join(style, "$text-muted")))
        position = match.end()
    if position < len(text):
        parts.append((text[position:], style))
    return parts


FENCE = re.compile(r"^\s*```")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
QUOTE = re.compile(r"^\s*>\s?(.*)$")
BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(.*)$")


def _markdown_lines(text: str) -> list[tuple[str, str, Content]]:
    """(block kind, list-item marker, rendered line) per source line. Kinds: p, quote, item, code."""
    lines: list[tuple[str, str, Content]] = []
    in_fence = False
    for line in printable(text).strip("\n").split("\n"):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            lines.append(("code", "", Content.styled(line, CODE_STYLE)))
        elif heading := HEADING.match(line):
            lines.append(("p", "", Content.assemble(*_inline(heading.group(1), "bold"))))
        elif quote := QUOTE.match(line):
            lines.append(("quote", "", Content.assemble(*_inline(quote.group(1)))))
        elif item := BULLET.match(line):
            marker = " " * len(item.group(1).expandtabs(2)) + ("•" if line.strip()[0] in "-*+" else line.strip().split()[0])
            lines.append(("item", marker, Content.assemble(*_inline(item.group(2)))))
        else:
            lines.append(("p", "", Content.assemble(*_inline(line))))
    return lines


def _marked(content: Content) -> Content:
    """Unverified spans and 'not found' lines in the warning colour: they must never read as fact."""
    plain = content.plain
    for match in [*UNVERIFIED.finditer(plain), *NOT_FOUND_LINE.finditer(plain)]:
        content = content.stylize(UNVERIFIED_STYLE, match.start(), match.end())
    return content


def markdown_blocks(text: str, marks: bool = True) -> list[tuple[str, list[tuple[str, Content]]]]:
    """Markdown as blocks for the screen: (kind, [(list marker, line)]), kind one of p, quote,
    item, code. Headings are bold; inline code, bold, italic and links are rendered. The text
    is never parsed as Textual markup, so brackets in a document or an answer stay literal.
    With `marks`, unverified spans are coloured, even one that crosses a line."""
    lines = _markdown_lines(text)
    if marks and lines:
        joined = _marked(Content("\n").join(content for _, _, content in lines))
        rendered = joined.split("\n", allow_blank=True)
        if len(rendered) == len(lines):
            lines = [(kind, marker, content) for (kind, marker, _), content in zip(lines, rendered)]
    blocks: list[tuple[str, list[tuple[str, Content]]]] = []
    for kind, marker, content in lines:
        if blocks and blocks[-1][0] == kind:
            blocks[-1][1].append((marker, content))
        else:
            blocks.append((kind, [(marker, content)]))
    return blocks


def markdown_content(text: str, marks: bool = False) -> Content:
    """The same rendering as one piece of text (where hanging indents don't matter)."""
    out = []
    for kind, lines in markdown_blocks(text, marks):
        for marker, content in lines:
            prefix = {"quote": "▌ ", "item": f"{marker} "}.get(kind, "")
            out.append(Content.assemble((prefix, "$text-muted"), content) if prefix else content)
    return Content("\n").join(out)


def answer_content(text: str) -> Content:
    return markdown_content(text, marks=True)


# --- notes under an answer ---------------------------------------------------------------------

# Styles for the kinds of note the pipeline records with each turn (NOTE_KINDS in the core).
NOTE_STYLES = {"draft-withdrawn": "$text-warning", "degraded": "$text-warning", "failed": "$text-error"}


def first_line(text: str) -> str:
    return (text or "").strip().split("\n", 1)[0].strip()


def note_key(text: str) -> str:
    """What two notes saying the same thing share: the first clause of their first line."""
    return re.split(r"[:.…,;]", first_line(text), maxsplit=1)[0].strip().lower()


def turn_notes(turn: Any) -> list[tuple[str, str]]:
    """The notes under a recorded answer, as the pipeline recorded them (live and reopened alike)."""
    return [(note["text"], NOTE_STYLES.get(note["kind"], "$text-muted")) for note in turn.notes or []]


def source_label(number: int, source: dict) -> str:
    heading = f" § {source['heading']}" if source.get("heading") else ""
    score = source.get("score")
    tail = f"  ({score:.2f})" if isinstance(score, (int, float)) and score else ""
    return printable(f"[{number}] {source.get('file', '?')}{heading}{tail}")


def budget_content(budget: list) -> Content:
    """Spend against each frontier cap that is set; from 80% in the warning colour."""
    parts = [Content.styled(use.describe(), "$text-error bold" if use.exhausted else "$text-warning bold" if use.near else "")
             for use in budget]
    return Content(" · ").join(parts)


def summary_line(summary: Any, budget: list = ()) -> Content:
    # Only checked answers count, by tier: local model · docs quote · frontier.
    tiers = " · ".join(f"{label} {summary.tier(name).answers}" for name, label in
                       (("local-model", "model"), ("docs-quote", "quote"), ("frontier", "frontier")))
    saved, pct = summary.savings_usd, summary.savings_pct
    if saved >= 0:
        versus = (" · saved ", (f"{money(saved)} ({pct:.0f}%)", "$text-success bold"), " vs all-frontier")
    else:  # never "saved $-…" (see turn_meta)
        versus = (" · ", (f"{money(-saved)} ({-pct:.0f}%)", "$text-warning bold"), " more than all-frontier")
    line = Content.assemble(
        (f"{summary.turns}", "bold"), " turn · " if summary.turns == 1 else " turns · ", (f"{summary.share_local:.0%}", "bold"),
        f" local ({tiers}) · spend ", (money(summary.spend_usd), "bold"), *versus,
    )
    return Content.assemble(line, "\n", budget_content(budget)) if budget else line


def explain(error: BaseException) -> tuple[str, str]:
    """(title, fix) for any exception: domain errors carry both; anything else gets a generic fix."""
    title = getattr(error, "title", None)
    if title:
        return title, getattr(error, "fix", "") or ""
    return (f"{type(error).__name__}: {error}",
            "Unexpected error; the app keeps running. Try again, and report it if it repeats.")

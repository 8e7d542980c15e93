"""The notes a turn carries for the user ({kind, text}, kinds in the ledger's NOTE_KINDS): the
pipeline writes them so that front ends render by kind and never parse its prose."""
from __future__ import annotations

from app.core.answer.events import DraftWithdrawn
from app.core.ledger.turns import Turn
from app.core.text import split_sentences
from app.core.trust.grounding import GroundingResult

# A quote shown because the frontier could not answer; a confident one says only CONFIDENT_QUOTE_NOTE.
EXTRACTIVE_NOTE = "Quoted from your docs; not verified by the frontier model."
CONFIDENT_QUOTE_NOTE = "Quoted from your docs."


def withdrawn(reason: str, streamed: bool = True, note: str = "") -> DraftWithdrawn:
    return DraftWithdrawn(reason, streamed, note or f"Draft withdrawn: {_clip(reason, 90)}")


# Why a local draft was taken back for what it leaves out (its end, its first steps, the
# answer), not for anything it says: one line each; the whole reason is in the turn's actions.
CUT_OFF_NOTE = "Local draft withdrawn (cut off at its length limit)."
OFF_QUESTION_NOTE = "Local draft withdrawn (it did not answer the question asked)."


def part_way_note(step: str) -> str:
    return f"Local draft withdrawn (it began a procedure at step {step})."


def failed_check_note(check: GroundingResult) -> str:
    """One line for a draft that failed the check: what kind of claim was unsupported."""
    if check.passed:
        detail = "it rests on no passage"
    else:
        kinds = [span.kind for span in check.unsupported[:5]]
        noun = kinds[0] if len(set(kinds)) == 1 else "claim"
        detail = f"{len(kinds)} unsupported {noun}{'s' if len(kinds) != 1 else ''}" if kinds else "no spans"
    return f"Local draft withdrawn (failed the check: {_clip(detail, 36)})."


def closing_notes(turn: Turn, quote_note: str = EXTRACTIVE_NOTE) -> list[dict]:
    """What the finished turn says about itself: why it failed (the whole error, with its
    fix), or in one sentence what degraded the answer; and that a quote is a quote
    (`quote_note`: a confident quote is not standing in for anything)."""
    notes = []
    if turn.error:
        if turn.outcome == "failed":
            notes.append({"kind": "failed", "text": " ".join(line.strip() for line in turn.error.split("\n"))})
        else:
            first_line = turn.error.strip().split("\n", 1)[0].strip()
            spans = split_sentences(first_line)  # the cutter the check uses: "e.g." ends no sentence
            notes.append({"kind": "degraded", "text": first_line[spans[0][0]:spans[0][1]] if spans else first_line})
    if turn.outcome == "extractive":
        notes.append({"kind": "extractive", "text": quote_note})
    return notes


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"

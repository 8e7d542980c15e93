"""Handoff tickets: a turn a person should look at, written up for them.

The pipeline marks a turn `needs_human` (nothing relevant in the docs, an answer that failed
the check, a pricing question answered without the frontier, a customer who asked for a
person), and the user can hand any turn over. A ticket holds the question, the conversation
so far, the best passages, the attempted answer and the reason, as JSON (for a helpdesk
import) and Markdown (to paste into an email or a ticket).
"""
from __future__ import annotations

from typing import Any

from app.core.ledger.turns import Turn

PASSAGES_IN_TICKET = 3


def ticket(turn: Turn, conversation: list[Turn]) -> dict[str, Any]:
    return {
        "ticket": turn.id,
        "status": turn.handoff,
        "reason": turn.needs_human,
        "asked_at": turn.created_at,
        "question": turn.question,
        "conversation": [{"at": t.created_at, "question": t.question, "answer": t.answer}
                         for t in conversation if t.id != turn.id],
        "attempted_answer": turn.answer,
        "answered_by": turn.answered_by,
        "outcome": turn.outcome,
        "passages": [{"file": s.get("file", ""), "heading": s.get("heading", ""), "score": s.get("score"),
                      "text": s.get("text", "")} for s in turn.sources[:PASSAGES_IN_TICKET]],
    }


def ticket_markdown(data: dict[str, Any]) -> str:
    lines = [f"# Handoff #{data['ticket']}: {data['reason']}", "",
             f"Asked {data['asked_at'][:19].replace('T', ' ')} UTC · status: {data['status']}", "",
             "## Question", "", data["question"], ""]
    if data["conversation"]:
        lines += ["## Earlier in the conversation", ""]
        for earlier in data["conversation"]:
            lines += [f"- **Q:** {earlier['question']}", f"  **A:** {_one_line(earlier['answer'])}"]
        lines.append("")
    lines += ["## Attempted answer", f"({data['answered_by']}, {data['outcome']})", "",
              data["attempted_answer"] or "(none)", "", "## Best passages", ""]
    for number, passage in enumerate(data["passages"], 1):
        heading = f" § {passage['heading']}" if passage["heading"] else ""
        lines += [f"{number}. `{passage['file']}`{heading}", "", *(f"   > {line}" for line in passage["text"].splitlines()), ""]
    if not data["passages"]:
        lines += ["(none relevant)", ""]
    return "\n".join(lines)


def _one_line(text: str, width: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"

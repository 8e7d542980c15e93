"""What the pipeline yields while it answers, in order: Retrieved, Routed, then per draft
Drafting, Token…, maybe DraftWithdrawn and Notices, and always Answered last.

Notice kinds are a closed set a front end can rely on (see `NOTICE_KINDS`).
"""
from __future__ import annotations

from dataclasses import dataclass

from app.core.answer.router import RouteDecision
from app.core.events import Event
from app.core.ledger.turns import Turn
from app.core.passage import Passage

# frontier-unavailable: no key or over budget; frontier-failed: the call failed after the
# SDK's retries; local-only: nothing could be sent; extractive: the answer quotes the docs;
# ledger-failed: the answer is shown but could not be logged.
NOTICE_KINDS = ("frontier-unavailable", "frontier-failed", "local-only", "extractive", "ledger-failed", "info")


@dataclass(frozen=True)
class Retrieved(Event):
    passages: list[Passage]


@dataclass(frozen=True)
class Routed(Event):
    decision: RouteDecision


@dataclass(frozen=True)
class Drafting(Event):
    """A model starts a draft; the Tokens that follow belong to it until it is kept or withdrawn."""
    model: str
    kind: str  # local | frontier


@dataclass(frozen=True)
class Token(Event):
    text: str


@dataclass(frozen=True)
class DraftWithdrawn(Event):
    """The streamed draft must not be shown as an answer (failed the check, or its model failed).

    `streamed` is False when the model failed before sending any text: there is no draft to
    take back, only the placeholder, and the reason arrives as a Notice.
    """
    reason: str
    streamed: bool = True
    note: str = ""  # the one line to show under the answer in its place


@dataclass(frozen=True)
class Notice(Event):
    """Something the user should know, e.g. the frontier is unavailable and why.

    `kind` lets a front end decide how loud to be: "frontier-unavailable" (no key, over
    budget), "frontier-failed" (the call failed: unreachable, errors after retries),
    "local-only" (nothing could be sent), "extractive" (the answer quotes the docs).
    """
    text: str
    kind: str = "info"


@dataclass(frozen=True)
class Answered(Event):
    turn: Turn

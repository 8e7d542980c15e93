"""What a turn cost, and what an all-frontier desk would have paid for the same question.

The ledger's savings are the difference, so the counterfactual counts only what is real: a
turn nobody answered claims no saving, nor does one the frontier was wanted for and could not
answer (its docs quote is a fallback, not a saving), nor the docs lines beneath a local draft.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from app.core.ledger.turns import Turn
from app.core.providers.base import Usage
from app.core.providers.pricing import estimate_tokens, prices_for
from app.core.settings import Settings
from app.core.text import draft_part


@dataclass
class Spend:
    """What one turn used, filled in as the pipeline runs it."""
    local: Usage = field(default_factory=Usage)
    frontier: Usage = field(default_factory=Usage)
    frontier_wanted: bool = False  # routed or escalated to the frontier
    frontier_answered: bool = False
    prompt_chars: int = 0  # the last prompt built: what the all-frontier desk would have sent


def cost_turn(turn: Turn, spend: Spend, settings: Settings) -> None:
    """Set the turn's tokens, what it cost and what the all-frontier desk would have paid."""
    turn.input_tokens = spend.local.input_tokens + spend.frontier.input_tokens
    turn.output_tokens = spend.local.output_tokens + spend.frontier.output_tokens
    turn.frontier_cost_usd = round(_frontier_billed(spend.frontier, settings), 8)
    turn.cost_usd = round(prices_for(settings, "local").cost(spend.local) + turn.frontier_cost_usd, 8)
    turn.counterfactual_cost_usd = _counterfactual_cost(turn, spend, settings)


def _frontier_billed(usage: Usage, settings: Settings) -> float:
    """What the frontier billed: priced by the provider itself (a failover between two price
    lists), else at the frontier's prices."""
    return usage.billed_usd if usage.billed_usd is not None else prices_for(settings, "frontier").cost(usage)


def _counterfactual_cost(turn: Turn, spend: Spend, settings: Settings) -> float:
    """The frontier call itself when it answered; else the same prompt and answer at frontier
    prices; no saving for a turn nobody answered or the frontier was wanted for."""
    if spend.frontier_answered:
        return round(_frontier_billed(spend.frontier, settings), 8)
    if turn.answered_by == "none" or spend.frontier_wanted:
        return turn.cost_usd
    usage = Usage(
        estimate_tokens("x" * spend.prompt_chars) if spend.prompt_chars else estimate_tokens(turn.question),
        estimate_tokens(draft_part(turn.answer)),  # the docs lines under a draft claim no saving
    )
    return round(prices_for(settings, "frontier").cost(usage), 8)

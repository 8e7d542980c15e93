"""What a turn cost, and what it would have cost had every question gone to the frontier.

Prices are per million tokens, from settings. The counterfactual prices this turn's own
prompt and answer at frontier rates: the same passages and question would have been sent,
and an answer of about the same length returned. Token counts come from whichever model
answered (tokenizers differ by a few percent; the ledger's savings are an estimate, and
the README says so).
"""
from __future__ import annotations

from dataclasses import dataclass

from app.core.providers.base import Usage
from app.core.settings import Settings


@dataclass(frozen=True)
class Prices:
    input_usd_per_mtok: float
    output_usd_per_mtok: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input_usd_per_mtok + usage.output_tokens * self.output_usd_per_mtok) / 1e6


def prices_for(settings: Settings, kind: str) -> Prices:
    """Prices of the "local" or "frontier" model."""
    section = settings.local if kind == "local" else settings.frontier
    return Prices(section.input_usd_per_mtok, section.output_usd_per_mtok)


def estimate_tokens(text: str) -> int:
    """Frontier-tokenizer estimate for text no model has counted (e.g. an extractive answer)."""
    return max(1, round(len(text) / 4)) if text else 0

"""Frontier budgets: daily and monthly caps on what the frontier bills, read from the ledger.

Spend comes from the ledger (`frontier_cost_usd`, on every route), so it survives restarts
and counts every process on the data dir. At a cap, escalations stop and are answered from
the docs; local answers and docs quotes cost nothing and are never blocked. At `WARN_AT` of
a cap the front ends warn.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

WARN_AT = 0.8  # share of a cap at which the front ends warn


@dataclass(frozen=True)
class BudgetUse:
    period: str  # "daily" (UTC day) or "monthly" (UTC calendar month)
    spent_usd: float
    cap_usd: float
    setting: str  # the setting that sets the cap, for the fix

    @property
    def share(self) -> float:
        return self.spent_usd / self.cap_usd

    @property
    def exhausted(self) -> bool:
        return self.spent_usd >= self.cap_usd

    @property
    def near(self) -> bool:
        return self.share >= WARN_AT

    def describe(self) -> str:
        """'daily frontier budget: $0.85 of $1.00 (85%)'."""
        return f"{self.period} frontier budget: {usd(self.spent_usd)} of {usd(self.cap_usd)} ({self.share:.0%})"

    def refusal(self) -> str:
        return (f"The {self.period} frontier budget is used up ({usd(self.spent_usd)} of {usd(self.cap_usd)}): "
                f"escalations are answered from your docs; raise {self.setting} in frontdesk.toml to escalate again.")


def budget_use(frontier_settings, spend_since, now: datetime | None = None) -> list[BudgetUse]:
    """Each cap that is set, with what the frontier has billed in its period so far.

    `spend_since(iso)` is the ledger's; `frontier_settings` the typed `settings.frontier`.
    """
    now = now or datetime.now(timezone.utc)
    periods = [
        ("daily", frontier_settings.daily_budget_usd, now.strftime("%Y-%m-%d"), "frontier.daily_budget_usd"),
        ("monthly", frontier_settings.monthly_budget_usd, now.strftime("%Y-%m-01"), "frontier.monthly_budget_usd"),
    ]
    return [BudgetUse(period, spend_since(start), cap, setting) for period, cap, start, setting in periods if cap > 0]


def usd(value: float) -> str:
    """Dollars with cents, or with the first two significant digits of a tiny amount ($0.000018)."""
    if value == 0 or abs(value) >= 0.1:
        return f"${value:.2f}"
    return f"${value:.{min(8, 1 - math.floor(math.log10(abs(value))))}f}"

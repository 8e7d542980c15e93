"""The frontier as the pipeline sees it when a fallback is configured: the primary provider,
and a second one (`[fallback]`, any OpenAI-compatible endpoint) when the primary fails before
its first token, is paused by its breaker, or has no key.

A call that fails after text was streamed is not retried elsewhere: the pipeline withdraws
that text and answers from the docs, so a customer never reads half of one model's answer
glued to another's. Each provider bills at its own prices: the call's `Usage` carries the
dollars (`billed_usd`) and who answered, and the pipeline records why a failover happened.
"""
from __future__ import annotations

from typing import Iterator

from app.core.errors import ProviderError
from app.core.providers.base import Prompt, Provider, Usage
from app.core.providers.pricing import Prices


class FailoverProvider:
    kind = "frontier"

    def __init__(self, primary: Provider, primary_prices: Prices, fallback: Provider, fallback_prices: Prices):
        self.primary, self.fallback = primary, fallback
        self.prices = {id(primary): primary_prices, id(fallback): fallback_prices}
        self.model_name = primary.model_name

    @property
    def available(self) -> bool:
        return self.primary.available or self.fallback.available

    def unavailable_reason(self) -> str | None:
        if self.available:
            return None
        return f"{self.primary.unavailable_reason()} The fallback: {self.fallback.unavailable_reason()}"

    def generate(self, prompt: Prompt, usage: Usage, max_tokens: int | None = None) -> Iterator[str]:
        if usage.billed_usd is None:
            usage.billed_usd = 0.0
        if not self.primary.available:
            usage.failover = (f"{self.primary.model_name} not used ({_first_sentence(self.primary.unavailable_reason())}); "
                              f"answered by the fallback, {self.fallback.model_name}")
        else:
            streamed = False
            try:
                for text in self._billed(self.primary, prompt, usage, max_tokens):
                    streamed = True
                    yield text
                return
            except ProviderError as error:
                if streamed or not self.fallback.available:
                    raise
                usage.failover = (f"{self.primary.model_name} failed ({error.title}); "
                                  f"answered by the fallback, {self.fallback.model_name}")
        yield from self._billed(self.fallback, prompt, usage, max_tokens)

    def _billed(self, provider: Provider, prompt: Prompt, usage: Usage, max_tokens: int | None) -> Iterator[str]:
        """`provider`'s stream; its tokens and dollars are added to `usage` however it ends."""
        own = Usage()
        try:
            yield from provider.generate(prompt, own, max_tokens)
            usage.answered_by_model = provider.model_name
        finally:
            usage.input_tokens += own.input_tokens
            usage.output_tokens += own.output_tokens
            usage.hit_limit = usage.hit_limit or own.hit_limit
            usage.billed_usd += self.prices[id(provider)].cost(own)

    def close(self) -> None:
        for provider in (self.primary, self.fallback):
            getattr(provider, "close", lambda: None)()


def _first_sentence(text: str | None) -> str:
    return (text or "unavailable").split(": ", 1)[0].split(". ", 1)[0].rstrip(".")

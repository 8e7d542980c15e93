"""One small interface for every model that can answer a question.

A provider streams text from `generate` and records token usage on the `Usage` object it
is given, so the pipeline can cost the turn whether the stream finished, failed or was
stopped. `available` says up front whether a call can be tried, so the pipeline
routes around a provider without calling it. Adding a provider is one file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    hit_limit: bool = False  # the model stopped at max_tokens: the text is cut off
    # Set by a provider that prices its own calls (a failover between two price lists):
    billed_usd: float | None = None  # dollars billed; None = price the tokens at the kind's prices
    answered_by_model: str = ""  # the model that wrote the answer, when not the provider's own name
    failover: str = ""  # why a second provider answered, for the turn's record


@dataclass(frozen=True)
class Prompt:
    system: str  # instructions; never contains document text
    user: str  # the question and the delimited passages
    # Worked examples as earlier (user, assistant) turns: a small model imitates a shown turn
    # far better than a described one, and copies text less from a turn than from its own message.
    shots: tuple[tuple[str, str], ...] = ()

    def messages(self, fold_system: bool = False) -> list[dict[str, str]]:
        """Chat messages; `fold_system` puts the instructions into the first user turn (for
        models whose template has no system role)."""
        turns = [*self.shots, (self.user, None)]
        messages: list[dict[str, str]] = [] if fold_system else [{"role": "system", "content": self.system}]
        for index, (user, assistant) in enumerate(turns):
            content = f"{self.system}\n\n{user}" if fold_system and index == 0 else user
            messages.append({"role": "user", "content": content})
            if assistant is not None:
                messages.append({"role": "assistant", "content": assistant})
        return messages


class Provider(Protocol):
    kind: str  # "local" or "frontier"
    model_name: str  # shown to the user and written to the ledger

    @property
    def available(self) -> bool:
        """Whether a call can be tried at all (a key is set, the model file is usable)."""
        ...

    def unavailable_reason(self) -> str | None:
        """Why not, for the user (what is wrong and how to fix it), or None when available."""
        ...

    def generate(self, prompt: Prompt, usage: Usage, max_tokens: int | None = None) -> Iterator[str]:
        """Yield answer text as it is produced; fill `usage` as tokens are counted.

        Raises ProviderError (with a user-facing title and fix) for failures the pipeline
        can fall back from: missing key, network down, 429/5xx/529, timeout.
        """
        ...

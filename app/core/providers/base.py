"""One small interface for every model that can answer a question.

A provider streams text from `generate` and records token usage on the `Usage` object it
is given, so the pipeline can cost the turn whether the stream finished, failed or was
stopped. Capabilities are plain attributes. Adding a provider is one file.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Prompt:
    system: str  # instructions; never contains document text
    user: str  # the question and the delimited passages


class Provider(Protocol):
    kind: str  # "local" or "frontier"
    model_name: str  # shown to the user and written to the ledger

    def generate(self, prompt: Prompt, usage: Usage, max_tokens: int | None = None) -> Iterator[str]:
        """Yield answer text as it is produced; fill `usage` as tokens are counted.

        Raises ProviderError (with a user-facing title and fix) for failures the pipeline
        can fall back from: missing key, network down, 429/5xx/529, timeout.
        """
        ...

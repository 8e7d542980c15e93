"""A model whose every reply is written by the test: each fallback path of the pipeline pinned.

The bundled tiny model is real but not deterministic enough to say *which* path a turn takes
(its draft may pass the check one run and fail the next), so tests that run it can only
accept either outcome. `ScriptedProvider` implements the same `Provider` protocol
(app/core/providers/base.py) with replies fixed in advance, one step per call of `generate`:

    ScriptedProvider("local", "scripted-local", [
        "Go to the login page and click Forgot password?",      # streamed word by word
        ModelError("The local model crashed", "Restart it."),    # raised before the first token
        FailAfter("Go to the", ProviderError("Connection reset")),  # some text, then the error
    ])
    ScriptedProvider("frontier", "scripted-frontier", available=False, reason="No key.")

An unavailable provider says so up front (`available`, `unavailable_reason()`), and a call
made anyway fails on the first `next()` as the real ones do: ModelError for the local kind,
ProviderError (never sent) for the frontier kind.

Usage is added to the `Usage` the pipeline passes in, as the real providers do: the input
when a reply starts (prompt characters // 4), the output as text streams (text characters // 4),
so a reply that fails or is stopped part way has cost what it sent. An error raised before
the first token costs nothing. Every call's prompt is kept in `.prompts`; a call beyond the
script raises `UnscriptedCall` (which the pipeline may catch, so tests assert on `.prompts`).

The real-model tests (tests/test_assistant.py, tests/test_local_tier.py, tests/test_tui.py)
stay: they check the pipeline against what a real model writes; these pin its paths.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Sequence, Union

from app.core.errors import ModelError, ProviderError
from app.core.providers.base import Prompt, Usage


@dataclass(frozen=True)
class FailAfter:
    """A step that streams `text`, then raises `error` (a stream cut off part way)."""
    text: str
    error: BaseException


Step = Union[str, BaseException, FailAfter]


class UnscriptedCall(AssertionError):
    """`generate` was called more times than the script has steps."""


def words(text: str) -> list[str]:
    """The pieces `text` streams in: each word with the whitespace after it ("".join gives text back)."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


class ScriptedProvider:
    """A `Provider` that replies from a script (see the module docstring)."""

    def __init__(self, kind: str, model_name: str, steps: Sequence[Step] = (), *,
                 available: bool = True, reason: str | None = None):
        assert kind in ("local", "frontier"), kind
        self.kind = kind
        self.model_name = model_name
        self.steps = list(steps)
        self._available = available
        self._reason = reason or f"The scripted {kind} model is unavailable."
        self.prompts: list[Prompt] = []  # every prompt `generate` was called with, in order

    def __repr__(self) -> str:
        return f"ScriptedProvider({self.kind!r}, {self.model_name!r}, calls={len(self.prompts)})"

    @property
    def available(self) -> bool:
        return self._available

    def unavailable_reason(self) -> str | None:
        return None if self._available else self._reason

    def generate(self, prompt: Prompt, usage: Usage, max_tokens: int | None = None) -> Iterator[str]:
        """Record the prompt now; play the next step on the first `next()`, as a real stream would."""
        self.prompts.append(prompt)
        call = len(self.prompts)
        if not self._available:
            step: Step = (ModelError(self._reason) if self.kind == "local" else ProviderError(self._reason, sent=False))
        elif call > len(self.steps):
            step = UnscriptedCall(f"{self!r} has {len(self.steps)} scripted step(s); this is call {call}")
        else:
            step = self.steps[call - 1]
        return self._play(step, prompt, usage)

    @staticmethod
    def _play(step: Step, prompt: Prompt, usage: Usage) -> Iterator[str]:
        if isinstance(step, BaseException):
            raise step  # before the first token: nothing was generated, nothing is billed
        text, error = (step.text, step.error) if isinstance(step, FailAfter) else (step, None)
        assert isinstance(text, str), f"a step is a string, an exception or FailAfter, not {step!r}"
        usage.input_tokens += (len(prompt.system) + len(prompt.user)) // 4
        sent = 0
        for piece in words(text):
            usage.output_tokens += (sent + len(piece)) // 4 - sent // 4  # total so far: sent // 4
            sent += len(piece)
            yield piece
        if error is not None:
            raise error

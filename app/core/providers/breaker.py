"""A circuit breaker for the frontier: stop calling a provider that keeps failing.

Without it, every escalation against a dead or erroring endpoint pays the SDK's retries and
the full timeout again. After `FAILURES` failed calls within `WINDOW` seconds the breaker
opens: escalations go straight to the docs for `COOLDOWN` seconds, and the provider reads as
unavailable (one notice, not one per question). Then one call is let through (half-open):
success closes the breaker, failure opens it for another cool-down.

The SDK's retries stay the only retry loop: the breaker only decides whether to call at
all. Its state is a small JSON file in the data dir, so it holds across the questions of
one `ask --stdin` run, across separate `frontdesk ask` commands, and shows in
`frontdesk config`.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from app.core.errors import ProviderError
from app.core.providers.base import Prompt, Provider, Usage

FAILURES = 3  # failed calls...
WINDOW = 300.0  # ...within this many seconds open the breaker (a hung call alone takes frontier.timeout)
COOLDOWN = 60.0  # seconds the breaker stays open before one probe call


@dataclass
class BreakerState:
    failures: list[float] = field(default_factory=list)  # wall-clock times of recent failures
    opened_at: float | None = None
    last_error: str = ""
    probe_started: float | None = None  # a half-open probe call is in flight (a stale one expires)


class Breaker:
    def __init__(self, path: Path | None, clock: Callable[[], float] = time.time, name: str = "Claude"):
        self.path = path
        self.name = name  # the provider, as the user knows it
        self.clock = clock
        self._lock = threading.Lock()
        self._memory = BreakerState()  # used when there is no file (or it can't be written)

    # --- state on disk (best effort: a read-only data dir just means a breaker per process) --

    def _load(self) -> BreakerState:
        if self.path is None:
            return self._memory
        try:
            return BreakerState(**json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError):
            return BreakerState()

    def _save(self, state: BreakerState) -> None:
        if self.path is None:
            self._memory = state
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.path.with_suffix(f".tmp{os.getpid()}")
            temporary.write_text(json.dumps(asdict(state)))
            temporary.replace(self.path)  # atomic: another process never reads half a file
        except OSError:
            self.path, self._memory = None, state

    # --- decisions ----------------------------------------------------------------------------

    def open_reason(self) -> str | None:
        """Why calls are paused, or None when a call may be made now."""
        with self._lock:
            state = self._load()
            if state.opened_at is None:
                return None
            now = self.clock()
            probing = state.probe_started is not None and now - state.probe_started < COOLDOWN
            if now - state.opened_at >= COOLDOWN and not probing:
                return None  # half-open: the next call is the probe
            return (f"{self.name} is paused after {FAILURES} failed calls (last: {state.last_error}); "
                    f"it is tried again after a {COOLDOWN:g} s pause.")

    def before_call(self) -> None:
        with self._lock:
            state = self._load()
            if state.opened_at is not None:
                state.probe_started = self.clock()
                self._save(state)

    def succeeded(self) -> None:
        with self._lock:
            self._save(BreakerState())

    def failed(self, error: ProviderError) -> None:
        with self._lock:
            state = self._load()
            now = self.clock()
            state.failures = [t for t in state.failures if now - t < WINDOW] + [now]
            state.last_error = error.title
            if state.probe_started is not None or len(state.failures) >= FAILURES:
                state.opened_at, state.probe_started = now, None
            self._save(state)

    def abandoned(self) -> None:
        """The call ended without a verdict on the endpoint (stopped by the user): no probe pending."""
        with self._lock:
            state = self._load()
            if state.probe_started is not None:
                state.probe_started = None
                self._save(state)

    def status(self) -> str:
        """One line for `frontdesk config` and the app: closed, open (and until when), or half-open."""
        with self._lock:
            state = self._load()
        if state.opened_at is None:
            return f"closed ({len(state.failures)} recent failure(s))" if state.failures else "closed"
        left = COOLDOWN - (self.clock() - state.opened_at)
        if left > 0:
            return f"open: {self.name} paused for {left:.0f} s more after: {state.last_error}"
        return "half-open: the next escalation tries Claude again"


class GuardedProvider:
    """A provider behind a breaker: unavailable while the breaker is open; every call's
    outcome is reported to the breaker. Everything else is the wrapped provider's."""

    def __init__(self, provider: Provider, breaker: Breaker):
        self.provider = provider
        self.breaker = breaker
        self.kind = provider.kind
        self.model_name = provider.model_name

    @property
    def available(self) -> bool:
        return self.provider.available and self.breaker.open_reason() is None

    def unavailable_reason(self) -> str | None:
        return self.provider.unavailable_reason() or self.breaker.open_reason()

    def generate(self, prompt: Prompt, usage: Usage, max_tokens: int | None = None) -> Iterator[str]:
        self.breaker.before_call()
        try:
            yield from self.provider.generate(prompt, usage, max_tokens)
        except ProviderError as error:
            if error.sent or error.retryable:  # a missing key is not the endpoint failing
                self.breaker.failed(error)
            else:
                self.breaker.abandoned()
            raise
        except BaseException:  # stopped by the user, or a surprise the pipeline reports
            self.breaker.abandoned()
            raise
        self.breaker.succeeded()

    def __getattr__(self, name: str):
        return getattr(self.provider, name)

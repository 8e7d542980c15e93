"""The frontier provider: Anthropic's Messages API through the official `anthropic` SDK.

`generate` streams the answer and fills `Usage` from the stream itself: input tokens as
soon as `message_start` arrives, output tokens whenever the API reports them, so a turn
can be costed even if the consumer stops early or the stream fails half way.

Every failure leaves as a `ProviderError` with a title, a fix and `retryable`. The SDK
already retries 408/409/429/5xx/529 and connection errors (`frontier.max_retries`), so
there is no second retry loop here: an error that arrives has outlived those retries.

The API key never appears in an error: errors are built from our own wording plus the
API's error message, the key is scrubbed from all of it, and the SDK exception (whose
request object carries the key in its headers) is not chained onto the ProviderError.

`anthropic` is imported on first use, not at import time: it costs startup time that
local-only runs should not pay.
"""
from __future__ import annotations

import inspect
import math
import threading
from typing import TYPE_CHECKING, Any, Iterator

from app.core.errors import ProviderError
from app.core.providers.base import Prompt, Usage
from app.core.trust.secrets import scrub

if TYPE_CHECKING:
    from anthropic import Anthropic

    from app.core.settings import Settings

DEFAULT_BASE_URL = "https://api.anthropic.com"
KEYS_URL = "https://console.anthropic.com/settings/keys"
NO_KEY_TITLE = "No ANTHROPIC_API_KEY set: escalated questions are answered from your docs only."
NO_KEY_FIX = "Set ANTHROPIC_API_KEY in your environment or `api_key` under [frontier] in frontdesk.toml."


class AnthropicProvider:
    kind = "frontier"

    def __init__(self, settings: "Settings"):
        self.model_name: str = settings.frontier.model
        self.max_tokens: int = settings.frontier.max_tokens
        self.base_url: str | None = settings.frontier.base_url or None  # None: the SDK's default
        self.timeout: float = settings.frontier.timeout
        self.max_retries: int = settings.frontier.max_retries
        # frontier.timeout bounds the whole call: the SDK's attempts share it, so an endpoint
        # that accepts and never answers costs frontier.timeout, not (retries + 1) times it.
        self.attempt_timeout: float = self.timeout / (self.max_retries + 1)
        self._api_key: str | None = settings.api_key or None
        self._key_source: str = settings.api_key_source or "ANTHROPIC_API_KEY"
        self._client: Anthropic | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"AnthropicProvider(model={self.model_name!r}, available={self.available})"

    # --- availability ---
    @property
    def available(self) -> bool:
        return self._api_key is not None

    def unavailable_reason(self) -> str | None:
        """Why escalation cannot happen (title and fix, for the user), or None if it can."""
        return None if self.available else f"{NO_KEY_TITLE} {NO_KEY_FIX}"

    # --- calls ---
    def generate(self, prompt: Prompt, usage: Usage, max_tokens: int | None = None) -> Iterator[str]:
        """Yield the answer's text as it streams; add this call's tokens to `usage`.

        Raises ProviderError (on the first `next()`, as this is a generator) for a missing
        key, and for any failure of the call, including one in the middle of the stream.
        """
        client = self._get_client()
        base_in, base_out = usage.input_tokens, usage.output_tokens
        chars, final_usage, finished = 0, False, False
        failure: ProviderError | None = None
        try:
            with client.messages.stream(**self._request(prompt, max_tokens)) as stream:
                for event in stream:
                    if event.type == "message_start":
                        usage.input_tokens = base_in + (event.message.usage.input_tokens or 0)
                        usage.output_tokens = base_out + (event.message.usage.output_tokens or 0)
                    elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                        chars += len(event.delta.text)
                        yield event.delta.text
                    elif event.type == "message_delta":
                        # counts on message_delta are cumulative totals for the message
                        usage.output_tokens = base_out + event.usage.output_tokens
                        if event.usage.input_tokens is not None:
                            usage.input_tokens = base_in + event.usage.input_tokens
                        final_usage = True
                        usage.hit_limit = usage.hit_limit or event.delta.stop_reason == "max_tokens"
                    elif event.type == "message_stop":
                        finished = True
        except _sdk_errors() as error:
            failure = self._translate(error)
        finally:
            if not final_usage:
                # Stopped early or failed before the final count: the API bills what it
                # generated, so don't under-count the text we did receive (~4 chars a token).
                usage.output_tokens = max(usage.output_tokens, base_out + math.ceil(chars / 4))
        # raised here, outside the except block, so the SDK error is not attached as context
        if failure is not None:
            raise failure
        if not finished:
            raise self._error(
                "The answer from the Anthropic API was cut off: the stream ended before the message did.",
                "Ask again. If it keeps happening, a proxy between you and the API may be closing long responses.",
                retryable=True,
            )

    def complete(self, prompt: Prompt, usage: Usage, max_tokens: int | None = None) -> str:
        """The whole answer in one non-streaming call; adds its tokens to `usage`."""
        client = self._get_client()
        failure: ProviderError | None = None
        try:
            message = client.messages.create(**self._request(prompt, max_tokens))
        except _sdk_errors() as error:
            failure = self._translate(error)
        if failure is not None:
            raise failure
        usage.input_tokens += message.usage.input_tokens or 0
        usage.output_tokens += message.usage.output_tokens or 0
        return "".join(block.text for block in message.content if block.type == "text")

    def close(self) -> None:
        """Release the HTTP connection pool (a later call makes a new client)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # --- internals ---
    def _request(self, prompt: Prompt, max_tokens: int | None) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": max_tokens or self.max_tokens,
            "messages": [{"role": "user", "content": prompt.user}],
        }
        if prompt.system:  # the API rejects an empty system prompt
            request["system"] = prompt.system
        return request

    def _get_client(self) -> "Anthropic":
        if self._api_key is None:
            raise ProviderError(NO_KEY_TITLE, NO_KEY_FIX, retryable=False, sent=False)
        with self._lock:
            if self._client is None:
                import anthropic

                options: dict[str, Any] = {
                    "api_key": self._api_key,
                    "base_url": self.base_url,
                    "timeout": self.attempt_timeout,
                    "max_retries": self.max_retries,
                }
                if "open_telemetry" in inspect.signature(anthropic.Anthropic).parameters:
                    # No SDK tracing spans (which can carry prompt text) and no trace headers sent.
                    options["open_telemetry"] = {"traces": False, "propagation": False}
                self._client = anthropic.Anthropic(**options)
            return self._client

    def _where(self) -> str:
        url = str(self._client.base_url) if self._client is not None else (self.base_url or DEFAULT_BASE_URL)
        return url.rstrip("/")

    def _scrub(self, text: str) -> str:
        return scrub(text, self._api_key)

    def _error(self, title: str, fix: str, retryable: bool, sent: bool = True) -> ProviderError:
        return ProviderError(self._scrub(title), self._scrub(fix), retryable=retryable, sent=sent)

    def _translate(self, error: BaseException) -> ProviderError:
        import anthropic

        timeouts, transport = _transport_errors()
        if isinstance(error, (anthropic.APITimeoutError, *timeouts)):
            attempts = self.max_retries + 1
            tries = f" ({attempts} attempts of {self.attempt_timeout:.3g} s)" if attempts > 1 else ""
            return self._error(
                f"The Anthropic API did not answer within {self.timeout:g} s{tries}.",
                "Ask again later, or raise frontier.timeout (FRONTDESK_FRONTIER_TIMEOUT).",
                retryable=True,
            )
        if isinstance(error, anthropic.APIConnectionError):
            return self._error(
                f"Cannot reach the Anthropic API at {self._where()} ({_root_cause(error)}).",
                "Check your internet connection and proxy, and frontier.base_url if you set it. "
                "Questions are answered from your docs meanwhile.",
                retryable=True,
                sent=not _never_connected(error),
            )
        if isinstance(error, transport):  # the SDK does not wrap failures in the middle of a stream
            return self._error(
                f"The connection to the Anthropic API at {self._where()} dropped mid-answer ({_root_cause(error)}).",
                "Ask again. If it keeps happening, check your network or proxy.",
                retryable=True,
            )
        if isinstance(error, anthropic.APIStatusError):
            return self._translate_status(error)
        return self._error(
            f"Unexpected response from the Anthropic API ({type(error).__name__}).",
            f"Ask again; if it persists, check frontier.base_url ({self._where()}) points at the Anthropic API.",
            retryable=False,
        )

    def _translate_status(self, error: Any) -> ProviderError:
        # An `event: error` in the middle of a stream arrives with the stream's status, 200,
        # so the error type in the body decides, and the status code only backs it up.
        status, kind = error.status_code, error.type or ""
        label = f"{status} {kind}".strip() if status != 200 else kind or "error"
        detail = _shorten(error.api_message)
        code = getattr(error, "error_code", None) or ""
        if status == 401 or kind == "authentication_error":
            return self._error(
                f"The Anthropic API rejected the key ({label}).",
                f"Check the key from {self._key_source}: it may be mistyped, revoked or for another "
                f"organization. Create one at {KEYS_URL}.",
                retryable=False,
            )
        if status == 403 or kind == "permission_error":
            return self._error(
                f"The Anthropic API key is not allowed to do this ({label}){detail}.",
                f"Check the key's workspace and its access to model '{self.model_name}' (frontier.model).",
                retryable=False,
            )
        if status == 402 or kind == "billing_error" or "spend_limit" in code:
            return self._error(
                f"The Anthropic account cannot pay for this request ({label}){detail}.",
                "Check billing and spend limits in the Anthropic console.",
                retryable=False,
            )
        if status == 429 or kind == "rate_limit_error":
            retry_after = error.response.headers.get("retry-after") if status == 429 else None
            seconds = retry_after.strip() if retry_after and retry_after.strip().isdigit() else None
            wait = f"Wait {seconds} s and ask again" if seconds else "Ask again in a minute"
            return self._error(
                f"The Anthropic API is rate limiting this key ({label}).",
                f"{wait}, or lower frontier.max_tokens / top_k to send fewer tokens.",
                retryable=True,
            )
        if status == 529 or kind == "overloaded_error":
            return self._error(
                f"The Anthropic API is overloaded ({label}).",
                "Ask again in a little while; questions are answered from your docs meanwhile.",
                retryable=True,
            )
        if status >= 500 or kind == "api_error":
            return self._error(
                f"The Anthropic API failed with a server error ({label}).",
                "Ask again in a little while; questions are answered from your docs meanwhile.",
                retryable=True,
            )
        if status == 404 or kind == "not_found_error":
            return self._error(
                f"The Anthropic API does not know this model or address ({label}){detail}.",
                f"Check frontier.model ('{self.model_name}') and frontier.base_url ({self._where()}).",
                retryable=False,
            )
        if status == 413 or kind == "request_too_large":
            return self._error(
                f"The question and passages are too large for the Anthropic API ({label}).",
                "Lower top_k or chunk_tokens so fewer passages are sent.",
                retryable=False,
            )
        return self._error(
            f"The Anthropic API refused the request ({label}){detail}.",
            f"Check frontier.model ('{self.model_name}') and frontier.max_tokens ({self.max_tokens}).",
            retryable=status in (408, 409),
        )


def _sdk_errors() -> tuple[type[BaseException], ...]:
    import anthropic

    return (anthropic.AnthropicError, *_transport_errors()[1])


def _transport_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """(timeout, transport) exception classes of the HTTP libraries the SDK may be using.

    anthropic 2.x is built on `httpx2`, older releases on `httpx`; a failure in the middle
    of a stream reaches us unwrapped, as one of these.
    """
    timeouts, transport = [], []
    for name in ("httpx2", "httpx"):
        try:
            module = __import__(name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        transport.append(module.TransportError)
    return tuple(timeouts), tuple(transport)


def _never_connected(error: BaseException) -> bool:
    """True when the request cannot have left: the connection was refused or the name didn't resolve."""
    import socket

    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, (ConnectionRefusedError, socket.gaierror)):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _root_cause(error: BaseException) -> str:
    """The innermost cause's message, e.g. "[Errno 111] Connection refused"."""
    seen = set()
    while error.__cause__ is not None and id(error) not in seen:
        seen.add(id(error))
        error = error.__cause__
    text = str(error).strip() or type(error).__name__
    return _shorten(text, prefix="")


def _shorten(text: str | None, limit: int = 200, prefix: str = ": ") -> str:
    if not text:
        return ""
    text = " ".join(str(text).split())
    return prefix + (text if len(text) <= limit else text[: limit - 1] + "…")

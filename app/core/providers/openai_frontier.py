"""A second frontier provider: any OpenAI-compatible chat endpoint, through the official `openai` SDK.

OpenAI itself, Azure OpenAI (its v1 API: `https://RESOURCE.openai.azure.com/openai/v1`), or a
team's vLLM box: one class, configured with plain values (`frontier.fallback` builds it), so
a restriction or outage at the primary frontier provider does not leave the desk on quotes
from the docs alone. It is a `Provider` like `AnthropicProvider`: the pipeline gives it the
same prompt and applies the same grounding, redaction, local-only rules, pricing and ledger.

The HTTP side is `openai_compat.ChatEndpoint`, the client the local tier uses for `local.url`:
one SDK code path and one mapping of the SDK's and `httpx2`'s exceptions (`EndpointFailure`).
This module only words those failures for a paid, remote frontier API.

`generate` streams the answer and fills `Usage`: the server's own figures from the final
usage chunk (requested with `stream_options.include_usage`), else an estimate of about four
characters a token, also when the consumer stops early or the stream fails half way. A stream
that ends without a finish reason is a cut-off answer and raises; one that stops at the token
limit sets `usage.hit_limit`.

`timeout` bounds the whole call: the SDK's attempts share it (each gets
`timeout / (max_retries + 1)`), and the SDK's retries (429/5xx, connection errors, timeouts)
are the only retry loop. The API key never appears in an error or repr: every title and fix
is scrubbed of it, and no SDK exception (whose request carries the key) is chained on.
"""
from __future__ import annotations

import math
import threading
from typing import Iterator
from urllib.parse import urlsplit

from app.core.errors import ProviderError
from app.core.providers.base import Prompt, Usage
from app.core.providers.openai_compat import ChatEndpoint, EndpointFailure
from app.core.providers.pricing import estimate_tokens
from app.core.trust.secrets import scrub

NO_KEY = "not-needed"  # what the SDK is given for an endpoint that needs no key
LIMIT_FIELDS = ("max_tokens", "max_completion_tokens")
LATER = "Ask again in a little while; questions are answered from your docs meanwhile."


class OpenAIFrontierProvider:
    kind = "frontier"

    def __init__(self, base_url: str, model: str, api_key: str | None, key_env: str, timeout: float,
                 max_retries: int, max_tokens: int, requires_key: bool = True, *,
                 setting: str = "frontier.fallback"):
        """`key_env` names where the key comes from (for messages, e.g. "OPENAI_API_KEY");
        `requires_key` False: an endpoint that needs none (a team's vLLM box); `setting` is
        the settings section named in fixes."""
        self.base_url = base_url.rstrip("/")
        self.model_name = model
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.attempt_timeout = timeout / (max_retries + 1)
        self.requires_key = requires_key
        self.key_env = key_env
        self.setting = setting
        self.host = urlsplit(self.base_url).netloc or self.base_url
        self._api_key: str | None = api_key or None
        self._endpoint: ChatEndpoint | None = None
        self._limit_field = LIMIT_FIELDS[0]  # switched once if the model accepts only the other
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return (f"OpenAIFrontierProvider(model={self.model_name!r}, base_url={self._scrub(self.base_url)!r}, "
                f"available={self.available})")

    # --- availability ---
    @property
    def available(self) -> bool:
        return self._api_key is not None or not self.requires_key

    def unavailable_reason(self) -> str | None:
        """Why this provider cannot be called (title and fix, for the user), or None if it can."""
        if self.available:
            return None
        title, fix = self._no_key()
        return f"{title} {fix}"

    # --- calls ---
    def generate(self, prompt: Prompt, usage: Usage, max_tokens: int | None = None) -> Iterator[str]:
        """Yield the answer's text as it streams; add this call's tokens to `usage`.

        Raises ProviderError (on the first `next()`, as this is a generator) for a missing
        key, and for any failure of the call, including one in the middle of the stream.
        """
        if not self.available:
            title, fix = self._no_key()
            raise ProviderError(title, fix, retryable=False, sent=False)
        endpoint = self._get_endpoint()
        limit = max_tokens if max_tokens and max_tokens > 0 else self.max_tokens
        base_in, base_out = usage.input_tokens, usage.output_tokens
        chars, answered, reported, finish = 0, False, False, None
        failure: ProviderError | None = None
        try:
            for attempt in range(2):
                chunks = endpoint.chunks(prompt, limit, limit_field=self._limit_field)
                try:
                    for chunk in chunks:
                        answered = True
                        if chunk.has_usage:
                            usage.input_tokens = base_in + (chunk.input_tokens or 0)
                            usage.output_tokens = base_out + (chunk.output_tokens or 0)
                            reported = True
                        if chunk.finish_reason:
                            finish = chunk.finish_reason
                            usage.hit_limit = usage.hit_limit or finish == "length"
                        if chunk.text:
                            chars += len(chunk.text)
                            yield chunk.text
                    break
                except EndpointFailure as error:
                    if attempt == 0 and not answered and self._wants_other_limit_field(error):
                        continue  # a parameter the model rejects, not a failure: send the other one
                    failure = self._explain(error)
                    break
                finally:
                    chunks.close()  # on early stop too: the HTTP response closes with it
        finally:
            if not reported:
                # No usage chunk (the server sends none, or the stream stopped or failed first):
                # the API bills what it generated, so don't under-count what we did receive.
                if answered:
                    usage.input_tokens = max(usage.input_tokens, base_in + estimate_tokens(prompt.system + prompt.user))
                usage.output_tokens = max(usage.output_tokens, base_out + math.ceil(chars / 4))
        # raised here, outside any except block, so no SDK error is attached as context
        if failure is not None:
            raise failure
        if finish is None:
            raise self._error(
                f"The answer from {self._name()} was cut off: the stream ended before the answer did.",
                "Ask again. If it keeps happening, a proxy between you and the endpoint may be closing long responses.",
                retryable=True,
            )
        if finish == "content_filter":
            raise self._error(
                f"{self._name(capital=True)} stopped the answer with its content filter.",
                "The question was answered another way; rephrase it, or check the endpoint's content filter settings.",
                retryable=False,
            )

    def close(self) -> None:
        """Release the HTTP connection pool (a later call makes a new client)."""
        with self._lock:
            endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            endpoint.close()

    # --- internals ---
    def _get_endpoint(self) -> ChatEndpoint:
        with self._lock:
            if self._endpoint is None:
                self._endpoint = ChatEndpoint(self.base_url, self.model_name, self.attempt_timeout,
                                              api_key=self._api_key or NO_KEY, max_retries=self.max_retries)
            return self._endpoint

    def _wants_other_limit_field(self, error: EndpointFailure) -> bool:
        """A 400 naming the other token-limit parameter (OpenAI's reasoning models reject
        `max_tokens`): switch to it for this call and the next ones."""
        other = LIMIT_FIELDS[1] if self._limit_field == LIMIT_FIELDS[0] else LIMIT_FIELDS[0]
        if error.kind == "status" and error.status == 400 and other in f"{error.message} {error.detail}":
            self._limit_field = other
            return True
        return False

    def _no_key(self) -> tuple[str, str]:
        return (f"No {self.key_env} set: the OpenAI-compatible frontier provider ({self.host}) cannot be used.",
                f"Set {self.key_env} in your environment, or point {self.setting} at an endpoint that needs no key.")

    def _name(self, capital: bool = False) -> str:
        return f"{'T' if capital else 't'}he OpenAI-compatible endpoint {self.host} ({self.model_name})"

    def _scrub(self, text: str) -> str:
        return scrub(text, self._api_key)

    def _error(self, title: str, fix: str, retryable: bool, sent: bool = True) -> ProviderError:
        return ProviderError(self._scrub(title), self._scrub(fix), retryable=retryable, sent=sent)

    def _explain(self, failure: EndpointFailure) -> ProviderError:
        name, Name = self._name(), self._name(capital=True)
        if failure.kind == "refused":
            return self._error(
                f"Cannot reach {name}: {failure.detail}.",
                f"Check that the endpoint is up, your connection and proxy, and the {self.setting} base_url "
                f"({self.base_url}). Questions are answered from your docs meanwhile.",
                retryable=True, sent=False,
            )
        if failure.kind == "timeout":
            attempts = self.max_retries + 1
            tries = f" ({attempts} attempts of {self.attempt_timeout:.3g} s)" if attempts > 1 else ""
            return self._error(
                f"{Name} did not answer within {self.timeout:g} s{tries}.",
                f"Ask again later, or raise the {self.setting} timeout.",
                retryable=True,
            )
        if failure.kind == "cut":
            return self._error(
                f"The connection to {name} dropped mid-answer: {failure.detail}.",
                "Ask again. If it keeps happening, check your network or proxy.",
                retryable=True,
            )
        if failure.kind == "error":
            return self._error(
                f"{Name} reported an error mid-answer{_detail(failure.message)}.",
                LATER, retryable=True,
            )
        if failure.kind == "status" and failure.status is not None:
            return self._explain_status(failure)
        return self._error(
            f"Unexpected response from {name}: {failure.detail}.",
            f"Check that {self.setting} base_url ({self.base_url}) is an OpenAI-compatible API (it ends in /v1).",
            retryable=False,
        )

    def _explain_status(self, failure: EndpointFailure) -> ProviderError:
        status, kinds = failure.status, {failure.error_type, failure.code} - {""}
        kind = failure.code or failure.error_type
        label = f"HTTP {status}{' ' + kind if kind else ''}"
        detail = _detail(failure.message)
        name, Name = self._name(), self._name(capital=True)
        if status == 401:
            return self._error(
                f"{Name} rejected the key ({label}){detail}.",
                f"Check the key in {self.key_env}: it may be mistyped, revoked, or for another account or endpoint.",
                retryable=False,
            )
        if status == 403:
            return self._error(
                f"{Name} refused this key or this region ({label}){detail}.",
                f"Check the key's access to model '{self.model_name}' and the account's region restrictions.",
                retryable=False,
            )
        if status == 429 and "insufficient_quota" in kinds:
            return self._error(
                f"The account behind {name} is out of quota ({label}){detail}.",
                "Check the account's billing and usage limits.",
                retryable=False,
            )
        if status == 429:
            wait = f"Wait {_seconds(failure.retry_after)} s and ask again" if failure.retry_after else "Ask again in a minute"
            return self._error(
                f"{Name} is rate limiting this key ({label}).",
                f"{wait}, or lower the {self.setting} max_tokens / top_k to send fewer tokens.",
                retryable=True,
            )
        if status >= 500:
            what = "is unavailable or overloaded" if status in (502, 503, 504, 529) else "failed with a server error"
            wait = f" The endpoint asked to wait {_seconds(failure.retry_after)} s." if failure.retry_after else ""
            return self._error(f"{Name} {what} ({label}).", LATER + wait, retryable=True)
        if status == 404:
            return self._error(
                f"{Name} does not know this model or address ({label}){detail}.",
                f"Check the {self.setting} model ('{self.model_name}') and base_url ({self.base_url}).",
                retryable=False,
            )
        if status == 413 or "context_length_exceeded" in kinds or "context length" in failure.message.lower():
            return self._error(
                f"The question and passages are too large for {name} ({label}).",
                "Lower top_k or chunk_tokens so fewer passages are sent.",
                retryable=False,
            )
        return self._error(
            f"{Name} refused the request ({label}){detail}.",
            f"Check the {self.setting} model ('{self.model_name}') and max_tokens ({self.max_tokens}).",
            retryable=status in (408, 409),
        )


def _seconds(value: float) -> int:
    return max(1, math.ceil(value))


def _detail(message: str) -> str:
    message = message.rstrip(". ")
    return f": {message}" if message else ""

"""A client for any OpenAI-compatible chat endpoint, through the official `openai` SDK.

The local tier talks to its worker (llama-cpp-python's `llama_cpp.server`) with it, and to a
server a team already runs (llama.cpp's `llama-server`, Ollama, vLLM) the same way, so the
local tier has one code path whoever serves the model. The frontier's OpenAI-compatible
fallback (`openai_frontier`: OpenAI, Azure OpenAI, a team's vLLM box) uses it too, with the
SDK's own retries switched on.

`chunks` is the stream as plain `Chunk`s (text, finish reason, the server's usage figures);
`stream` is the local tier's text-only view of it. Failures come back as `EndpointFailure`
with a kind the caller turns into its own message: the caller knows what the endpoint is (a
worker it can restart, a URL the user set, a paid API).
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator

from app.core.providers.base import Prompt, Usage

CONNECT_TIMEOUT_S = 5.0


class EndpointFailure(Exception):
    """kind: refused (nothing was sent) | timeout (no byte within the read timeout) |
    cut (the connection dropped mid-answer, or the stream ended before a finish reason) |
    status (an HTTP error reply) | error (the server reported an error inside the stream) |
    protocol (a reply that is not an OpenAI-compatible chat stream, e.g. a malformed chunk).

    `message` is the server's own error message when it sent one (it may echo what the client
    sent: callers scrub it), `error_type` and `code` its error type and code (e.g.
    "invalid_request_error", "context_length_exceeded"), `retry_after` the seconds a 429/503
    asked to wait.
    """

    def __init__(self, kind: str, detail: str, status: int | None = None, *, message: str = "",
                 error_type: str = "", code: str = "", retry_after: float | None = None):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.message = message
        self.error_type = error_type
        self.code = code
        self.retry_after = retry_after

    @property
    def sent(self) -> bool:
        """False when the request cannot have reached the server (the connection was refused)."""
        return self.kind != "refused"


@dataclass(frozen=True)
class Chunk:
    """One streamed chunk, reduced to what a caller needs."""
    text: str = ""
    finish_reason: str | None = None
    input_tokens: int | None = None  # the server's usage figures, on the chunk that carries them
    output_tokens: int | None = None

    @property
    def has_usage(self) -> bool:
        return self.input_tokens is not None or self.output_tokens is not None


@dataclass
class ChatEndpoint:
    base_url: str  # ".../v1"
    model: str  # the name the server knows the model by; "" = the first one it lists
    timeout: float  # seconds without a byte (first token included) before giving up, per attempt
    api_key: str = field(default="not-needed", repr=False)  # local servers ignore it; the SDK insists on one
    max_retries: int = 0  # the SDK's own retries (429/5xx/connection/timeout): the only retry loop
    _client: Any = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def client(self):
        """The SDK client, made on first use and kept (with its connection pool) until `close`."""
        with self._lock:
            if self._client is None:
                import openai

                self._client = openai.OpenAI(
                    base_url=self.base_url, api_key=self.api_key, max_retries=self.max_retries,
                    timeout=openai.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT_S, self.timeout)),
                )
            return self._client

    def close(self) -> None:
        """Release the connection pool (a later call makes a new client)."""
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def list_models(self) -> list[str]:
        with _translated():
            return [model.id for model in self.client().models.list().data]

    def chunks(self, prompt: Prompt, max_tokens: int, temperature: float | None = None,
               fold_system: bool = False, limit_field: str = "max_tokens") -> Iterator[Chunk]:
        """The answer as it streams, one `Chunk` per chunk the server sends; failures (at the
        request or mid-stream, malformed chunks included) raise EndpointFailure.

        `temperature` None leaves it to the server (some models accept only their default);
        `limit_field` is "max_tokens" or "max_completion_tokens" (OpenAI's reasoning models
        accept only the latter). The HTTP response is closed when the iterator is, early too.
        """
        request: dict[str, Any] = {"model": self.model or "default", "messages": prompt.messages(fold_system), limit_field: max_tokens,
                                   "stream": True, "stream_options": {"include_usage": True}}
        if temperature is not None:
            request["temperature"] = temperature
        with _translated():
            response = self.client().chat.completions.create(**request)
            try:
                for chunk in response:
                    yield _reduce(chunk)
            finally:
                response.close()  # on early stop too: the server sees the client go

    def stream(self, prompt: Prompt, usage: Usage, max_tokens: int, temperature: float | None,
               fold_system: bool = False) -> Iterator[str]:
        """Yield text as it arrives; count output tokens as chunks arrive (one token each from
        llama.cpp servers) and take the server's own usage figures when it sends them. A stop
        at `max_tokens` (finish reason "length") sets `usage.hit_limit`: the text is cut off."""
        for chunk in self.chunks(prompt, max_tokens, temperature, fold_system):
            usage.hit_limit = usage.hit_limit or chunk.finish_reason == "length"
            if chunk.has_usage:  # the last chunk, when the server reports usage
                usage.input_tokens = chunk.input_tokens or usage.input_tokens
                usage.output_tokens = chunk.output_tokens or usage.output_tokens
            if chunk.text:
                usage.output_tokens += 1
                yield chunk.text


def _reduce(chunk: Any) -> Chunk:
    """A `Chunk` from the SDK's (unvalidated) chunk object; nonsense is a protocol failure."""
    try:
        texts, finish = [], None
        for choice in chunk.choices or []:
            delta = choice.delta
            text = delta.content if delta is not None else None
            if text:
                if not isinstance(text, str):
                    raise TypeError(f"content is {type(text).__name__}")
                texts.append(text)
            finish = choice.finish_reason or finish
        usage = chunk.usage
        input_tokens = output_tokens = None
        if usage is not None:
            input_tokens, output_tokens = _count(usage.prompt_tokens), _count(usage.completion_tokens)
        return Chunk("".join(texts), finish if isinstance(finish, str) else None, input_tokens, output_tokens)
    except (AttributeError, TypeError, ValueError) as error:
        raise EndpointFailure("protocol", f"a malformed chunk ({_short(str(error))})") from None


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a token count of {value!r}")
    return value


class _translated:
    """Turn the SDK's exceptions, and its HTTP library's raised mid-stream, into EndpointFailure.

    The HTTP library is matched by class name: openai 1.x-2.x use httpx, 3.x its fork httpx2.
    """

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is None or isinstance(error, (GeneratorExit, KeyboardInterrupt, EndpointFailure)):
            return False
        import openai

        if isinstance(error, openai.APITimeoutError) or _named(error, "TimeoutException"):
            raise EndpointFailure("timeout", "no reply within the timeout") from None
        if isinstance(error, openai.APIConnectionError):
            cause = error.__cause__ or error.__context__
            if _named(cause, "ConnectError"):
                raise EndpointFailure("refused", f"cannot connect ({cause})") from None
            raise EndpointFailure("cut", f"connection failed ({cause or error})") from None
        if _named(error, "ConnectError"):
            raise EndpointFailure("refused", f"cannot connect ({error})") from None
        if _named(error, "RemoteProtocolError", "ReadError", "NetworkError", "DecodingError"):
            raise EndpointFailure("cut", f"the connection dropped mid-answer ({error})") from None
        if isinstance(error, openai.APIStatusError):
            message, error_type, code = _body_fields(error.body)
            raise EndpointFailure("status", f"HTTP {error.status_code}: {_short(error.message)}", error.status_code,
                                  message=message, error_type=error_type, code=code,
                                  retry_after=_retry_after(error.response.headers)) from None
        if isinstance(error, openai.APIError):
            message, error_type, code = _body_fields(error.body)
            if isinstance(error.body, dict):  # `data: {"error": {...}}` in the middle of the stream
                raise EndpointFailure("error", f"the server reported an error mid-stream: {_short(str(error))}",
                                      message=message or _short(str(error)), error_type=error_type, code=code) from None
            raise EndpointFailure("protocol", _short(str(error))) from None
        if isinstance(error, json.JSONDecodeError):  # a `data:` line that is not JSON
            raise EndpointFailure("protocol", f"a malformed chunk ({error})") from None
        return False


def _body_fields(body: Any) -> tuple[str, str, str]:
    """(message, type, code) of an error body: `{"message", "type", "code"}`, possibly under "error"."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if isinstance(body, dict):
        message, kind, code = body.get("message"), body.get("type"), body.get("code")
        return (_short(message) if isinstance(message, str) else "", str(kind) if kind else "", str(code) if code else "")
    if isinstance(body, str):
        return _short(body), "", ""
    return "", "", ""


def _retry_after(headers: Any) -> float | None:
    """Seconds from `retry-after-ms` or a numeric `retry-after` (a date form is ignored)."""
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            seconds = float(headers.get(name)) / divisor
        except (TypeError, ValueError):
            continue
        if 0 <= seconds < float("inf"):
            return seconds
    return None


def _named(error: BaseException | None, *names: str) -> bool:
    return error is not None and any(cls.__name__ in names for cls in type(error).__mro__)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

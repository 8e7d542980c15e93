"""A client for any OpenAI-compatible chat endpoint, through the official `openai` SDK.

The local tier talks to its worker (llama-cpp-python's `llama_cpp.server`) with it, and to a
server a team already runs (llama.cpp's `llama-server`, Ollama, vLLM) the same way, so the
local tier has one code path whoever serves the model.

Failures come back as `EndpointFailure` with a kind the caller turns into its own message:
the caller knows what the endpoint is (a worker it can restart, or a URL the user set).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from app.core.providers.base import Prompt, Usage

CONNECT_TIMEOUT_S = 5.0


class EndpointFailure(Exception):
    """kind: refused (nothing was sent) | timeout (no byte within the read timeout) |
    cut (the connection dropped mid-answer) | status (an HTTP error reply) | protocol."""

    def __init__(self, kind: str, detail: str, status: int | None = None):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status


@dataclass
class ChatEndpoint:
    base_url: str  # ".../v1"
    model: str  # the name the server knows the model by; "" = the first one it lists
    timeout: float  # seconds without a byte (first token included) before giving up
    api_key: str = "not-needed"  # local servers ignore it; the SDK insists on one

    def client(self):
        import openai

        return openai.OpenAI(
            base_url=self.base_url, api_key=self.api_key, max_retries=0,
            timeout=openai.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT_S, self.timeout)),
        )

    def list_models(self) -> list[str]:
        with _translated():
            return [model.id for model in self.client().models.list().data]

    def stream(self, prompt: Prompt, usage: Usage, max_tokens: int, temperature: float,
               fold_system: bool = False) -> Iterator[str]:
        """Yield text as it arrives; count output tokens as chunks arrive (one token each from
        llama.cpp servers) and take the server's own usage figures when it sends them."""
        if fold_system:
            messages = [{"role": "user", "content": f"{prompt.system}\n\n{prompt.user}"}]
        else:
            messages = [{"role": "system", "content": prompt.system}, {"role": "user", "content": prompt.user}]
        with _translated():
            response = self.client().chat.completions.create(
                model=self.model or "default", messages=messages, max_tokens=max_tokens,
                temperature=temperature, stream=True, stream_options={"include_usage": True},
            )
            try:
                for chunk in response:
                    if chunk.usage is not None:  # the last chunk, when the server reports usage
                        usage.input_tokens = chunk.usage.prompt_tokens or usage.input_tokens
                        usage.output_tokens = chunk.usage.completion_tokens or usage.output_tokens
                    for choice in chunk.choices or []:
                        text = choice.delta.content if choice.delta else None
                        if text:
                            usage.output_tokens += 1
                            yield text
            finally:
                response.close()  # on early stop too: the server sees the client go


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
            raise EndpointFailure("status", f"HTTP {error.status_code}: {_short(error.message)}", error.status_code) from None
        if isinstance(error, openai.APIError):
            raise EndpointFailure("protocol", _short(str(error))) from None
        return False


def _named(error: BaseException | None, *names: str) -> bool:
    return error is not None and any(cls.__name__ in names for cls in type(error).__mro__)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

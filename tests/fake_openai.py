"""A real HTTP server on 127.0.0.1 that speaks the OpenAI Chat Completions API, for tests.

The real `openai` SDK talks to it over HTTP exactly as it would to api.openai.com, Azure
OpenAI or a vLLM box: POST /v1/chat/completions, JSON or (with "stream": true) server-sent
events, `data: {chunk}` lines ending with a usage chunk (when `stream_options.include_usage`
asks for one) and `data: [DONE]`, chunked like the real thing; GET /v1/models lists the
model. Each test scripts what the next requests get:

    with FakeOpenAI(reply="Hello!") as server:             # or the `fake_openai` fixture
        server.queue_error(503).queue_error(503)            # first two requests: unavailable
        server.queue_reply("Third try worked.")             # third request
        ...                                                 # afterwards: `server.reply`
        server.requests[0].json["messages"]                 # everything that left the machine

Behaviours are consumed one per request, in order; when the queue is empty the server
answers with `reply` (a string, or a function of the request JSON that returns one).
"""
from __future__ import annotations

import json
import math
import queue
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

DEFAULT_REPLY = "This is a canned answer from the fake OpenAI-compatible API."
MODEL = "gpt-test-mini"
ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_denied",
               404: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error",
               503: "server_error"}
ERROR_MESSAGES = {400: "Bad request", 403: "Country, region, or territory not supported",
                  404: "The model does not exist or you do not have access to it.",
                  429: "Rate limit reached for requests", 500: "The server had an error while processing your request.",
                  503: "The engine is currently overloaded, please try again later"}
MAX_TOKENS_REJECTED = ("Unsupported parameter: 'max_tokens' is not supported with this model. "
                       "Use 'max_completion_tokens' instead.")


@dataclass
class Recorded:
    """One request as it arrived: header names are lower-case."""
    method: str
    path: str
    headers: dict[str, str]
    json: Any

    @property
    def api_key(self) -> str | None:
        """The key the client sent, from `Authorization: Bearer` or Azure's `api-key` header."""
        bearer = self.headers.get("authorization", "")
        return (bearer[7:] if bearer.lower().startswith("bearer ") else None) or self.headers.get("api-key")


@dataclass
class Behaviour:
    """What one request gets. Build these with the `FakeOpenAI.queue_*` methods."""
    text: str | Callable[[dict], str] | None = None  # None: the server's default `reply`
    status: int = 200
    error_type: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the response starts (a client timeout shorter than this fires)
    drop_after: int | None = None  # streaming: close the socket after this many text chunks
    clean_drop: bool = False  # ...ending the chunked body properly instead (no finish_reason, no [DONE])
    malformed_after: int | None = None  # streaming: send a `data:` line that is not JSON after this many chunks
    stream_error: str | None = None  # streaming: send `data: {"error": ...}` of this type after the first chunk
    finish_reason: str | None = None  # override the finish reason ("content_filter", …)
    usage: bool = True  # send the usage chunk when asked for it (some servers never do)


def tokens(text: str) -> int:
    """A stand-in tokenizer: about four characters a token."""
    return max(1, math.ceil(len(text) / 4))


def _request_text(body: dict) -> str:
    return "".join(m.get("content") or "" if isinstance(m.get("content"), str) else json.dumps(m.get("content"))
                   for m in body.get("messages", []))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, like the real API
    server: "_Server"
    timeout = 10  # an idle keep-alive connection is closed after this long

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        fake = self.server.fake
        fake.requests.append(Recorded("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, None))
        if self.path.split("?")[0] != "/v1/models":
            return self._error(404, "invalid_request_error", f"Unknown request URL: GET {self.path}")
        self._json(200, {"object": "list", "data": [{"id": fake.model, "object": "model", "created": 0,
                                                     "owned_by": "fake"}]})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        fake = self.server.fake
        recorded = Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        fake.requests.append(recorded)
        behaviour = fake._next_behaviour()
        if behaviour.delay and fake._stopping.wait(behaviour.delay):
            self.close_connection = True  # the server is stopping: give up on this request
            return
        if self.path.split("?")[0] != "/v1/chat/completions":
            return self._error(404, "invalid_request_error", f"Unknown request URL: POST {self.path}")
        if fake.api_key is not None and recorded.api_key != fake.api_key:
            # like api.openai.com, the message echoes (part of) the key it was given
            return self._error(401, "invalid_request_error", f"Incorrect API key provided: {recorded.api_key}.",
                               code="invalid_api_key")
        if not isinstance(body, dict) or not all(k in body for k in ("model", "messages")):
            return self._error(400, "invalid_request_error", "model and messages: Field required")
        if fake.completion_tokens_only and "max_tokens" in body:
            return self._error(400, "invalid_request_error", MAX_TOKENS_REJECTED, code="unsupported_parameter")
        if behaviour.status != 200:
            return self._error(behaviour.status, behaviour.error_type, behaviour.message, headers=behaviour.headers)
        text = behaviour.text if behaviour.text is not None else fake.reply
        text = text(body) if callable(text) else text
        finish = "stop"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if limit and tokens(text) > limit:
            text, finish = text[: limit * 4], "length"
        finish = behaviour.finish_reason or finish
        usage = {"prompt_tokens": tokens(_request_text(body)), "completion_tokens": tokens(text)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": "chatcmpl-" + uuid.uuid4().hex[:24], "created": int(time.time()), "model": body["model"],
                "system_fingerprint": "fp_fake"}
        if body.get("stream"):
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self._stream(base, text, finish, usage if wants_usage and behaviour.usage else None, behaviour)
        self._json(200, {**base, "object": "chat.completion", "usage": usage, "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}]})

    def _headers(self, status: int, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:24])
        for name, value in (extra or {}).items():
            self.send_header(name, value)

    def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._headers(status, "application/json", headers)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, error_type: str | None, message: str | None, *,
               code: str | None = None, headers: dict[str, str] | None = None) -> None:
        error_type = error_type or ERROR_TYPES.get(status, "server_error")
        message = message or ERROR_MESSAGES.get(status, error_type.replace("_", " ").capitalize())
        self._json(status, {"error": {"message": message, "type": error_type, "param": None, "code": code}}, headers)

    def _stream(self, base: dict, text: str, finish: str, usage: dict | None, behaviour: Behaviour) -> None:
        self._headers(200, "text/event-stream; charset=utf-8", {"cache-control": "no-cache"})
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def send(data: str) -> None:
            payload = f"data: {data}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            self.wfile.flush()

        def chunk(delta: dict, finish_reason: str | None = None) -> None:
            send(json.dumps({**base, "object": "chat.completion.chunk", "usage": None, "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}))

        chunk({"role": "assistant", "content": ""})
        pieces = [text[i:i + 12] for i in range(0, len(text), 12)]
        for number, piece in enumerate(pieces):
            if behaviour.drop_after is not None and number >= behaviour.drop_after:
                return self._drop(behaviour.clean_drop)
            if behaviour.malformed_after is not None and number >= behaviour.malformed_after:
                send('{"id": "chatcmpl-broken", "choices": [{"delta": {"content": "unterminated')
                return self._drop(clean=True)
            chunk({"content": piece})
            if behaviour.stream_error:
                send(json.dumps({"error": {"message": behaviour.message or "The server had an error while "
                                           "processing your request.", "type": behaviour.stream_error,
                                           "param": None, "code": None}}))
                return self._drop(clean=True)
        if behaviour.drop_after is not None:
            return self._drop(behaviour.clean_drop)
        chunk({}, finish)
        if usage is not None:
            send(json.dumps({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}))
        send("[DONE]")
        self.wfile.write(b"0\r\n\r\n")

    def _drop(self, clean: bool) -> None:
        if clean:
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True
        if not clean:
            self.connection.shutdown(socket.SHUT_RDWR)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: "FakeOpenAI"

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-response (a timeout test, a stopped stream) is expected;
        # anything else is printed as usual.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class FakeOpenAI:
    """The fake API. `url` is its base URL, ending in /v1 (give it to the SDK as `base_url`)."""

    def __init__(self, reply: str | Callable[[dict], str] = DEFAULT_REPLY, *, api_key: str | None = None,
                 model: str = MODEL, completion_tokens_only: bool = False):
        self.reply = reply
        self.api_key = api_key  # if set, any other key (or none) gets a 401 like the real API
        self.model = model
        self.completion_tokens_only = completion_tokens_only  # reject `max_tokens` like OpenAI's reasoning models
        self.requests: list[Recorded] = []
        self._queue: queue.SimpleQueue[Behaviour] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-openai", daemon=True)

    @property
    def completions(self) -> list[Recorded]:
        """The chat completion requests, in order."""
        return [r for r in self.requests if r.method == "POST"]

    # --- scripting: each call queues the behaviour for one request and returns self to chain ---
    def queue(self, behaviour: Behaviour) -> "FakeOpenAI":
        self._queue.put(behaviour)
        return self

    def queue_reply(self, text: str | Callable[[dict], str], **options: Any) -> "FakeOpenAI":
        return self.queue(Behaviour(text=text, **options))

    def queue_error(self, status: int, error_type: str | None = None, message: str | None = None,
                    *, retry_after: float | None = None, headers: dict[str, str] | None = None) -> "FakeOpenAI":
        headers = dict(headers or {})
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        return self.queue(Behaviour(status=status, error_type=error_type, message=message, headers=headers))

    def queue_delay(self, seconds: float, text: str | None = None) -> "FakeOpenAI":
        return self.queue(Behaviour(text=text, delay=seconds))

    def queue_drop(self, after_chunks: int = 1, *, clean: bool = False, text: str | None = None) -> "FakeOpenAI":
        return self.queue(Behaviour(text=text, drop_after=after_chunks, clean_drop=clean))

    def queue_malformed(self, after_chunks: int = 1, text: str | None = None) -> "FakeOpenAI":
        return self.queue(Behaviour(text=text, malformed_after=after_chunks))

    def queue_stream_error(self, error_type: str = "server_error", message: str | None = None,
                           text: str | None = None) -> "FakeOpenAI":
        return self.queue(Behaviour(text=text, stream_error=error_type, message=message))

    def _next_behaviour(self) -> Behaviour:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return Behaviour()

    # --- lifecycle ---
    def start(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes any delayed handler
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def fake_openai():
    """A started FakeOpenAI, stopped after the test."""
    with FakeOpenAI() as server:
        yield server

"""A real HTTP server on 127.0.0.1 that speaks the Anthropic Messages API, for tests.

The real `anthropic` SDK talks to it over HTTP exactly as it would to api.anthropic.com:
POST /v1/messages, JSON or (with "stream": true) server-sent events in the API's event order,
chunked like the real thing. Each test scripts what the next requests get:

    with FakeAnthropic(reply="Hello!") as server:          # or the `fake_anthropic` fixture
        server.queue_error(529).queue_error(529)            # first two requests: overloaded
        server.queue_reply("Second try worked.")            # third request
        ...                                                 # afterwards: `server.reply`
        server.requests[0].json["messages"]                 # everything that left the machine

Behaviours are consumed one per request, in order; when the queue is empty the server
answers with `reply` (a string, or a function of the request JSON that returns one).
"""
from __future__ import annotations

import json
import math
import queue
import re
import socket
import sys
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

DEFAULT_REPLY = "This is a canned answer from the fake Anthropic API."
# The key the `desk` fixture (conftest) sets: tests search everything kept or shown for it.
DESK_KEY = "sk-ant-api03-test-KEY-must-never-leak-0123456789"
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
ERROR_MESSAGES = {401: "invalid x-api-key", 429: "Number of request tokens has exceeded your per-minute rate limit",
                  500: "Internal server error", 529: "Overloaded"}


@dataclass
class Recorded:
    """One request as it arrived: header names are lower-case."""
    method: str
    path: str
    headers: dict[str, str]
    json: Any

    @property
    def api_key(self) -> str | None:
        """The key the client sent, from `x-api-key` or an `Authorization: Bearer` header."""
        bearer = self.headers.get("authorization", "")
        return self.headers.get("x-api-key") or (bearer[7:] if bearer.lower().startswith("bearer ") else None)


@dataclass
class Behaviour:
    """What one request gets. Build these with the `FakeAnthropic.queue_*` methods."""
    text: str | Callable[[dict], str] | None = None  # None: the server's default `reply`
    status: int = 200
    error_type: str | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the response starts (a client timeout shorter than this fires)
    drop_after: int | None = None  # streaming: close the socket after this many text deltas
    clean_drop: bool = False  # ...ending the chunked body properly instead (a truncated but well-formed stream)
    stream_error: str | None = None  # streaming: send `event: error` of this type after the first delta
    malformed: bool = False  # streaming: send an event whose data is not JSON after the first delta


def tokens(text: str) -> int:
    """A stand-in tokenizer: about four characters a token."""
    return max(1, math.ceil(len(text) / 4))


def _request_text(body: dict) -> str:
    parts = [body.get("system") or ""] + [m.get("content") or "" for m in body.get("messages", [])]
    return "".join(p if isinstance(p, str) else json.dumps(p) for p in parts)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked streaming, like the real API
    server: "_Server"
    timeout = 10  # an idle keep-alive connection is closed after this long

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

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
        if self.path.split("?")[0] != "/v1/messages":
            return self._error(404, "not_found_error", f"Not found: {self.path}")
        if fake.api_key is not None and recorded.api_key != fake.api_key:
            return self._error(401, "authentication_error", "invalid x-api-key")
        if not isinstance(body, dict) or not all(k in body for k in ("model", "max_tokens", "messages")):
            return self._error(400, "invalid_request_error", "model, max_tokens and messages: Field required")
        if behaviour.status != 200:
            return self._error(behaviour.status, behaviour.error_type, behaviour.message, behaviour.headers)
        text = behaviour.text if behaviour.text is not None else fake.reply
        text = text(body) if callable(text) else text
        stop_reason = "end_turn"
        if tokens(text) > body["max_tokens"]:
            text, stop_reason = text[: body["max_tokens"] * 4], "max_tokens"
        message = {"id": "msg_01" + uuid.uuid4().hex[:22], "type": "message", "role": "assistant",
                   "model": body["model"], "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": tokens(_request_text(body)), "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0, "output_tokens": 1, "service_tier": "standard"}}
        if body.get("stream"):
            return self._stream(message, text, stop_reason, behaviour)
        message["content"] = [{"type": "text", "text": text}]
        message.update(stop_reason=stop_reason)
        message["usage"]["output_tokens"] = tokens(text)
        self._json(200, message)

    def _headers(self, status: int, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("request-id", "req_01" + uuid.uuid4().hex[:22])
        for name, value in (extra or {}).items():
            self.send_header(name, value)

    def _json(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self._headers(status, "application/json", headers)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, error_type: str | None, message: str | None,
               headers: dict[str, str] | None = None) -> None:
        error_type = error_type or ERROR_TYPES.get(status, "api_error")
        message = message or ERROR_MESSAGES.get(status, error_type.replace("_", " ").capitalize())
        self._json(status, {"type": "error", "error": {"type": error_type, "message": message},
                            "request_id": "req_01" + uuid.uuid4().hex[:22]}, headers)

    def _stream(self, message: dict, text: str, stop_reason: str, behaviour: Behaviour) -> None:
        self._headers(200, "text/event-stream; charset=utf-8", {"cache-control": "no-cache"})
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

        def send(event: str, data: dict) -> None:
            payload = f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            self.wfile.flush()

        send("message_start", {"type": "message_start", "message": message})
        send("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}})
        send("ping", {"type": "ping"})
        pieces = [text[i:i + 12] for i in range(0, len(text), 12)]
        for number, piece in enumerate(pieces):
            if behaviour.drop_after is not None and number >= behaviour.drop_after:
                return self._drop(behaviour.clean_drop)
            send("content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "text_delta", "text": piece}})
            if behaviour.malformed:
                payload = b"event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"delta\n\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
                self.wfile.flush()
                return self._drop(clean=True)
            if behaviour.stream_error:
                send("error", {"type": "error", "error": {"type": behaviour.stream_error,
                                                          "message": behaviour.message or "Overloaded"}})
                return self._drop(clean=True)
        if behaviour.drop_after is not None:
            return self._drop(behaviour.clean_drop)
        send("content_block_stop", {"type": "content_block_stop", "index": 0})
        send("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                               "usage": {"output_tokens": tokens(text)}})
        send("message_stop", {"type": "message_stop"})
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
    fake: "FakeAnthropic"

    def handle_error(self, request, client_address) -> None:
        # A client that hangs up mid-response (a timeout test, a stopped stream) is expected;
        # anything else is printed as usual.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class FakeAnthropic:
    """The fake API. `url` is its base URL (give it to the SDK as `base_url`)."""

    def __init__(self, reply: str | Callable[[dict], str] = DEFAULT_REPLY, *, api_key: str | None = None):
        self.reply = reply
        self.api_key = api_key  # if set, any other key (or none) gets a 401 like the real API
        self.requests: list[Recorded] = []
        self._queue: queue.SimpleQueue[Behaviour] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-anthropic", daemon=True)

    # --- scripting: each call queues the behaviour for one request and returns self to chain ---
    def queue(self, behaviour: Behaviour) -> "FakeAnthropic":
        self._queue.put(behaviour)
        return self

    def queue_reply(self, text: str | Callable[[dict], str]) -> "FakeAnthropic":
        return self.queue(Behaviour(text=text))

    def queue_error(self, status: int, error_type: str | None = None, message: str | None = None,
                    *, retry_after: float | None = None, headers: dict[str, str] | None = None) -> "FakeAnthropic":
        headers = dict(headers or {})
        if retry_after is not None:
            headers["retry-after"] = f"{retry_after:g}"
        return self.queue(Behaviour(status=status, error_type=error_type, message=message, headers=headers))

    def queue_delay(self, seconds: float, text: str | None = None) -> "FakeAnthropic":
        return self.queue(Behaviour(text=text, delay=seconds))

    def queue_drop(self, after_deltas: int = 1, *, clean: bool = False, text: str | None = None) -> "FakeAnthropic":
        return self.queue(Behaviour(text=text, drop_after=after_deltas, clean_drop=clean))

    def queue_stream_error(self, error_type: str = "overloaded_error", message: str = "Overloaded",
                           text: str | None = None) -> "FakeAnthropic":
        return self.queue(Behaviour(text=text, stream_error=error_type, message=message))

    def queue_malformed(self, text: str | None = None) -> "FakeAnthropic":
        return self.queue(Behaviour(text=text, malformed=True))

    def _next_behaviour(self) -> Behaviour:
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return Behaviour()

    # --- lifecycle ---
    def start(self) -> "FakeAnthropic":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes any delayed handler
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> "FakeAnthropic":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_PASSAGE = re.compile(r'<passage id="(\d+)"[^\n]*\n(.*?)\n</passage>', re.DOTALL)


def cite_first_passage(request: dict) -> str:
    """A well-behaved model: answers with the first full sentence of passage [1] and cites it."""
    text = request["messages"][0]["content"]
    match = _PASSAGE.search(text)
    if not match:
        return "I don't know based on the documentation."
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", match.group(2)) if len(s.split()) >= 4 and not s.lstrip().startswith(("#", "|", "`"))]
    return f"{sentences[0].strip()} [1]" if sentences else "I don't know based on the documentation."


@pytest.fixture
def fake_anthropic():
    """A started FakeAnthropic, stopped after the test."""
    with FakeAnthropic() as server:
        yield server

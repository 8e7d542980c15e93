"""The frontier provider against a real HTTP server speaking the Messages API.

The real `anthropic` SDK makes real HTTP requests to `FakeAnthropic` on 127.0.0.1: its
retries, timeouts, SSE parsing and error classes are all exercised, nothing is mocked.
"""
from __future__ import annotations

import logging
import socket
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from app.core.errors import ProviderError
from app.core.providers.anthropic import AnthropicProvider
from app.core.providers.base import Prompt, Usage
from app.core.settings import load_settings
from fake_anthropic import Behaviour, FakeAnthropic, fake_anthropic, tokens  # noqa: F401  (fixture)

KEY = "sk-ant-test-5f3c9a0e7b1d4c2a8e6f0b9d3a7c1e5f"
PROMPT = Prompt(system="Answer from the passages only.", user="How long do refunds take?\n<passage>...</passage>")


@pytest.fixture
def make_provider(tmp_path):
    """Build providers from real settings (isolated home, explicit environ); closed after the test."""
    made: list[AnthropicProvider] = []

    def make(url: str, key: str | None = KEY, **flags) -> AnthropicProvider:
        environ = {"FRONTDESK_HOME": str(tmp_path / "home")}
        if key is not None:
            environ["ANTHROPIC_API_KEY"] = key
        flags = {"frontier.base_url": url, "frontier.max_retries": 0, "frontier.timeout": 10, **flags}
        provider = AnthropicProvider(load_settings(flags=flags, environ=environ))
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


def failure(provider: AnthropicProvider, usage: Usage | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        for _ in provider.generate(PROMPT, usage or Usage()):
            pass
    return caught.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- answers ---

def test_streams_the_reply_and_fills_usage(fake_anthropic, make_provider):
    fake_anthropic.reply = "Refunds take five business days once the return is received."
    provider = make_provider(fake_anthropic.url, **{"frontier.model": "claude-test-1", "frontier.max_tokens": 300})
    usage = Usage()

    chunks = list(provider.generate(PROMPT, usage))

    assert len(chunks) > 1  # really streamed
    assert "".join(chunks) == fake_anthropic.reply
    assert usage == Usage(input_tokens=tokens(PROMPT.system + PROMPT.user), output_tokens=tokens(fake_anthropic.reply))
    assert provider.kind == "frontier" and provider.model_name == "claude-test-1"


def test_what_leaves_the_machine_is_exactly_the_prompt(fake_anthropic, make_provider):
    list(make_provider(fake_anthropic.url, **{"frontier.max_tokens": 300}).generate(PROMPT, Usage()))

    [request] = fake_anthropic.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.json == {
        "model": "claude-sonnet-5-5",
        "max_tokens": 300,
        "system": PROMPT.system,
        "messages": [{"role": "user", "content": PROMPT.user}],
        "stream": True,
    }
    assert request.api_key == KEY  # sent in an auth header (this SDK uses Authorization: Bearer)
    assert "anthropic-version" in request.headers
    assert not any(name.startswith("traceparent") for name in request.headers)  # SDK tracing is off


def test_max_tokens_argument_overrides_the_setting(fake_anthropic, make_provider):
    fake_anthropic.reply = "A long answer " * 20
    usage = Usage()

    text = "".join(make_provider(fake_anthropic.url).generate(PROMPT, usage, max_tokens=5))

    assert fake_anthropic.requests[0].json["max_tokens"] == 5
    assert len(text) == 20 and usage.output_tokens == 5  # the fake stops at max_tokens like the API


def test_reply_can_depend_on_the_request(fake_anthropic, make_provider):
    fake_anthropic.reply = lambda body: "You asked: " + body["messages"][0]["content"].splitlines()[0]

    assert "".join(make_provider(fake_anthropic.url).generate(PROMPT, Usage())) == "You asked: How long do refunds take?"


def test_usage_is_known_when_the_consumer_stops_early(fake_anthropic, make_provider):
    fake_anthropic.reply = "word " * 200
    usage = Usage()
    stream = make_provider(fake_anthropic.url).generate(PROMPT, usage)

    first = next(stream)
    assert usage.input_tokens == tokens(PROMPT.system + PROMPT.user)  # from message_start, before any text
    stream.close()

    assert first and usage.output_tokens >= tokens(first)


def test_usage_adds_to_what_the_turn_already_counted(fake_anthropic, make_provider):
    usage = Usage(input_tokens=100, output_tokens=10)
    list(make_provider(fake_anthropic.url).generate(PROMPT, usage))
    assert usage == Usage(100 + tokens(PROMPT.system + PROMPT.user), 10 + tokens(fake_anthropic.reply))


def test_complete_returns_the_whole_answer(fake_anthropic, make_provider):
    usage = Usage()
    assert make_provider(fake_anthropic.url).complete(PROMPT, usage) == fake_anthropic.reply
    assert "stream" not in fake_anthropic.requests[0].json
    assert usage == Usage(tokens(PROMPT.system + PROMPT.user), tokens(fake_anthropic.reply))


def test_empty_system_prompt_is_not_sent(fake_anthropic, make_provider):
    list(make_provider(fake_anthropic.url).generate(Prompt(system="", user="hi"), Usage()))
    assert "system" not in fake_anthropic.requests[0].json


# --- the SDK's retries ---

def test_a_server_error_is_retried_by_the_sdk(fake_anthropic, make_provider):
    fake_anthropic.queue_error(500)

    text = "".join(make_provider(fake_anthropic.url, **{"frontier.max_retries": 2}).generate(PROMPT, Usage()))

    assert text == fake_anthropic.reply
    assert [r.headers["x-stainless-retry-count"] for r in fake_anthropic.requests] == ["0", "1"]


def test_persistent_overload_is_a_retryable_provider_error(fake_anthropic, make_provider):
    fake_anthropic.queue_error(529).queue_error(529)

    error = failure(make_provider(fake_anthropic.url, **{"frontier.max_retries": 1}))

    assert error.retryable
    assert error.title == "The Anthropic API is overloaded (529 overloaded_error)."
    assert len(fake_anthropic.requests) == 2  # one try and the SDK's one retry: no extra loop of ours


def test_rate_limit_is_retryable_and_says_how_long_to_wait(fake_anthropic, make_provider):
    fake_anthropic.queue_error(429, retry_after=30)

    error = failure(make_provider(fake_anthropic.url))

    assert error.retryable
    assert "rate limiting" in error.title and "429" in error.title
    assert "Wait 30 s" in error.fix


def test_spend_limit_is_not_retryable(fake_anthropic, make_provider):
    fake_anthropic.queue(Behaviour(status=402, message="Spend limit reached"))
    error = failure(make_provider(fake_anthropic.url))
    assert not error.retryable and "cannot pay" in error.title


# --- failures ---

def test_rejected_key(make_provider):
    with FakeAnthropic(api_key="sk-ant-the-right-key") as server:
        error = failure(make_provider(server.url))

    assert error.title.startswith("The Anthropic API rejected the key") and "401" in error.title
    assert "env ANTHROPIC_API_KEY" in error.fix  # says where the key came from
    assert not error.retryable


def test_timeout(fake_anthropic, make_provider):
    fake_anthropic.queue_delay(5)

    error = failure(make_provider(fake_anthropic.url, **{"frontier.timeout": 0.5}))

    assert error.title == "The Anthropic API did not answer within 0.5 s."
    assert error.retryable
    assert len(fake_anthropic.requests) == 1


def test_connection_refused(make_provider):
    url = f"http://127.0.0.1:{closed_port()}"

    error = failure(make_provider(url))

    assert error.title.startswith(f"Cannot reach the Anthropic API at {url} (")
    assert "refused" in error.title.lower()
    assert error.retryable


def test_connection_dropped_mid_stream(fake_anthropic, make_provider):
    fake_anthropic.queue_drop(after_deltas=2)
    received: list[str] = []
    usage = Usage()

    with pytest.raises(ProviderError) as caught:
        for chunk in make_provider(fake_anthropic.url).generate(PROMPT, usage):
            received.append(chunk)

    assert "dropped mid-answer" in caught.value.title and caught.value.retryable
    assert len(received) == 2
    assert usage.input_tokens > 0 and usage.output_tokens >= tokens("".join(received))


def test_stream_that_ends_early_is_an_error(fake_anthropic, make_provider):
    fake_anthropic.queue_drop(after_deltas=1, clean=True)  # well-formed HTTP, but no message_stop
    error = failure(make_provider(fake_anthropic.url))
    assert "cut off" in error.title and error.retryable


def test_overloaded_error_event_mid_stream(fake_anthropic, make_provider):
    fake_anthropic.queue_stream_error("overloaded_error")
    error = failure(make_provider(fake_anthropic.url))
    assert error.title == "The Anthropic API is overloaded (overloaded_error)." and error.retryable


def test_bad_request_is_not_retryable_and_carries_the_api_message(fake_anthropic, make_provider):
    fake_anthropic.queue_error(400, message="max_tokens: 99999999 > 64000, the maximum for this model")
    error = failure(make_provider(fake_anthropic.url))
    assert not error.retryable
    assert "400 invalid_request_error" in error.title and "maximum for this model" in error.title


def test_wrong_base_url_path(fake_anthropic, make_provider):
    error = failure(make_provider(fake_anthropic.url + "/not-the-api"))
    assert "404" in error.title and not error.retryable


# --- no key ---

def test_without_a_key_the_provider_is_unavailable(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.url, key=None)

    assert not provider.available
    assert "No ANTHROPIC_API_KEY set" in provider.unavailable_reason()
    assert "api_key" in provider.unavailable_reason() and "frontdesk.toml" in provider.unavailable_reason()
    error = failure(provider)
    assert error.title.startswith("No ANTHROPIC_API_KEY set") and not error.retryable
    assert fake_anthropic.requests == []


def test_with_a_key_the_provider_is_available(fake_anthropic, make_provider):
    provider = make_provider(fake_anthropic.url)
    assert provider.available and provider.unavailable_reason() is None
    assert KEY not in repr(provider)


def test_key_from_config_file_is_used(fake_anthropic, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "frontdesk.toml").write_text(f'[frontier]\napi_key = "{KEY}"\nbase_url = "{fake_anthropic.url}"\n')
    provider = AnthropicProvider(load_settings(environ={"FRONTDESK_HOME": str(home)}))
    try:
        list(provider.generate(PROMPT, Usage()))
    finally:
        provider.close()
    assert fake_anthropic.requests[0].api_key == KEY


# --- the key never leaks ---

SCENARIOS = {
    "401": lambda s: s.queue_error(401),
    "429": lambda s: s.queue_error(429, retry_after=1),
    "529": lambda s: s.queue_error(529),
    "echoes key": lambda s: s.queue_error(400, message=f"invalid key {KEY}"),  # a careless proxy
    "mid-stream echo": lambda s: s.queue_stream_error("api_error", message=f"bad {KEY}"),
    "drop": lambda s: s.queue_drop(1),
    "timeout": lambda s: s.queue_delay(5),
    "refused": None,
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_key_never_appears_in_errors_or_logs(scenario, fake_anthropic, make_provider, caplog):
    caplog.set_level(logging.DEBUG)  # everything the SDK and the HTTP library log, too
    url = fake_anthropic.url if SCENARIOS[scenario] else f"http://127.0.0.1:{closed_port()}"
    if SCENARIOS[scenario]:
        SCENARIOS[scenario](fake_anthropic)

    error = failure(make_provider(url, **{"frontier.timeout": 0.5}))

    assert error.__cause__ is None and error.__context__ is None  # the SDK error holds the request headers
    rendered = [str(error), repr(error), error.title, error.fix, "".join(traceback.format_exception(error))]
    assert not any(KEY in text for text in rendered), rendered
    assert KEY not in caplog.text
    if scenario == "echoes key":
        assert "***" in error.title  # the API's message is shown, scrubbed


def test_anthropic_is_imported_lazily():
    code = (
        "import sys; from app.core.providers.anthropic import AnthropicProvider; "
        "assert 'anthropic' not in sys.modules, 'imported at startup'"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

"""The OpenAI-compatible frontier provider against a real HTTP server speaking Chat Completions.

The real `openai` SDK (through `openai_compat.ChatEndpoint`, the client `local.url` uses too)
makes real HTTP requests to `FakeOpenAI` on 127.0.0.1: its retries, timeouts, SSE parsing
and error classes are all exercised, nothing is mocked. Timeouts are checked by counting the
requests that reached the server, never by the wall clock.
"""
from __future__ import annotations

import logging
import socket

import pytest

from app.core.errors import ProviderError
from app.core.providers.base import Prompt, Usage
from app.core.providers.breaker import COOLDOWN, Breaker, GuardedProvider
from app.core.providers.openai_compat import ChatEndpoint, EndpointFailure
from app.core.providers.openai_frontier import OpenAIFrontierProvider
from app.core.providers.pricing import estimate_tokens
from fake_openai import MODEL, Behaviour, FakeOpenAI, fake_openai, tokens  # noqa: F401  (fixture)

KEY = "sk-proj-test-9c2e7a41b0d84f6e93a5c1d7b2e8f04a"
PROMPT = Prompt(system="Answer from the passages only.", user="How long do refunds take?\n<passage>...</passage>")


@pytest.fixture
def make_provider():
    """Providers built from plain values, as the desk will; closed after the test."""
    made: list[OpenAIFrontierProvider] = []

    def make(url: str, key: str | None = KEY, **overrides) -> OpenAIFrontierProvider:
        options = dict(base_url=url, model=MODEL, api_key=key, key_env="OPENAI_API_KEY", timeout=10.0,
                       max_retries=0, max_tokens=256)
        provider = OpenAIFrontierProvider(**{**options, **overrides})
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


def failure(provider: OpenAIFrontierProvider, usage: Usage | None = None, received: list | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        for text in provider.generate(PROMPT, usage or Usage()):
            if received is not None:
                received.append(text)
    error = caught.value
    assert KEY not in f"{error} {error!r} {error.title} {error.fix}"
    assert error.__cause__ is None and error.__context__ is None  # no SDK error (its request has the key)
    return error


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- answers ---


def test_streams_the_answer_and_fills_usage_from_the_usage_chunk(fake_openai, make_provider):
    fake_openai.reply = "Refunds take five business days from the day we receive the item."
    provider = make_provider(fake_openai.url)
    usage = Usage(input_tokens=7, output_tokens=3)  # a turn's earlier call: added to, not replaced
    pieces = list(provider.generate(PROMPT, usage))
    assert len(pieces) > 1 and "".join(pieces) == fake_openai.reply  # streamed, in pieces
    assert usage.input_tokens == 7 + tokens(PROMPT.system + PROMPT.user)
    assert usage.output_tokens == 3 + tokens(fake_openai.reply)
    assert usage.hit_limit is False
    assert provider.kind == "frontier" and provider.model_name == MODEL and provider.available


def test_sends_the_prompts_system_and_user_messages(fake_openai, make_provider):
    provider = make_provider(fake_openai.url, max_tokens=300)
    list(provider.generate(PROMPT, Usage()))
    list(provider.generate(PROMPT, Usage(), max_tokens=40))
    first, second = fake_openai.completions
    assert first.path == "/v1/chat/completions"
    assert first.json["messages"] == [{"role": "system", "content": PROMPT.system},
                                      {"role": "user", "content": PROMPT.user}]
    assert first.json["model"] == MODEL and first.json["stream"] is True
    assert first.json["stream_options"] == {"include_usage": True}
    assert first.json["max_tokens"] == 300 and second.json["max_tokens"] == 40
    assert "temperature" not in first.json  # left to the model: some accept only their default
    assert first.api_key == KEY


def test_an_endpoint_without_usage_figures_is_estimated(fake_openai, make_provider):
    fake_openai.queue_reply("Twenty characters!!!" * 3, usage=False)
    usage = Usage()
    text = "".join(make_provider(fake_openai.url).generate(PROMPT, usage))
    assert usage.output_tokens == 15 == len(text) // 4
    assert usage.input_tokens == estimate_tokens(PROMPT.system + PROMPT.user)


def test_finish_reason_length_sets_hit_limit(fake_openai, make_provider):
    fake_openai.reply = "A long answer that goes on well past the few tokens it is allowed to use."
    usage = Usage()
    text = "".join(make_provider(fake_openai.url).generate(PROMPT, usage, max_tokens=5))
    assert text == fake_openai.reply[:20]
    assert usage.hit_limit is True and usage.output_tokens == 5


def test_a_model_that_accepts_only_max_completion_tokens(make_provider):
    with FakeOpenAI(completion_tokens_only=True) as server:
        provider = make_provider(server.url, max_tokens=64)
        assert "".join(provider.generate(PROMPT, Usage())) == server.reply
        assert "".join(provider.generate(PROMPT, Usage())) == server.reply
    first, second, third = server.completions  # one rejected request, then the right parameter
    assert "max_tokens" in first.json
    assert second.json["max_completion_tokens"] == 64 and "max_tokens" not in second.json
    assert third.json["max_completion_tokens"] == 64


def test_stopping_early_still_counts_what_arrived(fake_openai, make_provider):
    fake_openai.reply = "x" * 120
    usage = Usage()
    stream = make_provider(fake_openai.url).generate(PROMPT, usage)
    first = next(stream)
    stream.close()
    assert usage.output_tokens == len(first) // 4 and usage.input_tokens > 0


# --- the key ---


def test_no_key_is_unavailable_with_the_reason(fake_openai, make_provider):
    provider = make_provider(fake_openai.url, key=None)
    assert provider.available is False
    reason = provider.unavailable_reason()
    assert "OPENAI_API_KEY" in reason and "Set OPENAI_API_KEY" in reason
    error = failure(provider)
    assert error.sent is False and error.retryable is False and "OPENAI_API_KEY" in error.fix
    assert fake_openai.requests == []


def test_an_endpoint_that_needs_no_key(fake_openai, make_provider):
    provider = make_provider(fake_openai.url, key=None, requires_key=False)
    assert provider.available and provider.unavailable_reason() is None
    assert "".join(provider.generate(PROMPT, Usage())) == fake_openai.reply


def test_401_names_the_key_setting_and_never_shows_the_key(make_provider, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeOpenAI(api_key="sk-proj-the-right-one-0000000000000000") as server:
        provider = make_provider(server.url)  # the server's 401 message echoes the key it got
        error = failure(provider)
    assert server.completions[0].api_key == KEY
    assert error.retryable is False and error.sent is True
    assert "rejected the key" in error.title and "401" in error.title and "OPENAI_API_KEY" in error.fix
    assert "***" in error.title  # the echoed key, scrubbed
    assert KEY not in repr(provider) and KEY not in repr(provider._get_endpoint()) and KEY not in caplog.text


# --- errors ---


def test_403_is_not_retryable(fake_openai, make_provider):
    fake_openai.queue_error(403, "unsupported_country_region_territory")
    error = failure(make_provider(fake_openai.url))
    assert error.retryable is False and "403" in error.title and "region" in error.title


def test_429_is_retryable_and_says_when(fake_openai, make_provider):
    fake_openai.queue_error(429, retry_after=7)
    error = failure(make_provider(fake_openai.url))
    assert error.retryable is True and error.sent is True
    assert "rate limiting" in error.title and "429" in error.title and "Wait 7 s" in error.fix


def test_429_out_of_quota_is_not_retryable(fake_openai, make_provider):
    fake_openai.queue_error(429, "insufficient_quota", "You exceeded your current quota")
    error = failure(make_provider(fake_openai.url))
    assert error.retryable is False and "quota" in error.title


@pytest.mark.parametrize("status, words", [(500, "server error"), (503, "unavailable or overloaded")])
def test_server_errors_are_retryable(fake_openai, make_provider, status, words):
    fake_openai.queue_error(status)
    error = failure(make_provider(fake_openai.url))
    assert error.retryable is True and error.sent is True
    assert str(status) in error.title and words in error.title


def test_404_names_the_model_setting(fake_openai, make_provider):
    fake_openai.queue_error(404)
    error = failure(make_provider(fake_openai.url))
    assert error.retryable is False and MODEL in error.fix and "frontier.fallback" in error.fix


def test_timeout_is_bounded_and_shared_by_the_sdks_attempts(fake_openai, make_provider):
    fake_openai.queue_delay(5).queue_delay(5)
    provider = make_provider(fake_openai.url, timeout=0.6, max_retries=1)
    assert provider.attempt_timeout == pytest.approx(0.3)
    error = failure(provider)
    assert error.retryable is True and "did not answer within 0.6 s" in error.title
    assert "2 attempts" in error.title
    assert len(fake_openai.completions) == 2  # one try and the SDK's one retry, then it gave up


def test_connection_refused_is_not_sent(make_provider):
    url = f"http://127.0.0.1:{closed_port()}/v1"
    error = failure(make_provider(url))
    assert error.sent is False and error.retryable is True
    assert "Cannot reach" in error.title and "Connection refused" in error.title and url in error.fix


def test_a_stream_cut_mid_answer(fake_openai, make_provider):
    fake_openai.reply = "This answer will not arrive in one piece, the connection drops."
    fake_openai.queue_drop(after_chunks=2)
    usage, received = Usage(), []
    error = failure(make_provider(fake_openai.url), usage, received)
    assert "".join(received) == fake_openai.reply[:24]  # what did arrive was streamed
    assert error.retryable is True and error.sent is True and "dropped mid-answer" in error.title
    assert usage.output_tokens == 6  # what arrived is counted (~4 chars a token)


def test_a_stream_that_ends_without_a_finish_reason(fake_openai, make_provider):
    fake_openai.queue_drop(after_chunks=2, clean=True)
    error = failure(make_provider(fake_openai.url))
    assert error.retryable is True and "cut off" in error.title


def test_a_malformed_chunk(fake_openai, make_provider):
    fake_openai.queue_malformed(after_chunks=1)
    received: list[str] = []
    error = failure(make_provider(fake_openai.url), received=received)
    assert received == [fake_openai.reply[:12]]
    assert error.retryable is False and "malformed chunk" in error.title and "base_url" in error.fix


def test_an_error_reported_inside_the_stream(fake_openai, make_provider):
    fake_openai.queue_stream_error("server_error", "The engine died mid-generation")
    error = failure(make_provider(fake_openai.url))
    assert error.retryable is True and "The engine died mid-generation" in error.title


def test_a_content_filter_stop_is_an_error(fake_openai, make_provider):
    fake_openai.queue(Behaviour(finish_reason="content_filter"))
    error = failure(make_provider(fake_openai.url))
    assert error.retryable is False and "content filter" in error.title


# --- failover and failback ---


def test_the_sdk_retries_are_the_only_retry_loop(fake_openai, make_provider):
    fake_openai.queue_error(503, headers={"retry-after-ms": "10"})
    provider = make_provider(fake_openai.url, max_retries=1)
    assert "".join(provider.generate(PROMPT, Usage())) == fake_openai.reply
    assert len(fake_openai.completions) == 2
    fake_openai.queue_error(503, headers={"retry-after-ms": "10"}).queue_error(503, headers={"retry-after-ms": "10"})
    failure(provider)
    assert len(fake_openai.completions) == 4  # 1 + max_retries, no second loop on top


def test_recovers_on_the_next_call_after_a_failure(fake_openai, make_provider):
    provider = make_provider(fake_openai.url)
    fake_openai.queue_drop(after_chunks=1)
    failure(provider)
    assert "".join(provider.generate(PROMPT, Usage())) == fake_openai.reply


def test_behind_the_breaker_it_fails_over_and_back(fake_openai, make_provider):
    now = [1000.0]
    guarded = GuardedProvider(make_provider(fake_openai.url), Breaker(None, clock=lambda: now[0]))
    for _ in range(3):
        fake_openai.queue_error(500)
        with pytest.raises(ProviderError):
            list(guarded.generate(PROMPT, Usage()))
    assert guarded.available is False  # failover: escalations go elsewhere, nothing is sent
    assert guarded.unavailable_reason()
    now[0] += COOLDOWN + 1
    assert guarded.available is True  # half-open: the next call is the probe
    assert "".join(guarded.generate(PROMPT, Usage())) == fake_openai.reply
    assert guarded.available is True and guarded.breaker.status() == "closed"  # failback
    assert len(fake_openai.completions) == 4


# --- the client shared with local.url ---


def test_the_shared_client_still_serves_the_local_tier(fake_openai):
    endpoint = ChatEndpoint(fake_openai.url, "", 5.0)  # as local.py builds it: no key, no retries
    try:
        assert endpoint.list_models() == [MODEL]
        usage = Usage()
        assert "".join(endpoint.stream(PROMPT, usage, 64, 0.2)) == fake_openai.reply
        assert usage.output_tokens == tokens(fake_openai.reply)  # the server's figure wins
        assert fake_openai.completions[0].json["temperature"] == 0.2
        fake_openai.queue_malformed(after_chunks=1)
        with pytest.raises(EndpointFailure) as caught:
            list(endpoint.stream(PROMPT, Usage(), 64, 0.2))
        assert caught.value.kind == "protocol"
    finally:
        endpoint.close()

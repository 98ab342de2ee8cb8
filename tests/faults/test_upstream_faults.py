"""Upstreams that misbehave: each attempt ends within the configured timeouts, is reported with the right outcome,
and fails over to another account when the client has been sent nothing yet."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import pytest

from tests.edge.conftest import AUTH, CHAT, EDGE_KEY, Stack
from tests.faults.conftest import outcomes

BAD_THEN_GOOD = "- {name: bad, key: sk-%s-000001}\n- {name: good, key: sk-good-000002}"
FILL_FIRST = "strategy: fill_first"  # the bad account is always tried first


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("behaviour", "outcome", "at_least"), [
    ("silent", "timeout", 0.5),  # accepts, reads the request, never answers: the first-byte timeout
    ("stall", "timeout", 0.5),  # status and headers, then nothing: the same timeout, before the client saw a byte
    ("hangup", "network_error", 0.0),  # the connection is closed without an answer
])
async def test_fault_before_the_first_byte_fails_over(
    make_fault_stack: Callable[..., Awaitable[Stack]], behaviour: str, outcome: str, at_least: float, stream: bool,
) -> None:
    stack = await make_fault_stack(openai_accounts=BAD_THEN_GOOD % behaviour, pool_settings=FILL_FIRST)
    started = time.monotonic()
    async with stack.http.post(f"{stack.url}/v1/chat/completions", headers=AUTH,
                               json={"model": "gpt-4o-mini", "messages": CHAT, "stream": stream}) as response:
        body = await response.read()
        took = time.monotonic() - started
        assert response.status == 200, body
        assert response.headers["x-poolgate-account"] == "openai/good"
    assert b"Hello!" in body
    assert at_least <= took < at_least + 0.8  # one first-byte timeout at most, then the good account at once
    recorded = await outcomes(stack)
    assert recorded["openai/bad"] == [outcome]
    assert recorded["openai/good"] == ["success"]
    accounts = await stack.accounts()
    assert accounts["openai/bad"]["consecutive_failures"] == 1 and accounts["openai/bad"]["in_flight"] == 0


@pytest.mark.parametrize(("behaviour", "outcome"), [
    ("midstream", "network_error"),  # the connection drops after the first event
    ("drip5000", "timeout"),  # the first event, then five seconds of silence: the read timeout ends it
])
async def test_fault_after_the_stream_started_ends_it_with_an_error_event(
    make_fault_stack: Callable[..., Awaitable[Stack]], behaviour: str, outcome: str,
) -> None:
    stack = await make_fault_stack(openai_accounts=BAD_THEN_GOOD % behaviour, pool_settings=FILL_FIRST)
    started = time.monotonic()
    async with stack.http.post(f"{stack.url}/v1/chat/completions", headers=AUTH,
                               json={"model": "gpt-4o-mini", "messages": CHAT, "stream": True}) as response:
        assert response.status == 200  # the stream had started: too late to fail over
        assert response.headers["x-poolgate-account"] == "openai/bad"
        body = (await response.read()).decode()
    assert time.monotonic() - started < 1.5
    assert body.startswith("data: ") and '"role":"assistant"' in body  # the first event reached the client
    assert "upstream_stream_error" in body and "[DONE]" not in body  # then an error event ends the stream
    recorded = await outcomes(stack)
    assert recorded == {"openai/bad": [outcome]}  # no failover: the good account was never asked
    assert stack.fake.stats.requests["sk-good-000002"] == 0


async def test_every_account_silent_gives_up_within_the_attempt_budget(
    make_fault_stack: Callable[..., Awaitable[Stack]],
) -> None:
    stack = await make_fault_stack(
        openai_accounts="- {name: one, key: sk-silent-000001}\n- {name: two, key: sk-silent-000002}",
        anthropic_accounts="- {name: one, key: sk-stall-000003}\n- {name: two, key: sk-stall-000004}",
        pool_settings="failover: {max_attempts: 2}")
    started = time.monotonic()
    status, body, _headers = await stack.post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT})
    assert 1.0 <= time.monotonic() - started < 1.8  # two first-byte timeouts, nothing more
    assert status == 503 and body["error"]["code"] == "upstream_unavailable"
    assert "timed out" in body["error"]["message"]
    started = time.monotonic()
    status, body, _headers = await stack.post(
        "/v1/messages", {"model": "claude-x", "max_tokens": 8, "messages": CHAT},
        headers={"x-api-key": EDGE_KEY})
    assert time.monotonic() - started < 1.8
    assert status == 503 and body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    recorded = await outcomes(stack)
    assert sorted(recorded) == ["anthropic/one", "anthropic/two", "openai/one", "openai/two"]
    assert all(kinds == ["timeout"] for kinds in recorded.values())

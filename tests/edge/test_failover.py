"""Failover between accounts: what the client sees, what reaches the upstream, and what the selector records."""

from __future__ import annotations

import logging

import anthropic
import openai
import pytest

from tests.edge.conftest import AUTH, CHAT, GOOD, Stack, StackFactory

BAD_THEN_GOOD = f"""
- {{name: limited, key: sk-ratelimited-0001, priority: high}}
- {{name: revoked, key: sk-unauthorized-0002, priority: high}}
{GOOD}
"""


def calls(stack: Stack, key_part: str) -> int:
    return sum(n for key, n in stack.fake.stats.requests.items() if key_part in key)


@pytest.mark.parametrize("stream", [False, True])
async def test_rate_limited_and_revoked_accounts_fail_over_to_a_healthy_one(
    make_stack: StackFactory, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="poolgate.edge")
    stack = await make_stack(openai_accounts=BAD_THEN_GOOD)
    client = stack.openai()
    for _ in range(3):
        if stream:
            chunks = [c async for c in await client.chat.completions.create(
                model="gpt-4o-mini", messages=CHAT, stream=True)]
            assert "".join(c.choices[0].delta.content or "" for c in chunks).startswith("Hello!")
        else:
            response = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=CHAT)
            assert response.headers["x-poolgate-account"] == "openai/good"
            assert response.parse().choices[0].message.content.startswith("Hello!")
    assert calls(stack, "ratelimited") == 1 and calls(stack, "unauthorized") == 1  # never tried again
    assert calls(stack, "good") == 3
    accounts = await stack.accounts()
    # The 429 rests the account for the model it was for (the upstream's retry-after); other models it still serves.
    [cooldown] = accounts["openai/limited"]["model_cooldowns"]
    assert cooldown["scope"] == "gpt-4o-mini" and not cooldown["probing"]
    assert 25_000 < int(cooldown["remaining_ms"]) <= 30_000
    assert accounts["openai/revoked"]["state"] == "ACCOUNT_STATE_DISABLED"
    assert "401" in accounts["openai/revoked"]["reason"]
    assert accounts["openai/good"]["successes_total"] == 3
    assert all(a["in_flight"] == 0 for a in accounts.values())
    assert accounts["openai/limited"]["credential_redacted"] == "…0001"
    async with stack.http.get(f"{stack.url}/v1/accounts/stats", headers=AUTH) as response:
        text = await response.text()
    assert "sk-ratelimited" not in text and "sk-unauthorized" not in text and "sk-good" not in text
    lines = [r.getMessage() for r in caplog.records if r.name == "poolgate.edge"]
    assert any(line.endswith("; trying openai/good, attempt 3/3") for line in lines), lines
    assert any("openai/limited rate limited, retry in 30 s; trying openai/" in line for line in lines), lines
    assert sum("pool=openai account=openai/good model=gpt-4o-mini status=200" in line for line in lines) == 3
    assert not any("sk-" in line for line in lines)


async def test_anthropic_stream_fails_over_before_the_first_byte(make_stack: StackFactory) -> None:
    stack = await make_stack(anthropic_accounts=f"""
        - {{name: overloaded, key: sk-ant-errorevent-01, priority: high}}
        - {{name: limited, key: sk-ant-ratelimited-02, priority: high}}
        {GOOD}""")
    async with stack.anthropic().messages.stream(model="claude-haiku-4-5", max_tokens=16, messages=CHAT) as stream:
        text = "".join([piece async for piece in stream.text_stream])
    assert text.startswith("Hello!")
    accounts = await stack.accounts()
    # An overloaded_error event is the provider's trouble: a failure for the circuit breaker, not a cooldown (the new
    # account's probe got no answer that proves it, so it is still probing).
    overloaded = accounts["anthropic/overloaded"]
    assert overloaded["state"] == "ACCOUNT_STATE_PROBING" and int(overloaded["failures_total"]) == 1
    assert [c["scope"] for c in accounts["anthropic/limited"]["model_cooldowns"]] == ["claude-haiku-4-5"]
    assert accounts["anthropic/good"]["successes_total"] == 1


async def test_when_every_account_fails_the_client_gets_the_last_upstream_error(make_stack: StackFactory) -> None:
    stack = await make_stack(openai_accounts="""
        - {name: a, key: sk-broken-0001}
        - {name: b, key: sk-broken-0002}""")
    with pytest.raises(openai.InternalServerError) as caught:
        await stack.openai().chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert caught.value.body["message"] == "Internal error (fake upstream)."  # type: ignore[index]
    assert calls(stack, "broken") == 2
    accounts = await stack.accounts()
    assert [accounts[f"openai/{n}"]["failures_total"] for n in "ab"] == [1, 1]


async def test_no_account_left_is_a_429_with_the_selectors_retry_after(make_stack: StackFactory) -> None:
    stack = await make_stack(openai_accounts="""
        - {name: a, key: sk-ratelimited-0001}
        - {name: b, key: sk-ratelimited-0002}""")
    client = stack.openai()
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert calls(stack, "ratelimited") == 2
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert calls(stack, "ratelimited") == 2  # no upstream call: the selector said no account is free
    assert caught.value.body["code"] == "no_account_available"  # type: ignore[index]
    assert 25 <= int(caught.value.response.headers["retry-after"]) <= 30
    status, _body, _headers = await stack.post("/v1/messages", {"model": "claude-x", "messages": CHAT})
    assert status == 200  # the other pool is unaffected


async def test_max_attempts_comes_from_the_pool(make_stack: StackFactory) -> None:
    stack = await make_stack(pool_settings="failover: {max_attempts: 2}", openai_accounts=f"""
        - {{name: a, key: sk-broken-0001, priority: high}}
        - {{name: b, key: sk-broken-0002, priority: high}}
        - {{name: c, key: sk-broken-0003, priority: high}}
        {GOOD}""")
    with pytest.raises(openai.InternalServerError):
        await stack.openai().chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert calls(stack, "broken") == 2 and calls(stack, "good") == 0


async def test_statuses_not_in_retry_on_are_not_retried(make_stack: StackFactory) -> None:
    stack = await make_stack(pool_settings="failover: {retry_on: [429, 500]}", openai_accounts=f"""
        - {{name: revoked, key: sk-unauthorized-0003, priority: high}}
        {GOOD}""")
    status, body, _headers = await stack.post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT})
    # Not passed on as 401 (the client's own key is fine): a 503 naming the account, never its key.
    assert status == 503 and body["error"]["code"] == "upstream_auth_failed"
    assert "openai/revoked" in body["error"]["message"] and "sk-unauthorized" not in body["error"]["message"]
    assert calls(stack, "good") == 0
    assert (await stack.accounts())["openai/revoked"]["state"] == "ACCOUNT_STATE_DISABLED"


async def test_slow_account_times_out_and_the_next_serves(make_stack: StackFactory) -> None:
    stack = await make_stack(timeouts="first_byte: 300ms", openai_accounts=f"""
        - {{name: slow, key: sk-slow3000-0001, priority: high}}
        {GOOD}""")
    completion = await stack.openai().chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert completion.choices[0].message.content
    accounts = await stack.accounts()
    assert accounts["openai/slow"]["failures_total"] == 1
    assert accounts["openai/good"]["successes_total"] == 1


async def test_body_cut_short_fails_over(make_stack: StackFactory) -> None:
    stack = await make_stack(openai_accounts=f"""
        - {{name: dropper, key: sk-midstream-0001, priority: high}}
        {GOOD}""")
    completion = await stack.openai().chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert completion.choices[0].message.content
    assert (await stack.accounts())["openai/dropper"]["failures_total"] == 1


async def test_mid_stream_failure_ends_the_stream_with_an_error_event(make_stack: StackFactory) -> None:
    stack = await make_stack(openai_accounts="- {name: dropper, key: sk-midstream-0001}",
                             anthropic_accounts="- {name: dropper, key: sk-ant-midstream-0001}")
    received: list[object] = []
    with pytest.raises(openai.APIError) as caught:
        async for chunk in await stack.openai().chat.completions.create(
                model="gpt-4o-mini", messages=CHAT, stream=True):
            received.append(chunk)
    assert len(received) == 1 and "after it started" in caught.value.message
    with pytest.raises(anthropic.APIStatusError) as anthropic_caught:
        async with stack.anthropic().messages.stream(model="claude-x", max_tokens=8, messages=CHAT) as stream:
            async for _event in stream:
                pass
    assert anthropic_caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    accounts = await stack.accounts()
    assert accounts["openai/dropper"]["failures_total"] == 1
    assert accounts["anthropic/dropper"]["failures_total"] == 1
    assert calls(stack, "midstream") == 2  # no failover once the client has bytes


async def test_error_event_in_a_started_stream_reaches_the_client_and_is_reported(make_stack: StackFactory) -> None:
    stack = await make_stack(openai_accounts="- {name: flaky, key: sk-lateerror-0001}")
    received: list[object] = []
    with pytest.raises(openai.APIError) as caught:
        async for chunk in await stack.openai().chat.completions.create(
                model="gpt-4o-mini", messages=CHAT, stream=True):
            received.append(chunk)
    assert received and "fake" in caught.value.message
    account = (await stack.accounts())["openai/flaky"]
    assert account["failures_total"] == 1 and account["successes_total"] == 0

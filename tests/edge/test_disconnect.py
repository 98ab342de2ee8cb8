"""A client that goes away: the upstream request is dropped, the lease freed, the account's health untouched."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from tests.edge.conftest import AUTH, CHAT, Stack, StackFactory


async def _settled(stack: Stack, account_id: str) -> dict[str, object]:
    """The account once the upstream saw the cancellation and the selector has the lease back (bounded wait)."""
    deadline = time.monotonic() + 3.0
    while True:
        account = (await stack.accounts())[account_id]
        if (stack.fake.stats.cancelled and stack.fake.stats.in_flight == 0 and account["in_flight"] == 0) \
                or time.monotonic() > deadline:
            return account
        await asyncio.sleep(0.02)


async def test_disconnect_while_waiting_for_the_upstream(make_stack: StackFactory) -> None:
    stack = await make_stack(openai_accounts="- {name: slow, key: sk-slow1500-0001}")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as client:
        try:
            await client.post(f"{stack.url}/v1/chat/completions", headers=AUTH,
                              json={"model": "gpt-4o-mini", "messages": CHAT})
            raise AssertionError("the request should have timed out on the client side")
        except TimeoutError:
            pass
    account = await _settled(stack, "openai/slow")
    assert stack.fake.stats.cancelled == 1 and stack.fake.stats.in_flight == 0
    assert account["in_flight"] == 0
    # Not the account's fault, and no answer either: its health is still unknown, its probe slot free again.
    assert account["state"] == "ACCOUNT_STATE_PROBING" and account["failures_total"] == 0


async def test_disconnect_mid_stream(make_stack: StackFactory) -> None:
    stack = await make_stack(anthropic_accounts="- {name: dripping, key: sk-ant-drip200-0001}")
    async with aiohttp.ClientSession() as client:
        response = await client.post(f"{stack.url}/v1/messages", headers=AUTH, json={
            "model": "claude-x", "max_tokens": 64, "stream": True, "messages": CHAT})
        assert response.status == 200
        first = await response.content.readany()
        assert first.startswith(b"event: message_start")
        response.close()  # drops the connection mid-stream
    account = await _settled(stack, "anthropic/dripping")
    assert stack.fake.stats.cancelled == 1
    assert account["in_flight"] == 0
    assert account["state"] == "ACCOUNT_STATE_HEALTHY" and account["failures_total"] == 0

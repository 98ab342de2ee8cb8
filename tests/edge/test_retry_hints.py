"""Answers clients can act on: what a retry cannot fix says `x-should-retry: false` (the SDKs and the coding agents
built on them obey it over their own rules), `/` answers, and unknown paths and methods are errors in the client's
API shape."""

from __future__ import annotations

import openai
import pytest

from tests.edge.conftest import AUTH, CHAT, EDGE_KEY, Stack, StackFactory


async def test_a_wrong_key_says_not_to_retry(stack: Stack) -> None:
    for path, body in (("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT}),
                       ("/v1/messages", {"model": "claude-x", "max_tokens": 8, "messages": CHAT})):
        status, answer, headers = await stack.post(path, body, {"Authorization": "Bearer wrong-key-0000"})
        assert status == 401 and headers.get("x-should-retry") == "false", (path, headers)
        assert "edge.api_keys" in str(answer)


async def test_answers_a_retry_can_fix_carry_no_hint(stack: Stack) -> None:
    status, _, headers = await stack.post("/v1/chat/completions", {"model": "nope", "messages": CHAT})
    assert status == 404 and headers.get("x-should-retry") == "false"  # no such model: a retry cannot help
    status, _, headers = await stack.post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT})
    assert status == 200 and "x-should-retry" not in headers


async def test_rejected_pool_credentials_stop_the_sdks_retries(make_stack: StackFactory) -> None:
    stack = await make_stack(openai_accounts="- {name: revoked, key: sk-unauthorized-hint-0001}")
    client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=EDGE_KEY, max_retries=3)
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    finally:
        await client.close()
    assert caught.value.status_code == 503 and caught.value.response.headers["x-should-retry"] == "false"
    async with stack.http.get(f"{stack.url}/metrics") as response:
        metrics = await response.text()
    # One try: the 503 says the keys, not the moment, are wrong (without the hint the SDK tries four times).
    assert ('poolgate_edge_requests_total{client="other",model="gpt-*",pool="openai",status="503"} 1.0'
            in metrics), metrics
    assert stack.fake.stats.requests["sk-unauthorized-hint-0001"] == 1


async def test_the_root_answers_get_and_head(stack: Stack) -> None:
    async with stack.http.get(f"{stack.url}/") as response:
        assert response.status == 200 and (await response.json())["service"] == "poolgate"
    async with stack.http.head(f"{stack.url}/") as response:  # Claude Code's preconnect
        assert response.status == 200


async def test_unknown_paths_and_methods_are_errors_in_the_clients_shape(stack: Stack) -> None:
    async with stack.http.post(f"{stack.url}/v1/nope", json={}, headers=AUTH) as response:
        body = await response.json()
        assert response.status == 404 and body["error"]["code"] == "not_found"
        assert "/v1/nope" in body["error"]["message"]
        assert response.headers["x-should-retry"] == "false"
    anthropic = {**AUTH, "anthropic-version": "2023-06-01"}
    async with stack.http.post(f"{stack.url}/v1/messages/batches", json={}, headers=anthropic) as response:
        body = await response.json()
        assert response.status == 404 and body["type"] == "error" and body["error"]["type"] == "not_found_error"
    async with stack.http.get(f"{stack.url}/v1/messages", headers=anthropic) as response:
        body = await response.json()
        assert response.status == 405 and response.headers["Allow"] == "POST"
        assert body["type"] == "error" and "use POST" in body["error"]["message"]

"""The edge without a working selector: quick 503s, readiness, and recovery without a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from fake_upstream import FakeUpstream
from poolgate.config.topology import Topology
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from proxy_edge.app import start_edge
from proxy_edge.handlers import SELECTOR
from proxy_edge.topology import ROUTING
from selector_service.app import start_selector
from tests.edge.conftest import AUTH, CHAT, EDGE_KEY, Stack, StackFactory, stack_config
from tests.support import eventually_async, free_port

REQUEST = {"model": "gpt-4o-mini", "messages": CHAT}


async def _wait_until_served(stack: Stack, within: float) -> float:
    """Seconds until a request succeeds (fails the test after ``within``)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        status, _body, _headers = await stack.post("/v1/chat/completions", REQUEST)
        if status == 200:
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    pytest.fail(f"the edge did not recover within {within} s")


async def test_selector_down_then_up_then_down_again(make_stack: StackFactory, tmp_path: object) -> None:
    port = free_port()
    stack = await make_stack(selector=False, selector_address=f"127.0.0.1:{port}")
    started = time.monotonic()
    status, body, _headers = await stack.post("/v1/chat/completions", REQUEST)
    assert time.monotonic() - started < 1.0  # the selector deadline (1 s) is not even needed
    assert status == 503 and body["error"]["code"] == "selector_unavailable"
    assert "poolgate selector" in body["error"]["message"]
    async with stack.http.get(f"{stack.url}/readyz") as ready, stack.http.get(f"{stack.url}/healthz") as health:
        assert ready.status == 503 and health.status == 200

    handle = await start_selector(stack.config, listen=f"127.0.0.1:{port}", database=f"{tmp_path}/s.db")
    try:
        assert await _wait_until_served(stack, within=5.0) < 3.0

        async def both_available() -> bool:
            # The request that was served was the new selector's probe of its account: the account is available
            # again once the report of the probe's answer (sent in the background) has reached the selector.
            async with stack.http.get(f"{stack.url}/readyz") as ready:
                body = await ready.json()
                return ready.status == 200 and body["available"] == {"openai": 1, "anthropic": 1}

        await eventually_async(both_available, 2.0, "both pools to have their account available")
    finally:
        await stack.edge.runner.app[SELECTOR].flush_reports()
        await handle.stop(grace=0)

    status, body, _headers = await stack.post("/v1/messages", {"model": "claude-x", "messages": CHAT},
                                              headers={"x-api-key": EDGE_KEY})
    assert status == 503 and body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    handle = await start_selector(stack.config, listen=f"127.0.0.1:{port}", database=f"{tmp_path}/s.db")
    try:
        await _wait_until_served(stack, within=5.0)
    finally:
        await stack.edge.runner.app[SELECTOR].flush_reports()
        await handle.stop(grace=0)


class HungSelector(selector_pb2_grpc.SelectorServicer):
    """A selector that sends its topology and then never answers a selection."""

    def __init__(self, topology: pb.Topology) -> None:
        self.topology = topology

    async def WatchTopology(self, request: pb.WatchTopologyRequest, context: Any) -> AsyncIterator[pb.Topology]:
        yield self.topology
        await asyncio.Event().wait()

    async def SelectAccount(self, request: pb.SelectAccountRequest, context: Any) -> pb.Lease:
        await asyncio.Event().wait()
        raise AssertionError("never answers")

    async def Exchange(self, request_iterator: AsyncIterator[pb.ExchangeRequest],
                       context: Any) -> AsyncIterator[pb.ExchangeResponse]:
        async for _request in request_iterator:
            pass
        return
        yield  # a generator that never answers


@pytest.fixture
async def hung_selector(fake_upstream: FakeUpstream) -> AsyncIterator[int]:
    """A port where a selector sends the pools of :func:`stack_config` and then hangs on every selection."""
    config = stack_config(fake_upstream.url)
    document = Topology.of(config.pools, config.models, config.routes).document()
    server = grpc.aio.server()
    selector_pb2_grpc.add_SelectorServicer_to_server(
        HungSelector(pb.Topology(version=Topology.version_of(document), document=document)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield port
    await server.stop(0)


async def test_hung_selector_gives_a_503_within_the_deadline(make_stack: StackFactory, hung_selector: int) -> None:
    stack = await make_stack(selector=False, selector_address=f"127.0.0.1:{hung_selector}",
                             timeouts="selector: 300ms")
    started = time.monotonic()
    status, body, _headers = await stack.post("/v1/chat/completions", REQUEST)
    elapsed = time.monotonic() - started
    assert status == 503 and body["error"]["code"] == "selector_timeout"
    assert 0.2 < elapsed < 1.0, body


async def test_readiness_does_not_depend_on_available_accounts(make_stack: StackFactory) -> None:
    """A pool without an account available keeps the edge ready (its clients get the pool's 429 or 503); the
    counts stay visible in the body."""
    stack = await make_stack(openai_accounts="- {name: revoked, key: sk-unauthorized-01}",
                             anthropic_accounts="- {name: revoked, key: sk-ant-unauthorized-01}")
    async with stack.http.get(f"{stack.url}/readyz") as ready:
        assert ready.status == 200
    await stack.post("/v1/chat/completions", REQUEST)
    await stack.post("/v1/messages", {"model": "claude-x", "max_tokens": 8, "messages": CHAT})
    accounts = await stack.accounts()
    assert {a["state"] for a in accounts.values()} == {"ACCOUNT_STATE_DISABLED"}
    async with stack.http.get(f"{stack.url}/readyz") as ready:
        assert ready.status == 200
        body = await ready.json()
        assert body == {"status": "ready", "routing": body["routing"], "available": {"openai": 0, "anthropic": 0}}
        assert body["routing"] == stack.edge.runner.app[ROUTING].current.version  # type: ignore[union-attr]


async def test_edge_presents_the_selectors_token(make_stack: StackFactory) -> None:
    stack = await make_stack(selector_settings="auth: {tokens: [lease-token-0123456789abcdef]}")
    status, _body, _headers = await stack.post("/v1/chat/completions", REQUEST)
    assert status == 200
    other = stack.config.model_copy(deep=True)
    other.selector.auth.tokens = ["another-token-0123456789abcdef"]
    edge = await start_edge(other, "127.0.0.1:0")
    try:
        async with stack.http.post(f"{edge.url}/v1/chat/completions", json=REQUEST, headers=AUTH) as response:
            body = await response.json()
        assert response.status == 503 and body["error"]["code"] == "selector_auth"
        assert "selector.auth.tokens" in body["error"]["message"] and "another-token" not in body["error"]["message"]
    finally:
        await edge.stop()

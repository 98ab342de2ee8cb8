"""The edge routes by the selector's topology and follows it at run time: pools and models added or removed by a
reload, an edge whose own file names other pools, an edge started before its selector, client keys on SIGHUP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest

from fake_upstream import FakeUpstream
from poolgate.config.loader import EdgeSettings, load_edge_settings
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from proxy_edge.app import CONFIG, EdgeServer, reload_settings, start_edge
from proxy_edge.topology import ROUTING
from selector_service.app import SelectorHandle, start_selector
from selector_service.overlay import ConfigSource
from tests.support import eventually_async, free_port

EDGE_KEY = "test-edge-key-0001"
AUTH = {"Authorization": f"Bearer {EDGE_KEY}"}
SELECTOR_CONFIG = """
pools:
  openai:
    base_url: {fake}/v1
    accounts:
      - {{name: a, key: sk-first-000001}}
models:
  gpt-*: openai
"""
SECOND_POOL = """  second:
    base_url: {fake}/v1
    accounts:
      - {{name: b, key: sk-second-drip300-000002}}
"""
EDGE_FILE = """
edge:
  api_keys: [{key}]
  selector: {selector}
  selector_transport: {transport}
  timeouts: {{connect: 2s, first_byte: 5s, total: 10s, selector: 1s}}
pools:
  elsewhere:
    format: anthropic
    base_url: http://127.0.0.1:9/
    api_key: ${{ONLY_THE_SELECTOR_HAS_THIS}}
models:
  claude-*: elsewhere
"""


@dataclass
class Running:
    fake: FakeUpstream
    selector_file: Path
    selector: SelectorHandle
    edge: EdgeServer
    http: aiohttp.ClientSession

    async def chat(self, model: str, stream: bool = False) -> tuple[int, str]:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
        async with self.http.post(f"{self.edge.url}/v1/chat/completions", json=body, headers=AUTH) as response:
            return response.status, await response.text()

    async def reload(self, text: str) -> None:
        self.selector_file.write_text(text.format(fake=self.fake.url))
        async with grpc.aio.insecure_channel(self.selector.address) as channel:
            await selector_pb2_grpc.AdminStub(channel).Reload(pb.ReloadRequest(), timeout=5)


def selector_text(second: bool) -> str:
    text = SELECTOR_CONFIG
    if second:
        text = text.replace("models:\n", SECOND_POOL + "models:\n  mistral-*: second\n")
    return text


async def start_selector_from(path: Path, tmp_path: Path, listen: str = "127.0.0.1:0") -> SelectorHandle:
    source = ConfigSource(path)
    return await start_selector(source.load(), listen=listen, database=str(tmp_path / "state.db"), source=source)


def edge_settings(tmp_path: Path, selector: str, transport: str, key: str = EDGE_KEY) -> EdgeSettings:
    path = tmp_path / "edge.yaml"
    path.write_text(EDGE_FILE.format(key=key, selector=selector, transport=transport))
    return load_edge_settings(path, environ={})  # the pools' ${VAR} is not needed where the edge runs


@pytest.fixture(params=["stream", "unary"])
async def running(request: pytest.FixtureRequest, tmp_path: Path,
                  fake_upstream: FakeUpstream) -> AsyncIterator[Running]:
    path = tmp_path / "poolgate.yaml"
    path.write_text(selector_text(second=False).format(fake=fake_upstream.url))
    selector = await start_selector_from(path, tmp_path)
    edge = await start_edge(edge_settings(tmp_path, selector.address, request.param), "127.0.0.1:0")
    http = aiohttp.ClientSession()
    yield Running(fake_upstream, path, selector, edge, http)
    await http.close()
    await edge.stop()
    await selector.stop(grace=0)


async def test_the_edge_serves_the_selectors_pools_not_its_own_files(running: Running) -> None:
    assert (await running.chat("gpt-4o"))[0] == 200
    status, text = await running.chat("claude-sonnet-4-5")  # its own file routes claude-* to a pool of its own
    assert status == 404 and "not served" in text
    assert running.fake.stats.requests["sk-first-000001"] == 1


async def test_a_pool_added_by_reload_is_served_and_one_removed_stops_while_its_requests_finish(
        running: Running) -> None:
    assert (await running.chat("mistral-small"))[0] == 404
    first = running.edge.runner.app[ROUTING].current
    assert first is not None
    await running.reload(selector_text(second=True))

    async def served() -> bool:
        return (await running.chat("mistral-small"))[0] == 200
    await eventually_async(served, within=5, what="the added pool served")
    assert running.fake.stats.requests["sk-second-drip300-000002"] == 1

    in_flight = asyncio.ensure_future(running.chat("mistral-small", stream=True))  # 300 ms between its events
    await eventually_async(lambda: _arrived(running, "sk-second-drip300-000002", 2), within=5,
                           what="the streaming request reached the upstream")
    await running.reload(selector_text(second=False))

    async def gone() -> bool:
        return (await running.chat("mistral-small"))[0] == 404
    await eventually_async(gone, within=5, what="the removed pool no longer served")
    assert not in_flight.done()  # still streaming from the removed pool
    status, text = await in_flight
    assert status == 200 and "data: [DONE]" in text
    assert running.fake.stats.requests["sk-second-drip300-000002"] == 2  # no request went there after the removal
    assert (await running.chat("gpt-4o"))[0] == 200
    assert running.edge.runner.app[ROUTING].current.version == first.version  # type: ignore[union-attr]


async def _arrived(running: Running, key: str, count: int) -> bool:
    return running.fake.stats.requests[key] >= count


async def test_an_edge_started_before_its_selector_answers_503_then_serves(
        tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    port = free_port()
    path = tmp_path / "poolgate.yaml"
    path.write_text(selector_text(second=False).format(fake=fake_upstream.url))
    edge = await start_edge(edge_settings(tmp_path, f"127.0.0.1:{port}", "stream"), "127.0.0.1:0")
    selector = None
    try:
        async with aiohttp.ClientSession() as http:
            body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(f"{edge.url}/v1/chat/completions", json=body, headers=AUTH) as response:
                assert response.status == 503
                assert response.headers["Retry-After"] == "1"
                assert "not received the pools from the selector" in (await response.json())["error"]["message"]
            async with http.get(f"{edge.url}/readyz") as response:
                assert response.status == 503
            selector = await start_selector_from(path, tmp_path, listen=f"127.0.0.1:{port}")

            async def served() -> bool:
                async with http.post(f"{edge.url}/v1/chat/completions", json=body, headers=AUTH) as answer:
                    return answer.status == 200
            await eventually_async(served, within=10, what="served once the selector is up")
            async with http.get(f"{edge.url}/readyz") as response:
                assert response.status == 200
                assert (await response.json())["routing"] == edge.runner.app[ROUTING].current.version  # type: ignore
    finally:
        await edge.stop()
        if selector is not None:
            await selector.stop(grace=0)


async def test_sighup_takes_new_client_keys_and_a_bad_file_changes_nothing(
        running: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app = running.edge.runner.app
    selector = running.selector.address
    assert reload_settings(app, lambda: edge_settings(tmp_path, selector, "stream", key="test-edge-key-0002"))
    assert (await running.chat("gpt-4o"))[0] == 401
    async with running.http.get(f"{running.edge.url}/v1/models",
                                headers={"Authorization": "Bearer test-edge-key-0002"}) as response:
        assert response.status == 200

    def broken() -> EdgeSettings:
        (tmp_path / "edge.yaml").write_text("edge: {api_keys: [test-edge-key-0003], listen: nowhere}\n")
        return load_edge_settings(tmp_path / "edge.yaml")
    with caplog.at_level(logging.ERROR, logger="poolgate.edge"):
        assert not reload_settings(app, broken)
    assert "edge settings not reloaded" in caplog.text and "test-edge-key-0003" not in caplog.text
    async with running.http.get(f"{running.edge.url}/v1/models",
                                headers={"Authorization": "Bearer test-edge-key-0002"}) as response:
        assert response.status == 200


async def test_sighup_takes_new_timeouts_for_the_requests_that_follow(
        running: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The upstream takes 600 ms: served under the file's first_byte of 5 s; after a reload to 200 ms, the same
    request times out (its account's one upstream call counted), without a restart."""
    running.fake.script("sk-first-000001", "slow600")
    before = sum(running.fake.stats.requests.values())
    status, _ = await running.chat("gpt-4o")
    assert status == 200
    transport = running.edge.runner.app[CONFIG].edge.selector_transport
    settings = edge_settings(tmp_path, running.selector.address, transport)
    settings.edge.timeouts.first_byte = 0.2
    settings.edge.listen = "127.0.0.1:1"  # a setting that needs a restart: named in the log, nothing else
    with caplog.at_level(logging.INFO, logger="poolgate.edge"):
        assert reload_settings(running.edge.runner.app, lambda: settings)
    assert "listen changed and takes effect on restart" in caplog.text and "timeouts" not in caplog.text.split(";")[-1]
    status, text = await running.chat("gpt-4o")
    assert status == 503 and "account openai/a (timed out: no answer in time)" in text, text
    assert sum(running.fake.stats.requests.values()) - before == 2  # one call each: the pool has one account


def test_an_edge_file_without_pools_is_enough(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text("edge:\n  api_keys: [k-0001-abcdefgh]\nselector:\n  listen: 127.0.0.1:50999\n")
    settings = load_edge_settings(path)
    assert settings.edge.api_keys == ["k-0001-abcdefgh"] and settings.selector.listen == "127.0.0.1:50999"

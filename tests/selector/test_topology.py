"""WatchTopology: the pools' public shape from a real selector, at once and after each reload; never a secret."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from poolgate.config.topology import Topology
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from selector_service.app import SelectorHandle, start_selector
from selector_service.overlay import ConfigSource

SECRETS = ("sk-test-personal-9f3a", "sk-ant-test-work-77c1", "proxy-pass-4242", "oauth-secret-1234")
CONFIG = """
pools:
  openai:
    base_url: https://api.openai.com/v1
    proxy: http://user:proxy-pass-4242@127.0.0.1:3128
    failover: {max_attempts: 2, retry_on: [429, network]}
    accounts:
      - {name: personal, key: sk-test-personal-9f3a}
  claude:
    format: anthropic
    accounts:
      - {name: work, key: sk-ant-test-work-77c1, headers: {x-secret: oauth-secret-1234}}
models:
  "gpt-*": openai
  sonnet: claude/claude-sonnet-4-5
routes:
  - {match: {header: {x-team: research}}, to: sonnet}
"""
GEMINI_POOL = """  gemini:
    base_url: https://generativelanguage.googleapis.com/v1beta/openai
    api_key: gm-test-key-0001
"""


@pytest.fixture
async def selector(tmp_path: Path) -> AsyncIterator[tuple[SelectorHandle, Path]]:
    path = tmp_path / "poolgate.yaml"
    path.write_text(CONFIG)
    source = ConfigSource(path)
    handle = await start_selector(source.load(), listen="127.0.0.1:0", database=str(tmp_path / "s.db"),
                                  source=source)
    yield handle, path
    await handle.stop(grace=0.5)


async def test_the_first_message_is_the_current_topology_without_secrets(
        selector: tuple[SelectorHandle, Path]) -> None:
    handle, _path = selector
    async with grpc.aio.insecure_channel(handle.address) as channel:
        call = selector_pb2_grpc.SelectorStub(channel).WatchTopology(pb.WatchTopologyRequest(), timeout=5)
        first = await call.read()
        call.cancel()
    assert isinstance(first, pb.Topology)
    for secret in SECRETS:
        assert secret not in first.document
    assert "proxy" not in json.loads(first.document)["pools"]["openai"]
    topology = Topology.parse(first.document)
    assert first.version == Topology.version_of(first.document)
    assert set(topology.pools) == {"openai", "claude"}
    assert topology.pools["claude"].format == "anthropic"
    assert topology.pools["claude"].base_url == "https://api.anthropic.com"
    assert topology.pools["claude"].apis == ("messages", "count_tokens")
    assert topology.pools["openai"].failover.max_attempts == 2
    assert topology.pools["openai"].failover.retry_on == [429, "network"]
    assert topology.models == {"gpt-*": "openai", "sonnet": "claude/claude-sonnet-4-5"}
    assert topology.routes[0].to == "sonnet" and topology.routes[0].match.header == {"x-team": "research"}


async def test_a_reload_sends_the_new_topology_and_a_known_version_waits_for_it(
        selector: tuple[SelectorHandle, Path]) -> None:
    handle, path = selector
    async with grpc.aio.insecure_channel(handle.address) as channel:
        stub = selector_pb2_grpc.SelectorStub(channel)
        call = stub.WatchTopology(pb.WatchTopologyRequest(), timeout=10)
        first = await call.read()
        waiting = stub.WatchTopology(pb.WatchTopologyRequest(known_version=first.version), timeout=10)
        early = asyncio.ensure_future(waiting.read())
        await asyncio.sleep(0.3)
        assert not early.done()  # nothing new to say yet

        path.write_text(CONFIG.replace("models:\n", GEMINI_POOL + "models:\n  \"gemini-*\": gemini\n"))
        await selector_pb2_grpc.AdminStub(channel).Reload(pb.ReloadRequest(), timeout=5)
        second, woken = await asyncio.wait_for(asyncio.gather(call.read(), early), 2)
        call.cancel()
        waiting.cancel()
    assert second.version != first.version and woken.version == second.version
    topology = Topology.parse(second.document)
    assert topology.pools["gemini"].apis == ("chat", "embeddings")
    assert topology.models["gemini-*"] == "gemini"
    assert "gm-test-key-0001" not in second.document


async def watch_past_current(stub: selector_pb2_grpc.SelectorStub) -> tuple[
        pb.Topology, grpc.aio.UnaryStreamCall[pb.WatchTopologyRequest, pb.Topology], asyncio.Future[pb.Topology]]:
    """The current topology, and a watch that knows it: its call and its first read, which waits for a change."""
    first = await stub.WatchTopology(pb.WatchTopologyRequest(), timeout=5).read()
    call = stub.WatchTopology(pb.WatchTopologyRequest(known_version=first.version), timeout=5)
    return first, call, asyncio.ensure_future(call.read())


async def test_a_reload_that_changes_only_accounts_sends_nothing(selector: tuple[SelectorHandle, Path]) -> None:
    handle, path = selector
    async with grpc.aio.insecure_channel(handle.address) as channel:
        stub = selector_pb2_grpc.SelectorStub(channel)
        first, call, pending = await watch_past_current(stub)
        path.write_text(CONFIG.replace("sk-test-personal-9f3a", "sk-test-rotated-0002"))
        await selector_pb2_grpc.AdminStub(channel).Reload(pb.ReloadRequest(), timeout=5)
        again = await stub.WatchTopology(pb.WatchTopologyRequest(), timeout=5).read()
        await asyncio.sleep(0.3)  # a wake-up would have been delivered by now: it is sent as the reload ends
        assert again.version == first.version and not pending.done()
        call.cancel()


async def test_a_reload_by_signal_wakes_watchers_too(selector: tuple[SelectorHandle, Path]) -> None:
    """Not only the Admin service: any reload of the core (SIGHUP goes through SelectorHandle.reload)."""
    handle, path = selector
    async with grpc.aio.insecure_channel(handle.address) as channel:
        stub = selector_pb2_grpc.SelectorStub(channel)
        first, call, pending = await watch_past_current(stub)
        path.write_text(CONFIG.replace("models:\n", GEMINI_POOL + "models:\n"))
        await handle.reload()
        second = await asyncio.wait_for(pending, 2)
        call.cancel()
    assert second.version != first.version and "gemini" in Topology.parse(second.document).pools

"""Processes killed with SIGKILL under load: the selector (the edge answers 503 in time and recovers, no health is
lost) and the edge (its leases expire and every account's in-flight count returns to zero)."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from fake_upstream import FakeUpstream
from poolgate.config import parse_config
from proxy_edge.app import start_edge
from selector_service.app import start_selector
from selector_service.plugin.types import SelectionRequest
from tests.edge.conftest import AUTH, CHAT, EDGE_KEY
from tests.faults.conftest import kill_process, poolgate_process, wait_listening
from tests.support import eventually, free_port

REQUEST = {"model": "gpt-4o-mini", "messages": CHAT}


def config_text(fake_url: str, selector_port: int, accounts: str, pool_settings: str = "") -> str:
    return f"""
edge:
  api_keys: [{EDGE_KEY}]
  selector: 127.0.0.1:{selector_port}
  timeouts: {{connect: 1s, first_byte: 2s, total: 10s, selector: 900ms}}
selector:
  listen: 127.0.0.1:{selector_port}
pools:
  openai:
    base_url: {fake_url}/v1
{pool_settings}
    accounts:
{accounts}
models:
  gpt-*: openai
"""


@dataclass
class Call:
    started: float
    ended: float
    status: int
    code: str


async def load(session: aiohttp.ClientSession, url: str, calls: list[Call], stop: asyncio.Event) -> None:
    """One client sending requests one after the other until ``stop`` (bounded by the test's few seconds)."""
    while not stop.is_set():
        started = time.monotonic()
        async with session.post(f"{url}/v1/chat/completions", json=REQUEST, headers=AUTH) as response:
            body = await response.json(content_type=None)
        code = body.get("error", {}).get("code", "") if response.status != 200 else ""
        calls.append(Call(started, time.monotonic(), response.status, code))
        if response.status != 200:
            await asyncio.sleep(0.02)  # as a client would, briefly, before retrying


async def test_selector_killed_under_load(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    port = free_port()
    accounts = """      - {name: limited, key: sk-ratelimited-000001}
      - {name: revoked, key: sk-unauthorized-000002}
      - {name: good1, key: sk-good-000003}
      - {name: good2, key: sk-good-000004}"""
    config_file, database, log = tmp_path / "poolgate.yaml", tmp_path / "state.db", tmp_path / "selector.log"
    text = config_text(fake_upstream.url, port, accounts)
    config_file.write_text(text)
    selector_args = ("selector", "--config", str(config_file), "--database", str(database))
    selector = poolgate_process(*selector_args, log=log)
    edge = None
    session = aiohttp.ClientSession()
    try:
        await wait_listening(port, selector, log)
        edge = await start_edge(parse_config(text), "127.0.0.1:0")
        for _ in range(4):  # round robin meets the 429 and the 401 at once; the client never sees them
            async with session.post(f"{edge.url}/v1/chat/completions", json=REQUEST, headers=AUTH) as response:
                assert response.status == 200, await response.text()
        requests = fake_upstream.stats.requests
        assert requests["sk-ratelimited-000001"] == 1 and requests["sk-unauthorized-000002"] == 1

        calls: list[Call] = []
        stop = asyncio.Event()
        clients = [asyncio.create_task(load(session, edge.url, calls, stop)) for _ in range(6)]
        await asyncio.sleep(0.5)
        selector.send_signal(signal.SIGKILL)
        selector.wait(timeout=10)
        killed_at = time.monotonic()
        await asyncio.sleep(2.5)  # long enough for every client to wait out edge.timeouts.selector_unavailable twice
        respawned_at = time.monotonic()
        selector = poolgate_process(*selector_args, log=log)
        await wait_listening(port, selector, log)
        back_at = time.monotonic()
        for _ in range(250):  # at most 5 s for a request started after the return to succeed
            if any(c.status == 200 and c.started >= back_at for c in calls):
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("no request succeeded within 5 s of the selector's return")
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*clients)

        before = [c for c in calls if c.ended < killed_at]
        # Answered before the selector could be back: each waited in vain for it (edge.timeouts.selector_unavailable).
        # A request still waiting when it returns is served, before the test sees the port open (back_at).
        down = [c for c in calls if killed_at <= c.started and c.ended < respawned_at]
        after = [c for c in calls if c.started >= back_at]
        assert before and all(c.status == 200 for c in before)
        assert len(down) >= 3, [(round(c.started - killed_at, 2), round(c.ended - killed_at, 2), c.status)
                                for c in calls if c.started >= killed_at]
        assert {c.status for c in down} == {503}, {(c.status, c.code) for c in down}
        assert {c.code for c in down} <= {"selector_unavailable", "selector_timeout"}
        assert max(c.ended - c.started for c in down) <= 1.0  # within the edge's selector deadline
        first_success = min(c.ended for c in after if c.status == 200)
        assert all(c.status == 200 for c in after if c.started >= first_success)

        async with session.get(f"{edge.url}/v1/accounts/stats", headers=AUTH) as response:
            listing = {a["account_id"]: a for p in (await response.json())["pools"] for a in p["accounts"]}
        [cooldown] = listing["openai/limited"]["model_cooldowns"]
        assert int(cooldown["remaining_ms"]) > 20_000  # the 30 s retry-after for the model survived
        assert listing["openai/revoked"]["state"] == "ACCOUNT_STATE_DISABLED"
        assert fake_upstream.stats.requests["sk-ratelimited-000001"] == 1  # never tried again, before or after the kill
        assert fake_upstream.stats.requests["sk-unauthorized-000002"] == 1
    finally:
        await session.close()
        if edge is not None:
            await edge.stop()
        kill_process(selector)


async def test_edge_killed_mid_stream_releases_its_leases(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    accounts = "\n".join(f"      - {{name: slow{i}, key: sk-drip300-00000{i}}}" for i in range(3))
    config_file, log = tmp_path / "poolgate.yaml", tmp_path / "edge.log"
    handle = await start_selector(parse_config(config_text(fake_upstream.url, 0, accounts, "    lease_ttl: 2s")),
                                  listen="127.0.0.1:0", database=str(tmp_path / "state.db"))
    config_file.write_text(config_text(fake_upstream.url, handle.port, accounts, "    lease_ttl: 2s"))
    port = free_port()
    edge = poolgate_process("edge", "--config", str(config_file), "--listen", f"127.0.0.1:{port}", log=log)
    session = aiohttp.ClientSession()
    responses: list[aiohttp.ClientResponse] = []
    try:
        await wait_listening(port, edge, log)

        def in_flight() -> dict[str, int]:
            return {a.account.account_id: a.account.in_flight for p in handle.core.snapshots() for a in p.accounts}

        for _ in range(3):  # three streams, one per account (round robin), each some seconds long
            response = await session.post(f"http://127.0.0.1:{port}/v1/chat/completions", headers=AUTH,
                                          json={**REQUEST, "stream": True})
            assert response.status == 200
            responses.append(response)
            assert (await response.content.readany()).startswith(b"data: ")
        assert in_flight() == {"openai/slow0": 1, "openai/slow1": 1, "openai/slow2": 1}

        def states() -> set[str]:
            return {s.state.value for p in handle.core.snapshots() for s in p.accounts}
        # Each stream was its account's probe: the edge reports its 2xx early, in the background. Killed before that
        # report, an account would rightly stay unproven; what is tested here is the release of the leases.
        await eventually(lambda: states() == {"healthy"}, what="the probes' early reports")
        edge.send_signal(signal.SIGKILL)
        edge.wait(timeout=10)
        killed_at = time.monotonic()
        for response in responses:
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()  # the client sees the connection drop
        while any(in_flight().values()):
            assert time.monotonic() - killed_at < 2.0 + 1.5, in_flight()  # lease_ttl plus one sweep, and margin
            await asyncio.sleep(0.05)
        listing = {s.account.account_id: s for p in handle.core.snapshots() for s in p.accounts}
        assert all(s.account.requests_total == 1 and s.account.successes_total == 0 for s in listing.values())
        assert all(s.state.value == "healthy" for s in listing.values())  # an expired lease is not a failure
        assert len(handle.core.leases) == 0
        grant = await handle.core.select(SelectionRequest(pool="openai"), (), 0)
        assert grant.lease.account.in_flight == 1  # the accounts serve again
    finally:
        for response in responses:
            response.close()
        await session.close()
        kill_process(edge)
        await handle.stop(grace=0)

"""Two edges in front of two selector replicas sharing one PostgreSQL database, every one its own process: each edge
spreads its selections over both replicas, a killed replica costs no request (the edge retries on the other), and a
replica that comes back serves again within seconds, with nothing restarted."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import grpc
import pytest

from fake_upstream import FakeUpstream
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from tests.edge.conftest import AUTH, CHAT, EDGE_KEY
from tests.faults.conftest import kill_process, poolgate_process, wait_listening, wait_ok
from tests.support import free_port

REQUEST = {"model": "gpt-4o-mini", "messages": CHAT}
BACK_WITHIN = 5.0
"""Seconds within which a restarted replica must serve again."""


def config_text(fake_url: str, selectors: list[int], transport: str) -> str:
    return f"""
edge:
  api_keys: [{EDGE_KEY}]
  selector: {",".join(f"127.0.0.1:{port}" for port in selectors)}
  selector_transport: {transport}
  timeouts: {{connect: 1s, first_byte: 2s, total: 10s, selector: 2s}}
selector:
  listen: 127.0.0.1:{selectors[0]}
pools:
  openai:
    base_url: {fake_url}/v1
    accounts:
      - {{name: a, key: sk-good-replicas-0001}}
      - {{name: b, key: sk-good-replicas-0002}}
      - {{name: c, key: sk-good-replicas-0003}}
models:
  gpt-*: openai
"""


class Processes:
    """The test's processes, each logging to its own file; all killed at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.directory / f"{name}.log"
        process = poolgate_process(*args, log=log)
        self.running.append(process)
        return process, log

    def stop(self) -> None:
        for process in self.running:
            kill_process(process)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    yield started
    started.stop()


async def leases_granted(port: int) -> int:
    """How many leases the replica at ``port`` has granted since it started (its own count, kept in memory)."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        listing = await selector_pb2_grpc.SelectorStub(channel).ListAccounts(pb.ListAccountsRequest(), timeout=5)
    return sum(account.requests_total for pool in listing.pools for account in pool.accounts)


async def chat(session: aiohttp.ClientSession, edge_url: str) -> int:
    async with session.post(f"{edge_url}/v1/chat/completions", json=REQUEST, headers=AUTH) as response:
        await response.read()
        return response.status


@pytest.mark.parametrize("transport", ["stream", "unary"])
async def test_two_edges_use_both_replicas_and_a_returning_replica_serves_again(
    tmp_path: Path, fake_upstream: FakeUpstream, postgres_database: str, processes: Processes, transport: str,
) -> None:
    selector_ports = [free_port(), free_port()]
    edge_ports = [free_port(), free_port()]
    config = tmp_path / "poolgate.yaml"
    config.write_text(config_text(fake_upstream.url, selector_ports, transport))

    def start_replica(index: int) -> tuple[subprocess.Popen[bytes], Path]:
        return processes.start(f"selector{index}.{time.monotonic_ns()}", "selector", "--config", str(config),
                               "--database", postgres_database, "--listen", f"127.0.0.1:{selector_ports[index]}")

    replicas = [start_replica(0)]
    await wait_listening(selector_ports[0], *replicas[0])  # the first creates the tables
    replicas.append(start_replica(1))
    await wait_listening(selector_ports[1], *replicas[1])
    edges = [processes.start(f"edge{i}", "edge", "--config", str(config), "--listen", f"127.0.0.1:{port}")
             for i, port in enumerate(edge_ports)]
    for port in edge_ports:
        wait_ok(f"http://127.0.0.1:{port}/readyz", [p for p, _ in (*replicas, *edges)],
                [log for _, log in (*replicas, *edges)])
    edge_urls = [f"http://127.0.0.1:{port}" for port in edge_ports]

    async with aiohttp.ClientSession() as session:
        # 40 requests, 4 at a time, alternating edges: each replica serves a share.
        for _ in range(10):
            statuses = await asyncio.gather(*(chat(session, edge_urls[i % 2]) for i in range(4)))
            assert statuses == [200] * 4
        granted = [await leases_granted(port) for port in selector_ports]
        assert sum(granted) >= 40
        assert min(granted) >= 0.3 * sum(granted), granted  # round robin per edge: about half each

        # One replica killed: every request is still served (a selection it fails is retried on the other).
        replicas[0][0].send_signal(signal.SIGKILL)
        replicas[0][0].wait(timeout=10)
        before = await leases_granted(selector_ports[1])
        for _ in range(5):
            statuses = await asyncio.gather(*(chat(session, edge_urls[i % 2]) for i in range(4)))
            assert statuses == [200] * 4
        assert await leases_granted(selector_ports[1]) - before >= 20

        # Back on the same address: each edge uses it again within seconds, without a restart.
        replicas[0] = start_replica(0)
        await wait_listening(selector_ports[0], *replicas[0])
        back_at = time.monotonic()
        served_again = []
        for edge_url in edge_urls:
            first = await leases_granted(selector_ports[0])
            while await leases_granted(selector_ports[0]) == first:
                assert time.monotonic() - back_at < BACK_WITHIN, f"{edge_url} does not use the restarted replica"
                assert await chat(session, edge_url) == 200
            served_again.append(time.monotonic() - back_at)
        # And each edge spreads over both again.
        for edge_url in edge_urls:
            before_each = [await leases_granted(port) for port in selector_ports]
            statuses = [await chat(session, edge_url) for _ in range(10)]
            assert statuses == [200] * 10
            after_each = [await leases_granted(port) for port in selector_ports]
            shares = [n - b for n, b in zip(after_each, before_each, strict=True)]
            assert min(shares) >= 4, (edge_url, shares)  # round robin: 5 each
    print(f"the restarted replica served each edge again {served_again[0]:.2f} s and {served_again[1]:.2f} s after it "
          "listened")

"""The CI-light variant of the fast-path benchmark: fails only on gross regressions, judged by ratios measured in
the same run (the machine is shared; absolute times mean nothing here). The full comparison is `make bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import aiohttp
import grpc
import pytest
from aiohttp.test_utils import TestServer

from fake_upstream import FakeUpstream
from poolgate.v1 import selector_pb2_grpc
from tests.support import eventually

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import bare_proxy  # noqa: E402
from edge_bench import BODY, UPSTREAM_KEYS  # noqa: E402
from transport_floor import EchoSelector  # noqa: E402


@pytest.mark.timeout(120)
def test_no_gross_regression_against_a_bare_proxy() -> None:
    result = subprocess.run([sys.executable, "bench/compare.py", "--quick", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=110)
    print(result.stdout)
    assert "stream req/s / bare proxy req/s" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(120)
def test_the_transport_floor_benchmark_measures_a_proxy_that_takes_a_selection_per_request() -> None:
    result = subprocess.run([sys.executable, "bench/transport_floor.py", "--seconds", "0.3", "--warmup", "0.1",
                             "--rounds", "1"], cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stdout + result.stderr
    names = ("bare proxy", "bare + round trip", "poolgate stream")
    rows = {name: line.removeprefix(name).split() for line in result.stdout.splitlines() for name in names
            if line.startswith(name + "  ")}
    assert set(rows) == set(names), result.stdout
    floor = rows["bare + round trip"]
    # Requests went through the round trip (the proxy raises on a failed selection, which the load turns into an
    # error), and its throughput relative to the bare proxy is printed.
    assert float(floor[0].replace(",", "")) > 0, result.stdout
    assert 0 < float(floor[1]) < 5, result.stdout


async def test_the_floor_proxy_takes_one_selection_and_sends_one_report_per_request(
    fake_upstream: FakeUpstream,
) -> None:
    echo = EchoSelector()
    server = grpc.aio.server()
    selector_pb2_grpc.add_SelectorServicer_to_server(echo, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    proxy = TestServer(bare_proxy.make_app(fake_upstream.url, UPSTREAM_KEYS[0], f"127.0.0.1:{port}"),
                       host="127.0.0.1")
    await proxy.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(5):
                async with session.post(proxy.make_url("/v1/chat/completions"), json=BODY) as response:
                    assert response.status == 200, await response.text()
        await eventually(lambda: echo.reports == 5, what="the five outcome reports")
        assert echo.selections == 5
    finally:
        await proxy.close()
        await server.stop(None)

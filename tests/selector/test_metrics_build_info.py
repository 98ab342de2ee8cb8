"""The selector's /metrics as a Prometheus operator reads it: the build, the process, and no ``_created`` series."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import aiohttp
import grpc

from poolgate import __version__
from poolgate.v1 import selector_pb2 as pb
from tests.selector.test_admin import CONFIG, Client, start


async def test_build_info_and_process_series_and_no_created_series(tmp_path: Path) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text(CONFIG)
    selector = await start(path)
    try:
        async with grpc.aio.insecure_channel(selector.address) as channel:
            await Client(channel).serve(pb.OUTCOME_SUCCESS, input_tokens=7, output_tokens=3)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{selector.metrics_port}/metrics") as response:
                assert response.status == 200
                text = await response.text()
    finally:
        await selector.stop(grace=0.5)
    names = [line.partition("{")[0].partition(" ")[0] for line in text.splitlines() if not line.startswith("#")]
    assert "poolgate_selector_leases_total" in names  # counters keep their _total series
    assert [name for name in names if name.endswith("_created")] == []
    assert f'poolgate_build_info{{python="{platform.python_version()}",version="{__version__}"}} 1.0' in text
    assert "python_info{" in text
    if sys.platform == "linux":
        assert "process_cpu_seconds_total" in names and "process_open_fds" in names
    # The existing series are as they were.
    assert 'poolgate_selector_tokens_total{account="personal",direction="input",pool="openai"} 7.0' in text
    assert "poolgate_selector_usage_records_dropped_total 0.0" in text  # the usage log kept up

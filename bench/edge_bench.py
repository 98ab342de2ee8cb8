"""Edge overhead: requests/s and added latency of the edge versus calling the fake upstream directly.

Runs the fake upstream (zero latency), the selector and the edge as separate processes (``poolgate up`` with
``edge.fake_upstream``), and drives them from this process with an aiohttp client, at concurrency 1 and 32,
non-streaming (latency of the whole response) and streaming (time to the first byte).

    python bench/edge_bench.py [--duration 3] [--concurrency 1 32] [--log-level warning]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

EDGE_KEY = "bench-edge-key"
UPSTREAM_KEYS = ("sk-bench-limit10000000-0001", "sk-bench-limit10000000-0002", "sk-bench-limit10000000-0003")
"""Keys of the fake upstream whose reported per-minute limit (``limitN``) a benchmark's load never reaches: the
benchmarks measure poolgate's own work, not an account resting at its limit."""
UPSTREAM_KEY = UPSTREAM_KEYS[0]
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pools_yaml(upstream: str, accounts: int = 3, keys: Sequence[str] = UPSTREAM_KEYS) -> str:
    """The benchmarks' one pool on the fake upstream at ``upstream`` (``http://host:port``), its accounts cycling
    through ``keys`` (the fake upstream's good keys by default), and the ``gpt-*`` models routed to it."""
    rows = "\n".join(f"      - {{name: a{i}, key: {keys[i % len(keys)]}}}" for i in range(accounts))
    return f"""pools:
  openai:
    base_url: {upstream}/v1
    accounts:
{rows}
models: {{"gpt-*": openai}}
"""


def cpu_seconds(pid: int) -> float:
    """CPU time of a process so far (Linux: /proc/PID/schedstat in nanoseconds, else /proc/PID/stat in ticks);
    0.0 once it is gone."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (/proc/PID/status); 0.0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def percentile_ms(seconds: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of durations in seconds, in milliseconds (nan for none)."""
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000 if ordered else float("nan")


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        return percentile_ms(self.latencies, fraction)


async def load(url: str, key: str, stream: bool, concurrency: int, duration: float, warmup: float) -> Result:
    """``concurrency`` clients in a loop for ``duration`` s after ``warmup`` s; latency to the end or first byte."""
    body = json.dumps({**BODY, "stream": stream}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    latencies: list[float] = []
    count = 0
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal count
        while (now := loop.time()) < stop_at:
            async with session.post(url, data=body, headers=headers) as response:
                if stream:
                    await response.content.readany()
                    first = loop.time()
                    await response.read()
                else:
                    await response.read()
                    first = loop.time()
                if response.status != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status}: {await response.text()}")
            if now >= measure_from and loop.time() <= stop_at:
                latencies.append(first - now)
                count += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    return Result(count, duration, latencies)


def start_processes(workdir: Path, log_level: str) -> tuple[subprocess.Popen[bytes], str, str]:
    edge, selector, fake = free_port(), free_port(), free_port()
    config = workdir / "bench.yaml"
    config.write_text(f"""
edge: {{listen: 127.0.0.1:{edge}, api_keys: [{EDGE_KEY}], fake_upstream: 127.0.0.1:{fake}}}
selector: {{listen: 127.0.0.1:{selector}}}
{pools_yaml(f"http://127.0.0.1:{fake}")}""")
    process = subprocess.Popen(
        [sys.executable, "-m", "poolgate_cli", "--log-level", log_level, "up", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    edge_url, fake_url = f"http://127.0.0.1:{edge}", f"http://127.0.0.1:{fake}"
    try:
        wait_ready(edge_url, [process],
                   lambda p: f"poolgate up failed:\n{p.stderr.read().decode() if p.stderr else ''}")
    except SystemExit:
        process.kill()
        raise
    return process, edge_url, fake_url


def wait_ready(url: str, processes: list[subprocess.Popen[bytes]],
               exited: Callable[[subprocess.Popen[bytes]], str], within: float = 30) -> None:
    """Until the edge at ``url`` says ready (``/readyz`` 200); SystemExit with ``exited(process)`` if one of
    ``processes`` ends first, or after ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise SystemExit(exited(process))
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} did not get ready within {within:g} s")


async def run(args: argparse.Namespace, edge_url: str, fake_url: str) -> None:
    print(f"{'case':<22}{'direct req/s':>13}{'edge req/s':>12}{'direct p50/p99 ms':>20}{'edge p50/p99 ms':>18}"
          f"{'added p50/p99 ms':>19}")
    for stream in (False, True):
        for concurrency in args.concurrency:
            direct = await load(f"{fake_url}/v1/chat/completions", UPSTREAM_KEY, stream, concurrency,
                                args.duration, args.warmup)
            edge = await load(f"{edge_url}/v1/chat/completions", EDGE_KEY, stream, concurrency,
                              args.duration, args.warmup)
            name = f"{'stream (TTFB)' if stream else 'non-stream'} c={concurrency}"
            d50, d99, e50, e99 = direct.percentile(0.5), direct.percentile(0.99), edge.percentile(0.5), \
                edge.percentile(0.99)
            print(f"{name:<22}{direct.rate:>13.0f}{edge.rate:>12.0f}{f'{d50:.2f} / {d99:.2f}':>20}"
                  f"{f'{e50:.2f} / {e99:.2f}':>18}{f'{e50 - d50:.2f} / {e99 - d99:.2f}':>19}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per case and target")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds before measuring starts")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--log-level", default="warning", help="log level of the processes (info logs each request)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poolgate-bench-") as workdir:
        process, edge_url, fake_url = start_processes(Path(workdir), args.log_level)
        try:
            asyncio.run(run(args, edge_url, fake_url))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())

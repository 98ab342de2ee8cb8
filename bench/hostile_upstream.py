"""Hostile upstream answers: does one client's 100 MB answer stall the edge for everybody else?

Runs the fake upstream, the selector and the edge as separate processes. Other clients call the edge in a loop
(non-stream chat, the fake upstream at zero latency) twice: alone, then while one hostile client keeps asking for
a 100 MB SSE event (``hugeevent100``) and a 100 MB non-stream body (``hugebody100``), a pair a second, each of
which the edge cuts at its limits (``edge.upstream_limits``: 8 MiB per event, 32 MiB per body). Prints the other
clients' p50/p99 in both runs and the edge's RSS before and at its peak, against the goals (p99 rises by < 50 ms,
RSS by < 50 MB).

    python bench/hostile_upstream.py [--seconds 8] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Target, spawn, start_fake_upstream, stop_all
from edge_bench import EDGE_KEY, Result, free_port, load, pools_yaml, rss_mb, wait_ready

P99_GOAL_MS = 50.0
RSS_GOAL_MB = 50.0
HOSTILE_POOLS = """  hostile_event:
    base_url: {upstream}/v1
    circuit: {{failures: 1000000}}
    accounts: [{{name: e, key: sk-hugeevent100-0001}}]
  hostile_body:
    base_url: {upstream}/v1
    circuit: {{failures: 1000000}}
    accounts: [{{name: b, key: sk-hugebody100-0002}}]
"""
"""The hostile accounts keep being tried (their circuit never opens): every hostile request reaches the upstream."""


def start_edge(workdir: Path, upstream: str) -> Target:
    """Selector and edge processes: the benchmark's pool, plus one pool per hostile answer."""
    selector, edge = free_port(), free_port()
    pools = pools_yaml(upstream).replace("\nmodels:", "\n" + HOSTILE_POOLS.format(upstream=upstream) + "models:")
    pools = pools.replace('{"gpt-*": openai}', '{"gpt-*": openai, hostile-event: hostile_event, '
                                                'hostile-body: hostile_body}')
    config = workdir / "hostile.yaml"
    config.write_text(f"""
edge: {{listen: 127.0.0.1:{edge}, api_keys: [{EDGE_KEY}]}}
selector: {{listen: 127.0.0.1:{selector}, database: {workdir / 'hostile.db'}}}
{pools}""")
    target = Target("hostile", f"http://127.0.0.1:{edge}/v1", EDGE_KEY)
    level = ("--log-level", "error")
    target.processes.append(spawn("-m", "poolgate_cli", *level, "selector", "--config", str(config)))
    target.processes.append(spawn("-m", "poolgate_cli", *level, "edge", "--config", str(config)))
    wait_ready(f"http://127.0.0.1:{edge}", target.processes, lambda p: f"a benchmark process exited ({p.args})", 60)
    return target


class HostileClient:
    """Asks for the huge answers in turn, a pair a second, until stopped; counts them and the edge's answers."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.done = 0
        self.statuses: dict[int, int] = {}
        self.bytes_received = 0

    async def run(self, stop: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {EDGE_KEY}"}
        chat = [{"role": "user", "content": "Say hello"}]
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            while not stop.is_set():
                for model, stream in (("hostile-event", True), ("hostile-body", False)):
                    body = {"model": model, "messages": chat, "stream": stream}
                    async with session.post(f"{self.url}/chat/completions", json=body, headers=headers) as answer:
                        self.bytes_received += len(await answer.read())
                        self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1
                    self.done += 1
                try:  # a pair of huge answers a second, not a flood: the cost of each, not of a saturated link
                    await asyncio.wait_for(stop.wait(), 1.0)
                except TimeoutError:
                    pass


async def samplerss_mb(target: Target, stop: asyncio.Event, peak: list[float]) -> None:
    """The edge's (the target's second process) peak RSS while ``stop`` is not set, every 20 ms."""
    edge = target.processes[1].pid
    while not stop.is_set():
        peak[0] = max(peak[0], rss_mb(edge))
        await asyncio.sleep(0.02)


async def others(target: Target, args: argparse.Namespace) -> Result:
    return await load(f"{target.url}/chat/completions", EDGE_KEY, False, args.concurrency, args.seconds, 1.0)


async def run(args: argparse.Namespace, workdir: Path) -> int:
    fake, upstream = start_fake_upstream()
    target: Target | None = None
    try:
        target = start_edge(workdir, upstream)
        edge_pid = target.processes[1].pid
        idle_rss = rss_mb(edge_pid)
        alone = await others(target, args)

        stop = asyncio.Event()
        hostile = HostileClient(target.url)
        peak = [idle_rss]
        hostile_task = asyncio.create_task(hostile.run(stop))
        sampler = asyncio.create_task(samplerss_mb(target, stop, peak))
        await asyncio.sleep(1.0)  # the hostile answers are under way
        beside = await others(target, args)
        stop.set()
        await asyncio.gather(hostile_task, sampler)

        rise_p99 = beside.percentile(0.99) - alone.percentile(0.99)
        rise_rss = peak[0] - idle_rss
        print(f"\n{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}; {args.concurrency} other clients, "
              f"{args.seconds:g} s per run; zero-latency fake upstream")
        print(f"{'other clients':<34}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
        for name, result in (("alone", alone), ("beside one hostile client", beside)):
            print(f"{name:<34}{result.rate:>12.0f}{result.percentile(0.5):>10.1f}{result.percentile(0.99):>10.1f}")
        print(f"hostile answers asked for: {hostile.done} (edge statuses {hostile.statuses}; "
              f"{hostile.bytes_received / 1e6:.1f} MB reached the hostile client)")
        print(f"p99 rise: {rise_p99:.1f} ms (goal < {P99_GOAL_MS:g} ms: ratio {rise_p99 / P99_GOAL_MS:.2f}); "
              f"edge RSS {idle_rss:.0f} MB idle, {peak[0]:.0f} MB at peak, rise {rise_rss:.0f} MB "
              f"(goal < {RSS_GOAL_MB:g} MB: ratio {rise_rss / RSS_GOAL_MB:.2f})")
        return 0
    finally:
        stop_all([target] if target is not None else [], fake)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds each run of the other clients lasts")
    parser.add_argument("--concurrency", type=int, default=8, help="other clients calling at once")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        started = time.monotonic()
        status = asyncio.run(run(args, Path(workdir)))
        print(f"({time.monotonic() - started:.0f} s)")
        return status


if __name__ == "__main__":
    sys.exit(main())

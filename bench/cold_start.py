"""Call storms at a cold start: what accounts in trouble receive while the pool's health is still unknown.

A fresh selector database and a pool of three accounts on the fake upstream: one answers 429 (Retry-After 30 s), one
401, one is fine. ``--requests`` requests at ``--concurrency``, then ``--streams`` streams; then a second pool
whose accounts answer their headers after 200 ms and stream for about 5 s, hit by ``--concurrency`` streams at
once. Printed: upstream calls per client request, calls per bad account, client errors, and the cold start's time
to first byte. Both transports, each on its own fresh processes.

    python bench/cold_start.py [--requests 1000] [--streams 200] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from compare import spawn, start_fake_upstream
from edge_bench import EDGE_KEY, free_port, wait_ready

AUTH = {"Authorization": f"Bearer {EDGE_KEY}"}
CHAT = [{"role": "user", "content": "Say hello"}]
BAD = {"429 (Retry-After 30 s)": "sk-ratelimited-cold-0001", "401": "sk-unauthorized-cold-0002"}
FINE = "sk-fine-cold-0003"
SLOW = ("sk-slow200drip400-cold-0004", "sk-slow200drip400-cold-0005", "sk-slow200drip400-cold-0006")


def config_text(workdir: Path, upstream: str, transport: str) -> tuple[str, str]:
    edge, selector = free_port(), free_port()
    bad = "\n".join(f"      - {{name: bad{i}, key: {key}}}" for i, key in enumerate(BAD.values()))
    slow = "\n".join(f"      - {{name: slow{i}, key: {key}}}" for i, key in enumerate(SLOW))
    text = f"""
edge: {{listen: 127.0.0.1:{edge}, api_keys: [{EDGE_KEY}], selector_transport: {transport}}}
selector: {{listen: 127.0.0.1:{selector}, database: {workdir / (transport + '.db')}}}
pools:
  storm:
    base_url: {upstream}/v1
    accounts:
{bad}
      - {{name: fine, key: {FINE}}}
  slow:
    base_url: {upstream}/v1
    accounts:
{slow}
models: {{"storm-*": storm, "slow-*": slow}}
"""
    config = workdir / f"{transport}.yaml"
    config.write_text(text)
    return str(config), f"http://127.0.0.1:{edge}"


async def drive(session: aiohttp.ClientSession, url: str, model: str, count: int, concurrency: int,
                stream: bool = False, headers: dict[str, str] = AUTH) -> list[int]:
    """``count`` chat requests, ``concurrency`` at a time, each read to its end; their statuses."""
    statuses: list[int] = []
    numbers = iter(range(count))

    async def worker() -> None:
        for _ in numbers:
            body = {"model": model, "messages": CHAT, "stream": stream}
            async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as response:
                await response.read()
                statuses.append(response.status)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def first_bytes(session: aiohttp.ClientSession, url: str, concurrency: int) -> list[float]:
    started = time.monotonic()

    async def one() -> float:
        body = {"model": "slow-x", "messages": CHAT, "stream": True}
        async with session.post(f"{url}/v1/chat/completions", json=body, headers=AUTH) as response:
            await response.content.readany()
            at = time.monotonic() - started
            await response.read()
            return at

    return list(await asyncio.gather(*(one() for _ in range(concurrency))))


def fake_calls(upstream: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{upstream}/_fake/stats", timeout=5) as response:
        calls: dict[str, int] = json.load(response)["requests"]
        return calls


async def scenario(args: argparse.Namespace, workdir: Path, upstream: str, transport: str) -> None:
    config, edge = config_text(workdir, upstream, transport)
    processes = [spawn("-m", "poolgate_cli", "--log-level", "warning", role, "--config", config)
                 for role in ("selector", "edge")]
    try:
        wait_ready(edge, processes, lambda p: f"a benchmark process exited early ({p.args})", within=60)
        before = fake_calls(upstream)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            statuses = await drive(session, edge, "storm-x", args.requests, args.concurrency, stream=False)
            statuses += await drive(session, edge, "storm-x", args.streams, args.concurrency, stream=True)
            ttfb = await first_bytes(session, edge, args.concurrency)
        after = fake_calls(upstream)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(15)
    calls = {key: after.get(key, 0) - before.get(key, 0) for key in (*BAD.values(), FINE)}
    upstream_calls = sum(calls.values())
    print(f"\n{transport} transport: {len(statuses)} client requests ({args.requests} + {args.streams} streams) "
          f"at concurrency {args.concurrency}")
    print(f"  client errors                      {sum(1 for s in statuses if s != 200)}")
    print(f"  upstream calls per client request  {upstream_calls / len(statuses):.4f}")
    for label, key in BAD.items():
        print(f"  {'calls to the ' + label:<34} {calls[key]}")
    print(f"  cold start, headers after 200 ms, ~5 s streams: time to first byte of {args.concurrency} streams: "
          f"median {statistics.median(ttfb):.2f} s, max {max(ttfb):.2f} s")


async def main_async(args: argparse.Namespace) -> None:
    fake, upstream = start_fake_upstream()
    try:
        with tempfile.TemporaryDirectory(prefix="poolgate-cold-") as tmp:
            for transport in ("stream", "unary"):
                await scenario(args, Path(tmp), upstream, transport)
    finally:
        fake.terminate()
        fake.wait(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    asyncio.run(main_async(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

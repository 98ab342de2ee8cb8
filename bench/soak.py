"""Soak: a long, bounded load through the edge against a flaky upstream, then a verdict.

The fake upstream (every account ``flaky``: 10 % answered 429 with ``retry-after: 1``, 2 % answered 500), the
selector and the edge run as separate processes on 127.0.0.1; this process sends a mix of OpenAI and Anthropic
requests, streamed and not, at a capped rate. It passes when:

- no request failed for the client while an account could serve (a 429/503 saying that every account is cooling
  is counted apart: that is the pool being exhausted, not a failure of poolgate);
- every lease is back at the end (in-flight 0 on every account);
- the resident memory of the selector and of the edge grew less than 10 % from the end of the warm-up to the end.

    python bench/soak.py [--minutes 10] [--rate 100] [--concurrency 16] [--accounts 32]

``make soak`` runs it with the defaults (10 minutes); it is not part of ``make test``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from edge_bench import free_port, percentile_ms, rss_mb

EDGE_KEY = "soak-edge-key"
MAX_GROWTH = 0.10
CHAT = [{"role": "user", "content": "Say hello"}]
# (path, body): the mix of requests, sent in turn.
REQUESTS: list[tuple[str, dict[str, object]]] = [
    ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT}),
    ("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT, "stream": True}),
    ("/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": CHAT}),
    ("/v1/messages", {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": CHAT, "stream": True}),
    ("/v1/responses", {"model": "gpt-4o-mini", "input": "Say hello"}),
]
STREAM_END = {"/v1/chat/completions": b"data: [DONE]", "/v1/messages": b"event: message_stop"}


def config_text(fake_port: int, selector_port: int, accounts: int) -> str:
    def keys(prefix: str) -> str:
        return "\n".join(f"      - {{name: {prefix}{i:02d}, key: sk-flaky-soak-{prefix}-{i:04d}}}"
                         for i in range(accounts))

    return f"""
selector:
  listen: 127.0.0.1:{selector_port}
  usage_log: true
edge:
  listen: 127.0.0.1:0
  api_keys: [{EDGE_KEY}]
  timeouts: {{connect: 2s, first_byte: 10s, total: 30s, selector: 5s}}
defaults:
  failover: {{max_attempts: 8}}
  lease_ttl: 2m
pools:
  openai:
    base_url: http://127.0.0.1:{fake_port}/v1
    accounts:
{keys("oa")}
  anthropic:
    format: anthropic
    base_url: http://127.0.0.1:{fake_port}
    accounts:
{keys("an")}
models:
  gpt-*: openai
  claude-*: anthropic
"""


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def start(name: str, args: list[str], folder: Path) -> Process:
    log = folder / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen([sys.executable, "-m", "poolgate_cli", "--log-level", "warning", *args],
                                 stdout=out, stderr=subprocess.STDOUT, cwd=folder)
    return Process(name, popen, log)


async def wait_listening(process: Process, port: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            raise RuntimeError(f"the {process.name} exited with {process.popen.returncode}:\n{process.tail()}")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError(f"the {process.name} did not listen on {port} within {within:g} s:\n{process.tail()}")


@dataclass
class Tally:
    requests: int = 0
    ok: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    """Client-visible failures while an account could serve, by kind."""
    exhausted: int = 0
    """Answers saying every account of the pool was cooling (not counted as failures)."""


async def one_request(session: aiohttp.ClientSession, url: str, path: str, body: dict[str, object],
                      tally: Tally) -> None:
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {EDGE_KEY}"}
    try:
        async with session.post(url + path, json=body, headers=headers) as response:
            data = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        tally.requests += 1
        tally.errors[f"{path} {type(exc).__name__}"] += 1
        return
    tally.requests += 1
    if status != 200:
        text = data.decode(errors="replace")
        if status in (429, 503) and ("no_account_available" in text or "can serve now" in text):
            tally.exhausted += 1
        else:
            tally.errors[f"{path} HTTP {status}: {text[:120]}"] += 1
        return
    if body.get("stream"):
        end = STREAM_END.get(path)
        if (end is not None and end not in data) or b'"error"' in data:
            tally.errors[f"{path} stream ended badly"] += 1
            return
    tally.ok += 1
    tally.latencies.append(time.monotonic() - started)


async def drive(url: str, seconds: float, rate: float, concurrency: int, tally: Tally) -> None:
    """``concurrency`` clients sharing a cap of ``rate`` requests per second, for ``seconds``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    issued = 0
    counter = iter(range(10**12))
    lock = asyncio.Lock()

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal issued
        while True:
            async with lock:  # pace: the n-th request may start at start + n / rate
                now = loop.time()
                if now - start >= seconds:
                    return
                due = start + issued / rate
                issued += 1
                if due > now:
                    await asyncio.sleep(due - now)
            path, body = REQUESTS[next(counter) % len(REQUESTS)]
            await one_request(session, url, path, body, tally)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))


async def in_flight(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(
            f"{url}/v1/accounts/stats", headers={"Authorization": f"Bearer {EDGE_KEY}"}) as response:
        listing = await response.json()
    return sum(int(a["in_flight"]) for pool in listing["pools"] for a in pool["accounts"])


async def fake_counts(port: int) -> dict[str, int]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/_fake/stats") as response:
        stats = await response.json()
    return {"requests": sum(stats["requests"].values()), "cancelled": stats["cancelled"]}


async def soak(args: argparse.Namespace) -> int:
    seconds = args.minutes * 60
    warmup = max(15.0, seconds * 0.2)
    folder = Path(tempfile.mkdtemp(prefix="poolgate-soak-"))
    fake_port, selector_port, edge_port = free_port(), free_port(), free_port()
    config = folder / "poolgate.yaml"
    config.write_text(config_text(fake_port, selector_port, args.accounts))
    processes = [start("fake-upstream", ["fake-upstream", "--listen", f"127.0.0.1:{fake_port}"], folder),
                 start("selector", ["selector", "--config", str(config)], folder),
                 start("edge", ["edge", "--config", str(config), "--listen", f"127.0.0.1:{edge_port}"], folder)]
    _fake, selector, edge = processes
    url = f"http://127.0.0.1:{edge_port}"
    try:
        for process, port in zip(processes, (fake_port, selector_port, edge_port), strict=True):
            await wait_listening(process, port)
        print(f"soak: {args.minutes:g} min at up to {args.rate:g} req/s, {args.concurrency} clients, "
              f"{args.accounts} flaky accounts per pool; warm-up {warmup:.0f} s; files in {folder}", flush=True)
        tally = Tally()
        load = asyncio.create_task(drive(url, seconds, args.rate, args.concurrency, tally))
        samples: dict[str, list[tuple[float, float]]] = {"selector": [], "edge": []}
        started = time.monotonic()
        warm: dict[str, float] = {}
        while not load.done():
            await asyncio.wait({load}, timeout=5)
            elapsed = time.monotonic() - started
            for process in (selector, edge):
                if process.popen.poll() is not None:
                    raise RuntimeError(f"the {process.name} died:\n{process.tail()}")
                samples[process.name].append((elapsed, rss_mb(process.popen.pid)))
            if not warm and elapsed >= warmup:
                warm = {name: values[-1][1] for name, values in samples.items()}
            if int(elapsed) % 60 < 5:
                print(f"  {elapsed:5.0f} s: {tally.requests} requests, {sum(tally.errors.values())} errors, "
                      f"{tally.exhausted} exhausted; RSS selector {samples['selector'][-1][1]:.1f} MiB, "
                      f"edge {samples['edge'][-1][1]:.1f} MiB", flush=True)
        await load
        final = {name: values[-1][1] for name, values in samples.items()}
        if not warm:
            warm = {name: values[0][1] for name, values in samples.items()}
        left = -1
        for _ in range(50):  # reports still on their way: give them a few seconds
            left = await in_flight(url)
            if left == 0:
                break
            await asyncio.sleep(0.1)
        upstream = await fake_counts(fake_port)
    finally:
        for process in reversed(processes):
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()

    duration = time.monotonic() - started
    growth = {name: (final[name] - warm[name]) / warm[name] for name in final}
    failed = sum(tally.errors.values())
    print()
    print(f"duration               {duration:.0f} s")
    print(f"client requests        {tally.requests} ({tally.requests / duration:.1f}/s), {tally.ok} answered 200")
    print(f"upstream attempts      {upstream['requests']} (failovers: {upstream['requests'] - tally.requests}, "
          f"abandoned: {upstream['cancelled']})")
    p50, p99 = percentile_ms(tally.latencies, 0.5), percentile_ms(tally.latencies, 0.99)
    print(f"latency p50 / p99      {p50:.1f} / {p99:.1f} ms")
    print(f"client-visible errors  {failed} while an account could serve; {tally.exhausted} pool-exhausted answers")
    for kind, count in tally.errors.most_common(5):
        print(f"    {count:6d}  {kind}")
    print(f"in flight at the end   {left}")
    for name in ("selector", "edge"):
        print(f"RSS {name:<8}           {warm[name]:.1f} MiB after warm-up -> {final[name]:.1f} MiB "
              f"at the end ({growth[name] * 100:+.1f} %)")
    ok = failed == 0 and left == 0 and all(g < MAX_GROWTH for g in growth.values())
    print(f"\nsoak: {'PASS' if ok else 'FAIL'}")
    if not ok:
        for process in processes:
            print(f"--- {process.name} log ({process.log}) ---\n{process.tail()}")
        return 1
    shutil.rmtree(folder, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run (default 10)")
    parser.add_argument("--rate", type=float, default=100.0, help="most requests per second (default 100)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients sending at once (default 16)")
    parser.add_argument("--accounts", type=int, default=32, help="flaky accounts in each of the two pools")
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or args.concurrency < 1 or args.accounts < 1:
        parser.error("--minutes and --rate must be positive, --concurrency and --accounts at least 1")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())

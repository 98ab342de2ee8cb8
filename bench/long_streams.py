"""Many long streams, as LLM traffic is: 1,000 concurrent streamed chat completions of 50 events 20 ms apart, through
poolgate (selector + edge) and through the bare proxy, on the same fake upstream.

The fake upstream spaces a key's stream events by N ms when the key holds ``dripN``; the request's last turn is a
tool result of 44 words, so the answer is 47 words: 50 events with the role's, the finish's and ``[DONE]``. The
streams start 1 ms apart (a second to open them all). Per target: errors (a status other than 200, a broken stream,
or not every event), the target's CPU per stream (its processes, from ``/proc``) and the gap between consecutive
events at a client, p50 and p99. The two targets run in interleaved rounds (three by default): CPU per stream and
the time taken are the rounds' medians, errors and gaps those of every round. Only 127.0.0.1 is bound; the process's
open-file limit is raised to what the streams need (up to the hard limit), and the processes it starts inherit it.

    python bench/long_streams.py [--streams 1000] [--gap-ms 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import Target, bare_target, poolgate_target, start_fake_upstream, stop_all
from edge_bench import percentile_ms

DRIP_KEYS = tuple(f"sk-bench-drip{{gap}}-{i:04d}" for i in range(1, 4))
"""The fake upstream's keys for the streams, ``{gap}`` the ms between events."""
WORDS = 44
EVENTS = WORDS + 6  # "The tool returned:" and the words, the role's event, the finish's and [DONE]
TIMEOUT = 90.0
"""Seconds the whole case may take before its remaining streams count as errors."""


def drip_keys(gap_ms: int) -> tuple[str, ...]:
    return tuple(key.replace("{gap}", str(gap_ms)) for key in DRIP_KEYS)


def stream_body() -> bytes:
    """A streamed chat completion whose answer the fake upstream makes 50 events long."""
    result = " ".join(f"w{i}" for i in range(WORDS))
    return json.dumps({"model": "gpt-4o-mini", "stream": True, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": result}]}).encode()


def raise_open_files(wanted: int) -> int:
    """Raise this process's soft open-file limit to ``wanted`` (at most the hard limit); returns the limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


@dataclass
class StreamsResult:
    streams: int
    errors: int
    gaps: list[float]  # seconds between consecutive events of a stream, at the client
    seconds: float
    cpu_per_stream_ms: float = 0.0

    def gap_ms(self, fraction: float) -> float:
        return percentile_ms(self.gaps, fraction)


async def run_streams(url: str, key: str, streams: int) -> StreamsResult:
    """``streams`` concurrent streams to ``url`` (…/chat/completions), started 1 ms apart."""
    body = stream_body()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    gaps: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()

    async def one(session: aiohttp.ClientSession, delay: float) -> None:
        nonlocal errors
        await asyncio.sleep(delay)
        times: list[float] = []
        try:
            async with session.post(url, data=body, headers=headers) as response:
                tail = b""
                async for chunk in response.content.iter_any():  # events read together arrive together
                    times.extend([loop.time()] * chunk.count(b"data:"))
                    tail = (tail + chunk)[-16:]
                ok = response.status == 200 and len(times) == EVENTS and tail.endswith(b"data: [DONE]\n\n")
        except (TimeoutError, aiohttp.ClientError):
            ok = False
        if not ok:
            errors += 1
        gaps.extend(b - a for a, b in itertools.pairwise(times))

    started = loop.time()
    timeout = aiohttp.ClientTimeout(total=TIMEOUT)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        await asyncio.gather(*(one(session, i / 1000) for i in range(streams)))
    return StreamsResult(streams, errors, gaps, loop.time() - started)


async def measure(target: Target, streams: int) -> StreamsResult:
    """The case through ``target``, with its processes' CPU per stream."""
    cpu = target.cpu_seconds()
    result = await run_streams(f"{target.url}/chat/completions", target.key, streams)
    result.cpu_per_stream_ms = (target.cpu_seconds() - cpu) / streams * 1000
    return result


def print_results(results: dict[str, StreamsResult], gap_ms: int, rounds: int = 1) -> None:
    print(f"\nlong streams: {next(iter(results.values())).streams:,} concurrent, {EVENTS} events {gap_ms} ms apart"
          + (f"; {rounds} interleaved rounds (CPU and seconds: medians; errors and gaps: every round's)"
             if rounds > 1 else ""))
    print(f"{'target':<17}{'errors':>7}{'seconds':>9}{'CPU ms/stream':>15}{'gap p50 ms':>12}{'gap p99 ms':>12}")
    for name, r in results.items():
        print(f"{name:<17}{r.errors:>7}{r.seconds:>9.1f}{r.cpu_per_stream_ms:>15.2f}{r.gap_ms(0.5):>12.1f}"
              f"{r.gap_ms(0.99):>12.1f}")


def combined(runs: list[StreamsResult]) -> StreamsResult:
    """One target's rounds as one result: medians of CPU and time, every error and every gap."""
    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    return StreamsResult(runs[0].streams, sum(r.errors for r in runs), [g for r in runs for g in r.gaps],
                         median([r.seconds for r in runs]), median([r.cpu_per_stream_ms for r in runs]))


async def compare_streams(workdir: Path, streams: int, gap_ms: int, rounds: int = 3) -> dict[str, StreamsResult]:
    """The bare proxy and poolgate (selector + edge, stream transport), each on its own, on one fake upstream, in
    ``rounds`` rounds whose order alternates (one round's CPU figure moved by a third between runs here)."""
    raise_open_files(4 * streams + 1024)
    fake, upstream = start_fake_upstream()
    keys = drip_keys(gap_ms)
    targets: list[Target] = []
    try:
        targets = [bare_target(upstream, key=keys[0]),
                   poolgate_target("poolgate stream", workdir, upstream, "stream", keys=keys)]
        runs: dict[str, list[StreamsResult]] = {target.name: [] for target in targets}
        for round_number in range(rounds):
            for target in targets if round_number % 2 == 0 else targets[::-1]:
                runs[target.name].append(await measure(target, streams))
        return {name: combined(results) for name, results in runs.items()}
    finally:
        stop_all(targets, fake)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--gap-ms", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(compare_streams(Path(tmp), args.streams, args.gap_ms, args.rounds))
    print_results(results, args.gap_ms, args.rounds)
    print(f"({time.monotonic() - started:.0f} s in all)")
    return 0 if all(r.errors == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

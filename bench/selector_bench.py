"""Selector benchmark: SelectAccount+ReportOutcome pairs/s over loopback, and selection cost by pool size.

Starts ``poolgate selector`` in its own process (as in production) on a generated config, drives it with a grpc.aio
client from this process, and separately times the in-process selection path (no gRPC) so the effect of pool size is
not hidden by RPC cost, and the Exchange session in process (what the selector does with an edge's messages, short
of gRPC itself: protobuf in and out, rate-limit headers, the usage log). Every figure comes from this one run;
compare them as ratios.

    python bench/selector_bench.py [--seconds 3] [--sizes 10,1000,10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from poolgate.config import parse_config  # noqa: E402
from poolgate.exchange_client import ExchangeClient  # noqa: E402
from poolgate.v1 import selector_pb2 as pb  # noqa: E402
from poolgate.v1 import selector_pb2_grpc  # noqa: E402
from selector_service.api.exchange import ExchangeSession  # noqa: E402
from selector_service.domain.outcomes import Outcome, OutcomeReport  # noqa: E402
from selector_service.domain.selector import SelectorCore  # noqa: E402
from selector_service.domain.usage import UsageRecorder  # noqa: E402
from selector_service.plugin.manager import load_strategies  # noqa: E402
from selector_service.plugin.types import SelectionRequest  # noqa: E402
from selector_service.storage import StateRepository  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from edge_bench import free_port  # noqa: E402

STRATEGIES = ("round_robin", "p2c", "weighted", "zenith")


def pool_yaml(name: str, strategy: str, size: int) -> str:
    accounts = "\n".join(
        f"      - {{name: a{i}, key: sk-bench-{name}-{i:06d}, weight: {1 + i % 3}}}" for i in range(size)
    )
    return f"  {name}:\n    strategy: {strategy}\n    accounts:\n{accounts}\n"


def config_text(sizes: list[int]) -> str:
    pools = [pool_yaml(f"{s}_{n}", s, n) for s in STRATEGIES for n in sizes]
    return "pools:\n" + "".join(pools)


async def pairs(stub: selector_pb2_grpc.SelectorStub, pool: str, seconds: float, concurrency: int,
                latencies: list[float] | None = None) -> int:
    """Run select+report pairs for ``seconds`` with ``concurrency`` callers; returns how many completed."""
    done = 0
    stop_at = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        request = pb.SelectAccountRequest(pool=pool, model="bench")
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            lease = await stub.SelectAccount(request, timeout=5)
            if latencies is not None:
                latencies.append(time.perf_counter() - started)
            await stub.ReportOutcome(pb.ReportOutcomeRequest(
                lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS, http_status=200, latency_ms=100))
            done += 1

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return done


async def stream_pairs(client: ExchangeClient, pool: str, seconds: float, concurrency: int) -> int:
    """As :func:`pairs`, over the Exchange stream (selections and reports batched per message)."""
    done = 0
    stop_at = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal done
        request = pb.SelectAccountRequest(pool=pool, model="bench")
        while time.perf_counter() < stop_at:
            lease = await client.select(request, timeout=5)
            client.report(pb.ReportOutcomeRequest(
                lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS, http_status=200, latency_ms=100))
            done += 1

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return done


async def grpc_figures(address: str, sizes: list[int], seconds: float) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = selector_pb2_grpc.SelectorStub(channel)
        stream = ExchangeClient(channel)
        pool = f"round_robin_{sizes[0]}"
        await pairs(stub, pool, 0.5, 8)  # warm-up
        await stream_pairs(stream, pool, 0.5, 8)
        print("\nSelectAccount + ReportOutcome pairs over loopback (round_robin, smallest pool)")
        print(f"{'concurrency':>12} {'unary pairs/s':>14} {'stream pairs/s':>15} {'stream/unary':>13}")
        for concurrency in (1, 64):
            unary = await pairs(stub, pool, seconds, concurrency) / seconds
            streamed = await stream_pairs(stream, pool, seconds, concurrency) / seconds
            print(f"{concurrency:>12} {unary:>14,.0f} {streamed:>15,.0f} {streamed / unary:>12.2f}x")
        await stream.close()
        print("\nSelectAccount latency over gRPC, one call at a time (p50 µs)")
        print(f"{'strategy':>12} " + " ".join(f"{n:>10,}" for n in sizes) + f" {'largest/smallest':>17}")
        for strategy in STRATEGIES:
            p50s = []
            for size in sizes:
                latencies: list[float] = []
                await pairs(stub, f"{strategy}_{size}", seconds / 2, 1, latencies)
                p50s.append(statistics.median(latencies) * 1e6)
            print(f"{strategy:>12} " + " ".join(f"{v:>10,.0f}" for v in p50s) + f" {p50s[-1] / p50s[0]:>16.2f}x")


async def in_process_figures(sizes: list[int], iterations: int) -> None:
    """Selection + report inside the selector, without gRPC: what pool size costs."""
    config = parse_config(config_text(sizes))
    registry = load_strategies()
    with tempfile.TemporaryDirectory() as tmp:
        repository = StateRepository.open(os.path.join(tmp, "bench.db"))
        core = SelectorCore(config, registry, repository, rng=random.Random(1))
        await core.start()
        print("\nIn-process select + report (no gRPC), median µs per pair")
        print(f"{'strategy':>12} " + " ".join(f"{n:>10,}" for n in sizes) + f" {'largest/smallest':>17}")
        for strategy in STRATEGIES:
            medians = []
            for size in sizes:
                request = SelectionRequest(pool=f"{strategy}_{size}", model="bench")  # per-model scope on
                samples = []
                for _ in range(iterations):
                    started = time.perf_counter()
                    grant = await core.select(request, (), timeout=0)
                    await core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS, 200, latency_ms=100))
                    samples.append(time.perf_counter() - started)
                medians.append(statistics.median(samples) * 1e6)
            print(f"{strategy:>12} " + " ".join(f"{v:>10.1f}" for v in medians)
                  + f" {medians[-1] / medians[0]:>16.2f}x")
        await core.stop()
        await repository.close()


OPENAI_HEADERS = {
    "x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms", "x-ratelimit-limit-tokens": "2000000",
    "x-ratelimit-remaining-tokens": "1999000", "x-ratelimit-reset-tokens": "30ms",
}
"""What the fake upstream's OpenAI answers carry, and so what an edge reports with each success."""
SESSION_BATCH = 4
"""Selections (and reports) per Exchange message: about what an edge at concurrency 32 sends."""


async def exchange_session_figures(pairs: int) -> None:
    """An Exchange session fed in process with what an edge sends: each message carries four selections and the
    reports of the previous message's leases (a success with tokens, times and OpenAI's rate-limit headers); the
    usage log is on. CPU time of the whole process (the usage writer's thread included) per selection + report."""
    config = parse_config("pools:\n" + pool_yaml("openai", "round_robin", 3))
    with tempfile.TemporaryDirectory() as tmp:
        repository = StateRepository.open(os.path.join(tmp, "session.db"))
        usage = UsageRecorder(repository, 7 * 86400)
        core = SelectorCore(config, load_strategies(), repository, usage=usage, rng=random.Random(1))
        await core.start()
        inbox: asyncio.Queue[pb.ExchangeRequest | None] = asyncio.Queue()

        async def requests() -> AsyncIterator[pb.ExchangeRequest]:
            while (message := await inbox.get()) is not None:
                yield message

        answers = ExchangeSession(core).run(requests())
        ids = iter(range(1, 1 << 62))
        leases: list[str] = []

        async def drive(count: int) -> None:
            nonlocal leases
            for _ in range(count // SESSION_BATCH):
                message = pb.ExchangeRequest()
                for lease_id in leases:
                    report = message.reports.add(lease_id=lease_id, outcome=pb.OUTCOME_SUCCESS, http_status=200,
                                                 latency_ms=12, time_to_first_token_ms=3, input_tokens=10,
                                                 output_tokens=5)
                    report.rate_limit_headers.update(OPENAI_HEADERS)
                for _ in range(SESSION_BATCH):
                    message.selects.add(id=next(ids), timeout_ms=1000,
                                        request=pb.SelectAccountRequest(pool="openai", model="gpt-4o-mini"))
                await inbox.put(message)
                leases, answered = [], 0
                while answered < SESSION_BATCH:  # the first selections find new accounts: one probe each
                    answer = await anext(answers)
                    answered += len(answer.results)
                    leases += [result.lease.lease_id for result in answer.results if result.HasField("lease")]

        await drive(min(pairs, 2000))  # warm-up
        started = time.process_time()
        await drive(pairs)
        spent = time.process_time() - started
        print(f"\nExchange session in process (no gRPC; {SESSION_BATCH} selections and {SESSION_BATCH} reports "
              "per message, OpenAI rate-limit headers, usage log on)")
        print(f"CPU per selection + report: {spent / pairs * 1e6:.1f} µs ({pairs:,} pairs)")
        await inbox.put(None)  # the client's half-close: the session answers what is left, then ends
        async for _ in answers:
            pass
        await core.stop()
        await usage.close()
        await repository.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per throughput case")
    parser.add_argument("--sizes", default="10,1000,10000", help="pool sizes, comma-separated")
    parser.add_argument("--iterations", type=int, default=5000, help="in-process pairs per pool")
    parser.add_argument("--session-pairs", type=int, default=40000, help="pairs through the in-process session")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"poolgate selector benchmark: {os.cpu_count()} CPU(s), Python {sys.version.split()[0]}, "
          f"pool sizes {sizes}")
    asyncio.run(in_process_figures(sizes, args.iterations))
    asyncio.run(exchange_session_figures(args.session_pairs))
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "bench.yaml"
        config.write_text(config_text(sizes))
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "poolgate_cli", "--log-level", "warning", "selector", "--config", str(config),
             "--listen", f"127.0.0.1:{port}", "--database", str(Path(tmp) / "bench.db")],
            cwd=ROOT,
        )
        try:
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(channel).result(timeout=120)
            channel.close()
            asyncio.run(grpc_figures(f"127.0.0.1:{port}", sizes, args.seconds))
        finally:
            process.terminate()
            process.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())

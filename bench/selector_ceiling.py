"""The selector's ceiling: selections per second per selector core, so that you can tell how many edge workers one
selector carries.

Starts ``poolgate selector`` in its own process on the benchmarks' pool and drives it from several client processes
at once (each an Exchange stream with many callers, a select then a batched report per pair carrying what an edge
reports of the fake upstream's answer: tokens, times, rate-limit headers), so that the selector, not one client, is
the bottleneck. Printed: selections per second, the selector process's CPU seconds over the run, and their ratio,
selections per selector CPU-second: what one fully busy selector core serves. On a machine whose cores also run the
clients, selections per CPU-second is the figure that carries over to a machine with more cores (and a lower bound:
a busier selector batches more per message).

    python bench/selector_ceiling.py [--seconds 5] [--clients 3] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from edge_bench import cpu_seconds, free_port, pools_yaml  # noqa: E402

from poolgate import runtime  # noqa: E402
from poolgate.exchange_client import ExchangeClient  # noqa: E402
from poolgate.v1 import selector_pb2 as pb  # noqa: E402


@dataclass
class Ceiling:
    selections: int
    seconds: float  # how long each client process drove the selector (they run at once)
    selector_cpu: float  # CPU seconds of the selector process over the run

    @property
    def selector_share(self) -> float:
        """The part of one core the selector used: near 1, it was the bottleneck."""
        return self.selector_cpu / self.seconds

    @property
    def rate(self) -> float:
        return self.selections / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.selections / max(1e-9, self.selector_cpu)


def edge_report(lease_id: str, served: int) -> pb.ReportOutcomeRequest:
    """A success reported as the edge reports an answer of the fake upstream: its token counts, times and
    rate-limit headers (the remaining requests counting down, as the fake's do)."""
    headers = {"x-ratelimit-limit-requests": "10000", "x-ratelimit-remaining-requests": str(9999 - served % 9999),
               "x-ratelimit-reset-requests": "6ms", "x-ratelimit-limit-tokens": "2000000",
               "x-ratelimit-remaining-tokens": "1999000", "x-ratelimit-reset-tokens": "30ms"}
    return pb.ReportOutcomeRequest(lease_id=lease_id, outcome=pb.OUTCOME_SUCCESS, http_status=200, latency_ms=3,
                                   time_to_first_token_ms=2, input_tokens=3, output_tokens=11,
                                   rate_limit_headers=headers)


async def drive(address: str, seconds: float, concurrency: int) -> int:
    """Select + report pairs over one Exchange stream with ``concurrency`` callers for ``seconds``; how many."""
    done = 0
    async with grpc.aio.insecure_channel(address) as channel:
        client = ExchangeClient(channel)
        request = pb.SelectAccountRequest(pool="openai", model="gpt-4o-mini")
        stop_at = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                lease = await client.select(request, 5.0)
                client.report(edge_report(lease.lease_id, done))
                done += 1

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        await client.close()
    return done


def start_selector(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``poolgate selector`` on the benchmarks' pool (three accounts), once it answers; returns it and its address."""
    port = free_port()
    config = workdir / "ceiling.yaml"
    config.write_text(f"selector: {{listen: 127.0.0.1:{port}, database: {workdir / 'ceiling.db'}}}\n"
                      + pools_yaml("http://127.0.0.1:9"))
    process = subprocess.Popen([sys.executable, "-m", "poolgate_cli", "--log-level", "warning", "selector",
                                "--config", str(config)], cwd=ROOT, stdout=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=60)
    return process, address


def measure(workdir: Path, seconds: float, clients: int, concurrency: int) -> Ceiling:
    """Warm the selector up, then ``clients`` client processes for ``seconds``; the selector's figures."""
    selector, address = start_selector(workdir)
    try:
        command = [sys.executable, str(Path(__file__).resolve()), "client", "--address", address,
                   "--concurrency", str(concurrency)]
        subprocess.run([*command, "--seconds", "1"], check=True, capture_output=True)  # warm-up
        cpu = cpu_seconds(selector.pid)
        runs = [subprocess.Popen([*command, "--seconds", str(seconds)], stdout=subprocess.PIPE)
                for _ in range(clients)]
        counts = [int(run.communicate(timeout=seconds + 60)[0]) for run in runs]
        return Ceiling(sum(counts), seconds, cpu_seconds(selector.pid) - cpu)
    finally:
        selector.terminate()
        selector.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    client = commands.add_parser("client", help="one client process: prints how many pairs it completed")
    client.add_argument("--address", required=True)
    client.add_argument("--seconds", type=float, required=True)
    client.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=3, help="client processes driving the selector at once")
    parser.add_argument("--concurrency", type=int, default=64, help="callers per client process")
    args = parser.parse_args()
    if args.command == "client":
        print(runtime.run(drive(args.address, args.seconds, args.concurrency)))
        return 0
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ceiling = measure(Path(tmp), args.seconds, args.clients, args.concurrency)
    print(f"selector ceiling: {ceiling.selections:,} selections in {ceiling.seconds:.1f} s from {args.clients} client "
          f"processes = {ceiling.rate:,.0f}/s; selector CPU {ceiling.selector_cpu:.2f} s = "
          f"{ceiling.per_cpu_second:,.0f} selections per selector CPU-second (the selector used "
          f"{ceiling.selector_share:.0%} of a core)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

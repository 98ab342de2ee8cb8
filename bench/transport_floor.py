"""The floor under the fast-path goals: what one selector round trip per request costs with nothing else added.

Three targets on the same zero-latency fake upstream, measured as ``compare.py`` measures them (interleaved rounds,
medians): the bare proxy; the bare proxy plus one selection over an Exchange stream per request, answered at once by
an echo selector that holds no pools and does no selection (and an outcome report per request, batched as the edge
batches them); and poolgate itself (edge + selector, stream transport). The second is the least any gateway that
asks a separate selector process for each request can cost in Python on this machine: what poolgate adds beyond it
is poolgate's own work, what it adds over the bare proxy is the price of the architecture.

    python bench/transport_floor.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from compare import (
    Target,
    bare_target,
    measure_rounds,
    poolgate_target,
    print_setting,
    spawn,
    start_fake_upstream,
    stop_all,
)
from edge_bench import UPSTREAM_KEYS, free_port

from poolgate import runtime
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc


class EchoSelector(selector_pb2_grpc.SelectorServicer):
    """Answers every selection at once with the same lease, in one message per message read; counts reports and
    drops them."""

    def __init__(self) -> None:
        self.selections = 0
        self.reports = 0

    async def Exchange(self, requests, context):  # type: ignore[no-untyped-def]
        lease = pb.Lease(lease_id="0" * 32, account_id="a0", account_name="a0", pool="openai")
        while (message := await context.read()) is not grpc.aio.EOF:
            self.selections += len(message.selects)
            self.reports += len(message.reports)
            if message.selects:
                await context.write(pb.ExchangeResponse(
                    results=[pb.StreamResult(id=select.id, lease=lease) for select in message.selects]))


async def serve_echo(port: int) -> None:
    server = grpc.aio.server()
    selector_pb2_grpc.add_SelectorServicer_to_server(EchoSelector(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def wait_listening(port: int, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    """Return once something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the echo selector exited with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the echo selector did not listen on port {port} within {seconds:.0f} s")


def floor_target(upstream: str) -> Target:
    selector = free_port()
    echo = spawn(str(Path(__file__).resolve()), "echo-selector", "--port", str(selector))
    wait_listening(selector, echo)  # else the proxy's first selections could find nobody listening
    target = bare_target(upstream, f"127.0.0.1:{selector}")
    target.processes.append(echo)
    return target


async def run(args: argparse.Namespace, workdir: Path) -> None:
    fake, upstream_url = start_fake_upstream()
    targets: list[Target] = []
    try:
        direct = Target("direct", f"{upstream_url}/v1", UPSTREAM_KEYS[0], [fake])
        targets = [bare_target(upstream_url), floor_target(upstream_url),
                   poolgate_target("poolgate stream", workdir, upstream_url, "stream")]
        base, results = await measure_rounds(direct, targets, args)
    finally:
        stop_all(targets, fake)
    bare = results["bare proxy"]
    bare_added = max(0.001, bare.p50 - base.p50)
    print_setting(args)
    print(f"{'target':<19}{'req/s c=32':>11}{'/ bare':>8}{'added p50 ms':>14}{'/ bare':>8}{'added TTFB ms':>15}"
          f"{'CPU µs/req':>12}")
    for name, f in results.items():
        added = f.p50 - base.p50
        print(f"{name:<19}{f.rate:>11,.0f}{f.rate / bare.rate:>8.2f}{added:>14.2f}{added / bare_added:>8.2f}"
              f"{f.ttfb50 - base.ttfb50:>15.2f}{f.cpu_us:>12.0f}")
    print("bare + round trip: the bare proxy plus one Exchange-stream selection per request from an echo selector "
          "(no pools, no selection, no state) and one batched report: the floor of the architecture")
    print("fast-path goals: req/s >= 0.75 of bare, added p50 <= 1.5x bare's, added TTFB <= 1 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command")
    echo = commands.add_parser("echo-selector")
    echo.add_argument("--port", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measured case")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are their medians")
    args = parser.parse_args()
    if args.command == "echo-selector":
        runtime.run(serve_echo(args.port))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()

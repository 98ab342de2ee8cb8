"""What request logging costs the edge: requests/s with one log line per request (text and JSON) versus logging off.

Starts the fake upstream (zero latency) and the selector once, and three edges that differ only in their logging
(``--log-level warning``: no request lines; ``--log-level info``: text lines; ``--log-level info --log-format json``),
each writing its log to a file. Rounds alternate between the edges so that drift on a shared machine hits all three
alike; the figures are totals over all rounds, from this one run.

    python bench/logging_bench.py [--rounds 10] [--duration 2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edge_bench import EDGE_KEY, cpu_seconds, free_port, load, pools_yaml, wait_ready

VARIANTS = (
    ("logging off (warning)", ["--log-level", "warning"]),
    ("text lines (info)", ["--log-level", "info"]),
    ("json lines (info)", ["--log-level", "info", "--log-format", "json"]),
)


@dataclass
class Edge:
    name: str
    url: str
    log: Path
    pid: int = 0
    requests: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    """CPU seconds the edge process used while it was measured."""
    rounds: list[tuple[float, float]] = field(default_factory=list)
    """Per round: (requests/s, CPU µs per request)."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_request_us(self) -> float:
        return self.cpu / self.requests * 1e6 if self.requests else float("nan")


def _wait_ready(url: str, processes: list[subprocess.Popen[bytes]], workdir: Path) -> None:
    def exited(process: subprocess.Popen[bytes]) -> str:
        logs = "\n".join(f"--- {log.name}\n{log.read_text()[-2000:]}" for log in sorted(workdir.glob("*.log")))
        return f"{' '.join(map(str, process.args))} exited while starting:\n{logs}"

    wait_ready(url, processes, exited)


def start(workdir: Path, processes: list[subprocess.Popen[bytes]]) -> list[Edge]:
    """Start the fake upstream, the selector and the edges (into ``processes``); the edges once ready."""
    fake, selector = free_port(), free_port()
    config = workdir / "bench.yaml"
    config.write_text(f"""
edge: {{api_keys: [{EDGE_KEY}]}}
selector: {{listen: 127.0.0.1:{selector}}}
{pools_yaml(f"http://127.0.0.1:{fake}")}""")
    base = [sys.executable, "-m", "poolgate_cli"]

    def spawn(args: list[str], log: Path) -> None:
        with log.open("wb") as out:
            processes.append(subprocess.Popen([*base, *args], stdout=subprocess.DEVNULL, stderr=out))

    spawn(["--log-level", "warning", "fake-upstream", "--listen", f"127.0.0.1:{fake}"], workdir / "fake.log")
    spawn(["--log-level", "warning", "selector", "--config", str(config)], workdir / "selector.log")
    edges = []
    for i, (name, flags) in enumerate(VARIANTS):
        port = free_port()
        log = workdir / f"edge-{i}.log"
        spawn([*flags, "edge", "--config", str(config), "--listen", f"127.0.0.1:{port}"], log)
        edges.append(Edge(name, f"http://127.0.0.1:{port}", log, processes[-1].pid))
    for edge in edges:
        _wait_ready(edge.url, processes, workdir)
    return edges


async def run(args: argparse.Namespace, edges: list[Edge]) -> None:
    """Every round loads the three edges at the same time, so that whatever else the machine does hits all three
    alike; the edges' own CPU time is read from /proc around each round."""
    url = "/v1/chat/completions"
    await asyncio.gather(*(load(f"{edge.url}{url}", EDGE_KEY, False, args.concurrency, args.warmup, 0)
                           for edge in edges))
    for _ in range(args.rounds):
        before = [cpu_seconds(edge.pid) for edge in edges]
        results = await asyncio.gather(*(load(f"{edge.url}{url}", EDGE_KEY, False, args.concurrency,
                                              args.duration, 0) for edge in edges))
        for edge, start_cpu, result in zip(edges, before, results, strict=True):
            cpu = cpu_seconds(edge.pid) - start_cpu
            edge.cpu += cpu
            edge.requests += result.requests
            edge.seconds += result.seconds
            edge.rounds.append((result.rate, cpu / max(1, result.requests) * 1e6))


def report(args: argparse.Namespace, edges: list[Edge]) -> None:
    """Totals per edge; ratios to the logging-off edge are medians over the rounds (each round's edges ran side by
    side, so each round is a fair comparison even when the machine is noisy)."""
    off = edges[0]
    print(f"edge throughput with and without request logging: non-stream, the three edges loaded side by side "
          f"(concurrency {args.concurrency} each), {args.rounds} rounds of {args.duration:g} s")
    print(f"{'edge':<24}{'req/s':>8}{'req/s vs off':>14}{'CPU µs/req':>12}{'capacity vs off':>17}{'log lines':>11}")
    worst_rate = worst_capacity = 1.0
    for edge in edges:
        lines = sum(1 for line in edge.log.read_bytes().splitlines() if b"/v1/chat/completions" in line)
        rate = statistics.median(r[0] / o[0] for r, o in zip(edge.rounds, off.rounds, strict=True))
        capacity = statistics.median(o[1] / r[1] for r, o in zip(edge.rounds, off.rounds, strict=True))
        if edge is not off:
            worst_rate, worst_capacity = min(worst_rate, rate), min(worst_capacity, capacity)
        print(f"{edge.name:<24}{edge.rate:>8.0f}{rate:>14.3f}{edge.cpu_per_request_us:>12.0f}{capacity:>17.3f}"
              f"{lines:>11}")
    print(f"request logging costs the edge {max(0.0, 1 - worst_rate) * 100:.1f}% of its throughput "
          f"(ratio {worst_rate:.3f}) and {max(0.0, 1 - worst_capacity) * 100:.1f}% of its capacity "
          f"(CPU per request, ratio {worst_capacity:.3f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per round")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up")
    parser.add_argument("--concurrency", type=int, default=16, help="clients per edge")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poolgate-logbench-") as workdir:
        processes: list[subprocess.Popen[bytes]] = []
        try:
            edges = start(Path(workdir), processes)
            asyncio.run(run(args, edges))
        finally:
            for process in reversed(processes):
                process.send_signal(signal.SIGTERM)
            for process in reversed(processes):
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
        report(args, edges)  # after the edges stopped: their last buffered lines are in the files
    return 0


if __name__ == "__main__":
    sys.exit(main())

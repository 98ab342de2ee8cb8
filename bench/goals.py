"""Every goal of the fast path, measured in one run and printed in one table: ``make bench``.

One zero-latency fake upstream; in interleaved rounds (medians, as ``compare.py`` measures): the bare proxy, the
floor (the bare proxy plus one selection per request from an echo selector, ``transport_floor.py``), poolgate on
unary calls and on the Exchange stream, poolgate with two edge workers (``poolgate edge --workers 2``) and LiteLLM
(from its own virtualenv, when installed). Then, each on its own: the edge's and the selector's CPU per request under
load; the long-streams case (``long_streams.py``); the selector's ceiling (``selector_ceiling.py``); with
``--memory``, memory with 1,000 accounts after 100,000 requests. Last, the table: each ratio measured, its goal, and
whether it is met. Goals are ratios between targets of the same run, since absolute figures move with the machine.

    python bench/goals.py [--seconds 5] [--rounds 3] [--memory] [--litellm-python PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (
    LITELLM_PYTHON,
    Figures,
    Target,
    bare_target,
    litellm_target,
    measure_rounds,
    memory,
    poolgate_target,
    print_figures,
    print_setting,
    start_fake_upstream,
    stop_all,
)
from edge_bench import UPSTREAM_KEYS, cpu_seconds, load
from long_streams import StreamsResult, compare_streams, print_results
from selector_ceiling import Ceiling
from selector_ceiling import measure as measure_ceiling
from transport_floor import floor_target

STREAM, UNARY, WORKERS = "poolgate stream", "poolgate unary", "poolgate 2 workers"
BARE, FLOOR, LITELLM = "bare proxy", "bare + round trip", "LiteLLM"


@dataclass
class Row:
    label: str
    value: float
    sense: str = ""  # ">=", "<=" or "" (a figure without a goal)
    goal: float = 0.0
    unit: str = "x"

    def met(self) -> str:
        if not self.sense:
            return ""
        return "yes" if (self.value >= self.goal if self.sense == ">=" else self.value <= self.goal) else "NO"


async def split_cpu(target: Target, seconds: float) -> tuple[float, float]:
    """CPU µs per request of the selector and of the edge (its workers included) of a poolgate target, at c=32."""
    selector, edge = target.processes
    before = cpu_seconds(selector.pid), Target("edge", "", "", [edge]).cpu_seconds()
    result = await load(f"{target.url}/chat/completions", target.key, False, 32, seconds, 0)
    after = cpu_seconds(selector.pid), Target("edge", "", "", [edge]).cpu_seconds()
    return tuple((b - a) / max(1, result.requests) * 1e6 for a, b in zip(before, after, strict=True))  # type: ignore


async def fast_path(args: argparse.Namespace, workdir: Path) -> tuple[Figures, dict[str, Figures], tuple[float, float]]:
    """The interleaved rounds over every target, then the split of poolgate's CPU between selector and edge."""
    fake, upstream = start_fake_upstream()
    targets: list[Target] = []
    try:
        direct = Target("direct", f"{upstream}/v1", UPSTREAM_KEYS[0], [fake])
        targets = [bare_target(upstream), floor_target(upstream),
                   poolgate_target(UNARY, workdir, upstream, "unary"),
                   poolgate_target(STREAM, workdir, upstream, "stream"),
                   poolgate_target(WORKERS, workdir, upstream, "stream", workers=2)]
        litellm = Path(args.litellm_python)
        if litellm.exists():
            targets.append(litellm_target(workdir, upstream, litellm))
        else:
            print(f"(LiteLLM left out: {litellm} not found; `make bench` installs it)")
        base, results = await measure_rounds(direct, targets, args)
        split = await split_cpu(next(t for t in targets if t.name == STREAM), args.seconds)
    finally:
        stop_all(targets, fake)
    return base, results, split


def goal_rows(base: Figures, results: dict[str, Figures], streams: dict[str, StreamsResult], ceiling: Ceiling,
              split: tuple[float, float], after: dict[str, float] | None) -> list[Row]:
    bare, floor, stream, unary, two = (results[name] for name in (BARE, FLOOR, STREAM, UNARY, WORKERS))
    added = {name: max(0.001, f.p50 - base.p50) for name, f in results.items()}
    selector_us, edge_us = split
    rows = [
        Row("stream req/s c=32 / bare proxy", stream.rate / bare.rate, ">=", 0.75),
        Row("unary req/s c=32 / bare proxy", unary.rate / bare.rate, ">=", 0.75),
        Row("stream CPU/req / bare proxy", stream.cpu_us / bare.cpu_us, "<=", 1.3),
        Row("unary CPU/req / bare proxy", unary.cpu_us / bare.cpu_us, "<=", 1.3),
        Row("stream added p50 c=1 / floor", added[STREAM] / added[FLOOR], "<=", 1.25),
        Row("stream added p50 c=1 / bare proxy", added[STREAM] / added[BARE], "<=", 2.5),
        Row("floor added p50 c=1 / bare proxy", added[FLOOR] / added[BARE]),
        Row("stream added TTFB p50 - floor's", stream.ttfb50 - floor.ttfb50, "<=", 0.3, " ms"),
        Row("2 edge workers req/s / 1 worker", two.rate / stream.rate),
        Row("selections per selector CPU-second", ceiling.per_cpu_second, unit=""),
        # A busy edge worker spends a core. At the ceiling: selections per selector CPU-second times the edge's CPU
        # per request; through one edge at c=32 (the selector batching less): the edge's CPU per request over the
        # selector's.
        Row("busy edge workers per selector core, ceiling", ceiling.per_cpu_second * edge_us / 1e6, unit=""),
        Row("busy edge workers per selector core, 1 edge", edge_us / selector_us, unit=""),
    ]
    bare_streams, poolgate_streams = streams[BARE], streams[STREAM]
    rows += [
        Row("long streams: errors", poolgate_streams.errors + bare_streams.errors, "<=", 0, ""),
        Row("long streams: CPU/stream / bare proxy",
            poolgate_streams.cpu_per_stream_ms / bare_streams.cpu_per_stream_ms, "<=", 1.5),
        Row("long streams: gap p99 - bare proxy's", poolgate_streams.gap_ms(0.99) - bare_streams.gap_ms(0.99), "<=",
            5.0, " ms"),
    ]
    if LITELLM in results:
        rows += [Row("stream req/s / LiteLLM", stream.rate / results[LITELLM].rate, ">=", 30),
                 Row("stream added p50 / LiteLLM's", added[STREAM] / added[LITELLM], "<=", 1 / 8)]
    if after is not None:
        rows += [Row("edge MB, 1,000 accounts, 100k requests", after["edge"], "<=", 80, " MB"),
                 Row("selector MB, 1,000 accounts, 100k requests", after["selector"], "<=", 75, " MB")]
    print(f"\nselector CPU {selector_us:.0f} µs/req, edge CPU {edge_us:.0f} µs/req (poolgate stream, c=32); the "
          f"selector's ceiling: {ceiling.rate:,.0f} selections/s using {ceiling.selector_cpu:.1f} CPU s in "
          f"{ceiling.seconds:g} s ({ceiling.selector_share:.0%} of a core)")
    return rows


def print_goals(rows: list[Row]) -> None:
    print(f"\n{'goal':<46}{'measured':>12}{'goal':>12}  ok?")
    for row in rows:
        goal = f"{row.sense} {row.goal:g}{row.unit}" if row.sense else "-"
        whole = abs(row.value) >= 1000 or (not row.unit and row.value == int(row.value))
        value = f"{row.value:,.0f}" if whole else f"{row.value:.2f}"
        print(f"{row.label:<46}{value + row.unit:>12}{goal:>12}  {row.met()}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measured case")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are their medians")
    parser.add_argument("--litellm-python", default=str(LITELLM_PYTHON))
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams of the long-streams case")
    parser.add_argument("--ceiling-clients", type=int, default=3, help="client processes driving the selector")
    parser.add_argument("--memory", action="store_true", help="also memory with 1,000 accounts after many requests")
    parser.add_argument("--memory-requests", type=int, default=100_000)
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        base, results, split = asyncio.run(fast_path(args, workdir))
        print_setting(args)
        print_figures(base, results)
        streams = asyncio.run(compare_streams(workdir, args.streams, 20))
        print_results(streams, 20, 3)
        ceiling = measure_ceiling(workdir, args.seconds, args.ceiling_clients, 64)
        after = asyncio.run(memory(args, workdir)) if args.memory else None
    rows = goal_rows(base, results, streams, ceiling, split, after)
    print(f"\none run, {time.monotonic() - started:.0f} s, {os.cpu_count()} CPU(s): load, upstream and targets share "
          "them")
    print_goals(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

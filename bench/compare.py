"""The fast-path comparison: bare proxy, poolgate (unary), poolgate (stream) and LiteLLM, in one run.

Every target forwards to the same zero-latency fake upstream; each runs in its own processes; the load comes from
this process (aiohttp). Printed per target: requests/s at concurrency 32 (non-stream), added latency p50/p99 at
concurrency 1 (over calling the upstream directly), added time to first byte p50 when streaming, resident memory
of the target's processes, and their CPU time per request at concurrency 32 (read from ``/proc``; on a machine whose
cores also run the load and the upstream, CPU per request is what sets requests per second). Then the ratios the
fast path is held to. Then, with ``--memory``, poolgate's memory with 1,000 accounts after 100,000 requests.

LiteLLM runs from its own virtualenv (``--litellm-python``, default ``bench/.venv-litellm/bin/python``; ``make
bench`` creates it with ``pip install 'litellm[proxy]'``): one worker, three deployments of one model on the fake
upstream, offline (local model cost map, no telemetry, no database).

``--quick --check`` is the CI-light variant: one round, one second per case, no LiteLLM, and it exits 1 only on gross
regressions (ratios far beyond the targets): throughput, CPU per request and time to first byte against the bare
proxy. The added-latency ratio is gated on full runs only: the bare proxy adds about 0.3 ms, which a one-second case
measures to within half of itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from edge_bench import (
    EDGE_KEY,
    UPSTREAM_KEYS,
    Result,
    cpu_seconds,
    free_port,
    load,
    pools_yaml,
    rss_mb,
    wait_ready,
)

ROOT = Path(__file__).resolve().parents[1]
LITELLM_KEY = "sk-bench-litellm-master"
LITELLM_PYTHON = ROOT / "bench" / ".venv-litellm" / "bin" / "python"


@dataclass
class Target:
    name: str
    url: str  # base URL up to and including /v1
    key: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def pids(self) -> list[int]:
        """The target's processes and their children."""
        return [pid for process in self.processes for pid in [process.pid, *_children(process.pid)]]

    def rss_mb(self) -> float:
        """Resident memory of the target's processes and their children."""
        return sum(rss_mb(pid) for pid in self.pids())

    def cpu_seconds(self) -> float:
        """User + system CPU time of the target's processes so far."""
        return sum(cpu_seconds(pid) for pid in self.pids())

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def spawn(*args: str, env: dict[str, str] | None = None, python: str = sys.executable) -> subprocess.Popen[bytes]:
    return subprocess.Popen([python, *args], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, **(env or {})})


def wait_http(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    """Until ``url`` answers, with any status."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(_exited(process))
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def _exited(process: subprocess.Popen[bytes]) -> str:
    return f"a benchmark process exited early ({process.args})"


def poolgate_target(name: str, workdir: Path, upstream: str, transport: str, accounts: int = 3, workers: int = 1,
                    keys: Sequence[str] = UPSTREAM_KEYS) -> Target:
    """Selector and edge (``workers`` edge workers), their accounts on ``keys`` of the fake upstream."""
    selector, edge = free_port(), free_port()
    config = workdir / f"{name}.yaml"
    config.write_text(f"""
edge: {{listen: 127.0.0.1:{edge}, api_keys: [{EDGE_KEY}], selector_transport: {transport}}}
selector: {{listen: 127.0.0.1:{selector}, database: {workdir / (name + '.db')}}}
{pools_yaml(upstream, accounts, keys)}""")
    level = ("--log-level", "warning")
    target = Target(name, f"http://127.0.0.1:{edge}/v1", EDGE_KEY)
    target.processes.append(spawn("-m", "poolgate_cli", *level, "selector", "--config", str(config)))
    target.processes.append(spawn("-m", "poolgate_cli", *level, "edge", "--config", str(config),
                                  "--workers", str(workers)))
    # Ready, not merely answering: the edge answers 503 while the selector is still starting, and memory read then
    # is a selector half way through start-up (its "idle" figure came out some 13 MB low).
    wait_ready(f"http://127.0.0.1:{edge}", target.processes, _exited, within=60)
    return target


def bare_target(upstream: str, selector: str | None = None, key: str = UPSTREAM_KEYS[0]) -> Target:
    """The bare proxy, calling the upstream with ``key``; with ``selector`` (host:port of an Exchange service), one
    selection per request from it."""
    port = free_port()
    extra = ("--selector", selector) if selector else ()
    process = spawn("bench/bare_proxy.py", "--listen", f"127.0.0.1:{port}", "--upstream", upstream,
                    "--key", key, *extra)
    wait_http(f"http://127.0.0.1:{port}/v1/models", process)
    return Target("bare + round trip" if selector else "bare proxy", f"http://127.0.0.1:{port}/v1", "unused",
                  [process])


def litellm_target(workdir: Path, upstream: str, python: Path) -> Target:
    port = free_port()
    config = workdir / "litellm.yaml"
    deployments = "\n".join(f"""  - model_name: gpt-4o-mini
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{upstream}/v1", api_key: "{key}"}}"""
                            for key in UPSTREAM_KEYS)
    config.write_text(f"""model_list:
{deployments}
litellm_settings:
  telemetry: false
  set_verbose: false
general_settings:
  master_key: {LITELLM_KEY}
""")
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False", "LITELLM_LOG": "ERROR",
           "NO_DOCS": "True", "DISABLE_SCHEMA_UPDATE": "True"}
    version = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    print(f"LiteLLM {version}: proxy, 1 worker, 3 deployments of gpt-4o-mini on the fake upstream, offline")
    process = spawn("--config", str(config), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1",
                    env=env, python=str(python.parent / "litellm"))
    wait_http(f"http://127.0.0.1:{port}/health/liveliness", process, seconds=180)
    return Target("LiteLLM", f"http://127.0.0.1:{port}/v1", LITELLM_KEY, [process])


@dataclass
class Figures:
    rate: float
    p50: float
    p99: float
    ttfb50: float
    rss: float
    cpu_us: float  # the target's CPU per request at concurrency 32 (all its processes)


def median_figures(figures: list[Figures]) -> Figures:
    def mid(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    return Figures(mid([f.rate for f in figures]), mid([f.p50 for f in figures]), mid([f.p99 for f in figures]),
                   mid([f.ttfb50 for f in figures]), max(f.rss for f in figures), mid([f.cpu_us for f in figures]))


async def measure(target: Target, seconds: float, warmup: float) -> Figures:
    url = f"{target.url}/chat/completions"
    await load(url, target.key, False, 32, warmup, 0)
    cpu = target.cpu_seconds()
    throughput = await load(url, target.key, False, 32, seconds, 0)
    cpu_us = (target.cpu_seconds() - cpu) / max(1, throughput.requests) * 1e6
    single = await load(url, target.key, False, 1, seconds, warmup)
    ttfb = await load(url, target.key, True, 1, seconds, warmup)
    return Figures(throughput.rate, single.percentile(0.5), single.percentile(0.99), ttfb.percentile(0.5),
                   target.rss_mb(), cpu_us)


async def measure_rounds(direct: Target, targets: list[Target], args: argparse.Namespace
                         ) -> tuple[Figures, dict[str, Figures]]:
    """The direct figures and each target's, medians over ``args.rounds`` rounds. Rounds interleave the targets, so
    a burst of load from elsewhere on the machine hits them all alike."""
    rounds: dict[str, list[Figures]] = {t.name: [] for t in [direct, *targets]}
    for _ in range(args.rounds):
        for target in [direct, *targets]:
            rounds[target.name].append(await measure(target, args.seconds, args.warmup))
    base = median_figures(rounds.pop(direct.name))
    return base, {name: median_figures(figures) for name, figures in rounds.items()}


def stop_all(targets: list[Target], fake: subprocess.Popen[bytes]) -> None:
    for target in targets:
        target.stop()
    fake.terminate()
    fake.wait(15)


def print_setting(args: argparse.Namespace) -> None:
    print(f"\n{os.cpu_count()} CPU(s), Python {sys.version.split()[0]}; zero-latency fake upstream; "
          f"{args.seconds:g} s per case, median of {args.rounds} interleaved round(s)")


def print_figures(base: Figures, results: dict[str, Figures]) -> None:
    """Each target's figures, latencies as added over calling the upstream directly (``base``)."""
    print(f"{'target':<19}{'req/s c=32':>11}{'added p50 ms':>14}{'added p99 ms':>14}{'added TTFB p50':>16}"
          f"{'RSS MB':>8}{'CPU µs/req':>12}")
    print(f"{'(direct)':<19}{base.rate:>11,.0f}{base.p50:>13.2f}*{base.p99:>13.2f}*{base.ttfb50:>15.2f}*{'':>8}"
          f"{base.cpu_us:>11.0f}*")
    for name, f in results.items():
        print(f"{name:<19}{f.rate:>11,.0f}{f.p50 - base.p50:>14.2f}{f.p99 - base.p99:>14.2f}"
              f"{f.ttfb50 - base.ttfb50:>16.2f}{f.rss:>8.0f}{f.cpu_us:>12.0f}")
    print("* direct: absolute latency, not added; CPU of the fake upstream alone")
    print("CPU µs/req: the target's own processes (poolgate: selector + edge) per request at c=32")


def start_fake_upstream() -> tuple[subprocess.Popen[bytes], str]:
    """The zero-latency fake upstream every target forwards to, once it answers; returns it and its base URL."""
    port = free_port()
    fake = spawn("-m", "poolgate_cli", "--log-level", "warning", "fake-upstream", "--listen", f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/v1/models", fake)
    return fake, url


async def compare(args: argparse.Namespace, workdir: Path) -> int:
    fake, upstream_url = start_fake_upstream()
    targets: list[Target] = []
    try:
        direct = Target("direct", f"{upstream_url}/v1", UPSTREAM_KEYS[0], [fake])
        targets = [bare_target(upstream_url), poolgate_target("poolgate unary", workdir, upstream_url, "unary"),
                   poolgate_target("poolgate stream", workdir, upstream_url, "stream")]
        litellm = Path(args.litellm_python)
        if not args.quick:
            if litellm.exists():
                targets.append(litellm_target(workdir, upstream_url, litellm))
            else:
                print(f"(LiteLLM skipped: {litellm} not found; `make bench` installs it)")
        base, results = await measure_rounds(direct, targets, args)
    finally:
        stop_all(targets, fake)
    print_setting(args)
    print_figures(base, results)
    bare, stream, unary = results["bare proxy"], results["poolgate stream"], results["poolgate unary"]
    added = {name: max(0.001, f.p50 - base.p50) for name, f in results.items()}
    checks = [
        ("stream req/s / bare proxy req/s", stream.rate / bare.rate, ">=", 0.75, 0.30),
        ("unary req/s / bare proxy req/s", unary.rate / bare.rate, "", 0.0, 0.0),
        # The work per request, measured directly: the steadiest figure of a short run, so the quick check's gate.
        ("stream CPU/req / bare proxy CPU/req", stream.cpu_us / max(1.0, bare.cpu_us), "<=", 1.3, 6.0),
        # The bare proxy adds about 0.3 ms: in a one-second case this ratio's denominator moves by half, so it gates
        # only full runs.
        ("stream added p50 / bare added p50", added["poolgate stream"] / added["bare proxy"], "<=", 2.5,
         0.0 if args.quick else 6.0),
        # Its goal is the floor's + 0.3 ms (bench/goals.py measures both): here a gross bound only.
        ("stream added TTFB p50 (ms)", stream.ttfb50 - base.ttfb50, "", 0.0, 10.0),
    ]
    if "LiteLLM" in results:
        lite = results["LiteLLM"]
        checks += [
            ("stream req/s / LiteLLM req/s", stream.rate / lite.rate, ">=", 30.0, 0.0),
            ("stream added p50 / LiteLLM added p50", added["poolgate stream"] / added["LiteLLM"], "<=", 1 / 8, 0.0),
        ]
    print("\nratio                                   measured   target")
    gross = []
    for label, value, sense, goal, floor in checks:
        met = "" if not sense else ("met" if (value >= goal if sense == ">=" else value <= goal) else "MISSED")
        print(f"{label:<38}{value:>10.2f}   {sense} {goal:.2f} {met}" if sense else f"{label:<38}{value:>10.2f}")
        if floor and (value < floor if sense == ">=" else value > floor):
            gross.append(f"{label}: {value:.2f} (gross-regression bound {floor:.2f})")
    if args.check and gross:
        print("\nGROSS REGRESSION:\n  " + "\n  ".join(gross))
        return 1
    return 0


async def memory(args: argparse.Namespace, workdir: Path) -> dict[str, float]:
    """Resident memory of edge and selector with 1,000 accounts: once started and idle, and after
    ``--memory-requests`` requests (what the processes hold from the start, and what the requests add)."""
    fake, upstream_url = start_fake_upstream()
    target = None
    try:
        target = poolgate_target("memory", workdir, upstream_url, "stream", accounts=1000)
        processes = dict(zip(("selector", "edge"), target.processes, strict=True))
        idle = {name: Target(name, "", "", [process]).rss_mb() for name, process in processes.items()}
        sent = 0
        started = time.monotonic()
        while sent < args.memory_requests:
            result: Result = await load(f"{target.url}/chat/completions", EDGE_KEY, False, 32, 5, 0)
            sent += result.requests
        elapsed = time.monotonic() - started
        after = {name: Target(name, "", "", [process]).rss_mb() for name, process in processes.items()}
        print("\nmemory, 1,000 accounts (goals: edge <= 80 MB, selector <= 75 MB after the requests)")
        print(f"{'process':<10}{'idle MB':>9}{f'after {sent:,} requests ({elapsed:.0f} s) MB':>40}{'growth':>8}")
        for name in ("edge", "selector"):
            print(f"{name:<10}{idle[name]:>9.0f}{after[name]:>40.0f}{after[name] - idle[name]:>+8.1f}")
        return after
    finally:
        if target is not None:
            target.stop()
        fake.terminate()
        fake.wait(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measured case")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; figures are their medians")
    parser.add_argument("--quick", action="store_true", help="short cases, no LiteLLM (the CI-light variant)")
    parser.add_argument("--check", action="store_true", help="exit 1 on gross regressions")
    parser.add_argument("--litellm-python", default=str(LITELLM_PYTHON))
    parser.add_argument("--memory", action="store_true", help="also measure memory after many requests")
    parser.add_argument("--memory-requests", type=int, default=100_000)
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.rounds = min(args.seconds, 1.0), min(args.warmup, 0.3), 1
    with tempfile.TemporaryDirectory() as tmp:
        status = asyncio.run(compare(args, Path(tmp)))
        if args.memory:
            asyncio.run(memory(args, Path(tmp)))
    return status


if __name__ == "__main__":
    sys.exit(main())

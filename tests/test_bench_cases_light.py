"""The benchmark cases `make bench` adds for scaling, run small: the long streams through both targets end without
an error and every stream's events arrive spaced, the selector's ceiling counts selections against the selector's
own CPU, and the in-process Exchange session serves every selection it is sent. Figures are not judged here (the
machine is shared); that the cases work is."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(150)
def test_the_long_streams_case_streams_every_event_through_both_targets() -> None:
    result = subprocess.run([sys.executable, "bench/long_streams.py", "--streams", "40", "--gap-ms", "20"], cwd=ROOT,
                            capture_output=True, text=True, timeout=140)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split("  ")[0]: line.split() for line in result.stdout.splitlines()
            if line.startswith(("bare proxy ", "poolgate stream "))}
    assert set(rows) == {"bare proxy", "poolgate stream"}, result.stdout
    for name, fields in rows.items():
        errors, _seconds, cpu_ms, gap_p50 = (float(v) for v in fields[-5:-1])
        assert errors == 0, result.stdout
        assert cpu_ms > 0, result.stdout
        assert gap_p50 >= 10, f"{name}: the events were not spaced by the upstream's 20 ms\n{result.stdout}"


@pytest.mark.timeout(120)
def test_the_selector_ceiling_counts_selections_per_selector_cpu_second() -> None:
    result = subprocess.run([sys.executable, "bench/selector_ceiling.py", "--seconds", "1", "--clients", "2",
                             "--concurrency", "8"], cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"([\d,]+) selections in .* selector CPU ([\d.]+) s = ([\d,]+) selections per selector "
                      r"CPU-second", result.stdout)
    assert found, result.stdout
    selections, cpu, per_second = int(found[1].replace(",", "")), float(found[2]), int(found[3].replace(",", ""))
    assert selections > 0 and cpu > 0, result.stdout
    assert per_second == pytest.approx(selections / cpu, rel=0.01), result.stdout


@pytest.mark.timeout(60)
def test_the_exchange_session_case_serves_every_selection_and_counts_its_cpu() -> None:
    result = subprocess.run([sys.executable, "-c", (
        "import asyncio, sys; sys.path.insert(0, 'bench'); import selector_bench; "
        "asyncio.run(selector_bench.exchange_session_figures(400))")], cwd=ROOT, capture_output=True, text=True,
        timeout=55)
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"CPU per selection \+ report: ([\d.]+) µs \(400 pairs\)", result.stdout)
    assert found and float(found[1]) > 0, result.stdout
    assert "ignored" not in result.stderr, result.stderr  # every report named a lease the session granted

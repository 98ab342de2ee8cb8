"""The CI-light variant of the fast-path benchmark: fails only on gross regressions, judged by ratios measured in
the same run (the machine is shared; absolute times mean nothing here). The full comparison is `make bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(120)
def test_no_gross_regression_against_a_bare_proxy() -> None:
    result = subprocess.run([sys.executable, "bench/compare.py", "--quick", "--check"], cwd=ROOT,
                            capture_output=True, text=True, timeout=110)
    print(result.stdout)
    assert "stream req/s / bare proxy req/s" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(120)
def test_the_transport_floor_benchmark_measures_a_proxy_that_takes_a_selection_per_request() -> None:
    result = subprocess.run([sys.executable, "bench/transport_floor.py", "--seconds", "0.3", "--warmup", "0.1",
                             "--rounds", "1"], cwd=ROOT, capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stdout + result.stderr
    names = ("bare proxy", "bare + round trip", "poolgate stream")
    rows = {name: line.removeprefix(name).split() for line in result.stdout.splitlines() for name in names
            if line.startswith(name + "  ")}
    assert set(rows) == set(names), result.stdout
    floor = rows["bare + round trip"]
    # Requests went through the round trip (the proxy raises on a failed selection, which the load turns into an
    # error), and its throughput relative to the bare proxy is printed.
    assert float(floor[0].replace(",", "")) > 0, result.stdout
    assert 0 < float(floor[1]) < 5, result.stdout

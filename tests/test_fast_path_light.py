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

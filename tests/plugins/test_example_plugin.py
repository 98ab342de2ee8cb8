"""The separately packaged example plugin (examples/strategy-plugin), installed like any third-party package: a
config names its strategy, and its own tests (written with the public ``selector_service.plugin.testing`` fakes)
pass as its CI would run them."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

from poolgate.config import parse_config
from selector_service.plugin.manager import load_strategies

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "strategy-plugin"

CONFIG = """
pools:
  main:
    strategy: lowest_latency
    api_keys: [sk-one, sk-two]
"""


def test_a_config_names_it_and_poolgate_builds_it() -> None:
    assert distribution("poolgate-example-strategy").version == "0.1.0"
    pool = parse_config(CONFIG).pools["main"]
    strategy = load_strategies().create(pool.strategy, pool.strategy_options)
    assert type(strategy).__module__ == "poolgate_example_strategy"


def test_its_own_tests_pass() -> None:
    # As the package's CI would run them, from its directory; the example needs no event loop, and poolgate's dev
    # environment has pytest-asyncio, which warns when it is not configured.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio", "-W", "error"],
        cwd=EXAMPLE, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout, result.stdout

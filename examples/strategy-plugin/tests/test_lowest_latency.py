"""The plugin's own tests, with the fakes poolgate ships for plugin authors (``selector_service.plugin.testing``).

Run them from this directory, after ``pip install -e .``: ``python -m pytest``.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import poolgate_example_strategy
import pytest

from selector_service.plugin import Strategy
from selector_service.plugin.manager import load_strategies
from selector_service.plugin.testing import FakeAccount, ListCandidates, fake_accounts, picks, strategies_of


def lowest_latency() -> Strategy:
    """The strategy from this module alone, whatever else is installed."""
    return strategies_of(poolgate_example_strategy).create("lowest_latency", {})


def test_picks_the_fastest() -> None:
    pool = [FakeAccount("a", index=0, recent_latency_ms=300), FakeAccount("b", index=1, recent_latency_ms=120)]
    assert picks(lowest_latency(), ListCandidates(pool), 3) == ["b", "b", "b"]


def test_tries_accounts_without_latency_first() -> None:
    pool = [FakeAccount("a", index=0, recent_latency_ms=50), FakeAccount("new", index=1, recent_latency_ms=0.0)]
    assert picks(lowest_latency(), ListCandidates(pool), 1) == ["new"]


def test_breaks_ties_by_fewer_in_flight_then_config_order() -> None:
    pool = fake_accounts(4)
    pool[0].in_flight, pool[1].in_flight, pool[2].in_flight, pool[3].in_flight = 2, 0, 1, 0
    assert picks(lowest_latency(), ListCandidates(pool), 1) == ["a1"]


def test_returns_only_candidates() -> None:
    fast, slow = FakeAccount("fast", index=0, recent_latency_ms=10), FakeAccount("slow", index=1, recent_latency_ms=900)
    candidates = ListCandidates([fast, slow], available=[slow])
    assert picks(lowest_latency(), candidates, 3) == ["slow", "slow", "slow"]
    candidates.set_available([fast, slow])
    assert picks(lowest_latency(), candidates, 1) == ["fast"]


def test_follows_latency_as_it_changes() -> None:
    pool = fake_accounts(3, recent_latency_ms=200.0)
    candidates = ListCandidates(pool)
    strategy = lowest_latency()
    pool[2].recent_latency_ms = 90.0
    assert picks(strategy, candidates, 1) == ["a2"]
    pool[0].recent_latency_ms = 40.0
    assert picks(strategy, candidates, 1) == ["a0"]


def test_takes_no_options() -> None:
    with pytest.raises(ValueError, match="'lowest_latency' takes no options, got window"):
        strategies_of(poolgate_example_strategy).create("lowest_latency", {"window": 5})


def test_poolgate_finds_the_installed_package() -> None:
    found = {entry_point.name: entry_point for entry_point in entry_points(group="poolgate")}
    assert found["example_strategy"].value == "poolgate_example_strategy"
    assert found["example_strategy"].dist is not None
    assert found["example_strategy"].dist.name == "poolgate-example-strategy"
    registry = load_strategies()
    assert registry.providers["lowest_latency"] == "example_strategy"
    assert type(registry.create("lowest_latency", {})).__module__ == "poolgate_example_strategy"

"""The separately packaged example plugin (examples/strategy-plugin), installed like any third-party package."""

from __future__ import annotations

from importlib.metadata import distribution, entry_points

import pytest

from poolgate.config import parse_config
from selector_service.plugin.manager import load_strategies
from tests.plugins.conftest import REQUEST, FakeAccount, ListCandidates

CONFIG = """
pools:
  main:
    strategy: lowest_latency
    api_keys: [sk-one, sk-two]
"""


def test_the_entry_point_is_installed() -> None:
    found = {ep.name: ep for ep in entry_points(group="poolgate")}
    assert found["example_strategy"].value == "poolgate_example_strategy"
    assert found["example_strategy"].dist is not None
    assert found["example_strategy"].dist.name == "poolgate-example-strategy"
    assert distribution("poolgate-example-strategy").version == "0.1.0"


def test_a_config_names_it_and_poolgate_builds_it() -> None:
    pool = parse_config(CONFIG).pools["main"]
    strategy = load_strategies().create(pool.strategy, pool.strategy_options)
    assert type(strategy).__module__ == "poolgate_example_strategy"


def pick(*pool: FakeAccount, available: list[FakeAccount] | None = None) -> str:
    for index, account in enumerate(pool):
        account.index = index
    strategy = load_strategies().create("lowest_latency", {})
    return strategy.select(ListCandidates(list(pool), available), REQUEST).name


def test_lowest_latency_picks_the_fastest() -> None:
    assert pick(FakeAccount("a", recent_latency_ms=300), FakeAccount("b", recent_latency_ms=120)) == "b"


def test_lowest_latency_tries_accounts_without_latency_first() -> None:
    assert pick(FakeAccount("a", recent_latency_ms=50), FakeAccount("new", recent_latency_ms=0.0)) == "new"


def test_lowest_latency_breaks_ties_by_fewer_in_flight() -> None:
    assert pick(FakeAccount("a", in_flight=2), FakeAccount("b", in_flight=0), FakeAccount("c", in_flight=1)) == "b"


def test_lowest_latency_returns_only_candidates() -> None:
    fast, slow = FakeAccount("fast", recent_latency_ms=10), FakeAccount("slow", recent_latency_ms=900)
    assert pick(fast, slow, available=[slow]) == "slow"


def test_lowest_latency_takes_no_options() -> None:
    with pytest.raises(ValueError, match="'lowest_latency' takes no options, got window"):
        load_strategies().create("lowest_latency", {"window": 5})

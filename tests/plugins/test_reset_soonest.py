"""``reset_soonest``: the quota that refreshes first is spent first."""

from __future__ import annotations

import pytest

from selector_service.plugin.testing import ANY_REQUEST, FakeAccount, ListCandidates
from tests.plugins.conftest import make_strategy


def pick(*pool: FakeAccount, **options: object) -> str:
    for index, account in enumerate(pool):
        account.index = index
    return make_strategy("reset_soonest", options).select(ListCandidates(list(pool)), ANY_REQUEST).name


def test_the_window_that_resets_first_serves_first() -> None:
    later = FakeAccount("later", window_reset_at=2_000_000_000.0)
    soon = FakeAccount("soon", window_reset_at=1_900_000_000.0)
    unknown = FakeAccount("unknown")
    assert pick(later, unknown, soon) == "soon"
    assert pick(later, unknown) == "later"  # an account with no known window comes last


def test_ties_go_to_fewer_in_flight() -> None:
    busy = FakeAccount("busy", in_flight=3)
    idle = FakeAccount("idle", in_flight=0)
    assert pick(busy, idle) == "idle"


def test_a_bounded_sample_of_a_large_pool() -> None:
    pool = [FakeAccount(f"a{i}", window_reset_at=1_900_000_000.0 + i) for i in range(1000)]
    name = pick(*pool, sample_size=4, seed=1)
    assert int(name[1:]) > 3  # four of a thousand were looked at, not all of them


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="reset_soonest"):
        make_strategy("reset_soonest", {"sample": 3})

"""``round_robin`` and ``fill_first``: the config-order strategies."""

from __future__ import annotations

from collections import Counter

import pytest

from selector_service.plugin.testing import ANY_REQUEST, ListCandidates, fake_accounts, picks
from tests.plugins.conftest import make_strategy


@pytest.mark.parametrize("cycles", [1, 2, 7, 50])
def test_round_robin_is_exactly_even_over_whole_cycles(cycles: int) -> None:
    pool = fake_accounts(7)
    sequence = picks(make_strategy("round_robin"), ListCandidates(pool), 7 * cycles)
    assert Counter(sequence) == {account.name: cycles for account in pool}
    for start in range(0, len(sequence), 7):
        assert sorted(sequence[start : start + 7]) == sorted(account.name for account in pool)


def test_round_robin_follows_config_order() -> None:
    assert picks(make_strategy("round_robin"), ListCandidates(fake_accounts(3)), 7) == [
        "a0", "a1", "a2", "a0", "a1", "a2", "a0",
    ]  # fmt: skip


def test_round_robin_skips_unavailable_and_stays_even_over_the_rest() -> None:
    pool = fake_accounts(7)
    available = [a for a in pool if a.name not in {"a2", "a4"}]
    sequence = picks(make_strategy("round_robin"), ListCandidates(pool, available), 5 * 30)
    assert Counter(sequence) == {account.name: 30 for account in available}


def test_round_robin_resumes_after_the_last_pick_when_availability_changes() -> None:
    pool = fake_accounts(4)
    candidates = ListCandidates(pool)
    strategy = make_strategy("round_robin")
    assert picks(strategy, candidates, 2) == ["a0", "a1"]
    candidates.set_available([pool[0], pool[3]])
    assert picks(strategy, candidates, 3) == ["a3", "a0", "a3"]
    candidates.set_available(pool)
    assert picks(strategy, candidates, 4) == ["a0", "a1", "a2", "a3"]


def test_round_robin_keeps_a_cursor_per_tier() -> None:
    high = ListCandidates(fake_accounts(3), tier=2)
    normal = ListCandidates(fake_accounts(5), tier=1)
    strategy = make_strategy("round_robin")
    interleaved = [strategy.select(tier, ANY_REQUEST).name for _ in range(6) for tier in (high, normal)]
    assert interleaved[0::2] == ["a0", "a1", "a2", "a0", "a1", "a2"]
    assert interleaved[1::2] == ["a0", "a1", "a2", "a3", "a4", "a0"]


def test_round_robin_starts_over_when_the_generation_changes() -> None:
    pool = fake_accounts(4)
    strategy = make_strategy("round_robin")
    assert picks(strategy, ListCandidates(pool, generation=1), 2) == ["a0", "a1"]
    assert picks(strategy, ListCandidates(pool, generation=1), 1) == ["a2"]
    assert picks(strategy, ListCandidates(pool, generation=2), 1) == ["a0"]


def test_round_robin_in_a_mostly_busy_large_tier_returns_only_candidates() -> None:
    pool = fake_accounts(2000)
    available = pool[1500:1510]
    candidates = ListCandidates(pool, available, iterable=False)
    sequence = picks(make_strategy("round_robin", {"seed": 3}), candidates, 200)
    assert set(sequence) == {account.name for account in available}


def test_fill_first_stays_on_the_first_until_it_is_unavailable() -> None:
    pool = fake_accounts(4)
    candidates = ListCandidates(pool)
    strategy = make_strategy("fill_first")
    assert set(picks(strategy, candidates, 50)) == {"a0"}
    candidates.set_available(pool[1:])
    assert set(picks(strategy, candidates, 10)) == {"a1"}
    candidates.set_available(pool[2:])
    assert set(picks(strategy, candidates, 10)) == {"a2"}
    candidates.set_available([pool[3], pool[0]])
    assert set(picks(strategy, candidates, 10)) == {"a0"}

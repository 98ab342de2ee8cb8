"""``weighted``: exact, smooth, and turns of unavailable accounts are lost."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from selector_service.plugin.testing import ANY_REQUEST, ListCandidates, fake_accounts, picks
from tests.plugins.conftest import make_strategy, weighted_accounts

WEIGHTS = [[5, 1, 1], [3, 2], [1, 2, 3, 4], [2, 3, 5, 7, 11], [1], [4, 4, 4], [100, 1]]


@pytest.mark.parametrize("weights", WEIGHTS, ids=str)
@pytest.mark.parametrize("cycles", [1, 3, 20])
def test_each_account_gets_exactly_its_weight_in_every_cycle(weights: list[int], cycles: int) -> None:
    total = sum(weights)
    sequence = picks(make_strategy("weighted"), ListCandidates(weighted_accounts(weights)), total * cycles)
    for start in range(0, len(sequence), total):
        assert Counter(sequence[start : start + total]) == {f"a{i}": w for i, w in enumerate(weights)}


def test_weights_5_1_1_are_interleaved() -> None:
    sequence = picks(make_strategy("weighted"), ListCandidates(weighted_accounts([5, 1, 1])), 7 * 10)
    assert sequence[:7] == ["a0", "a1", "a0", "a0", "a2", "a0", "a0"]
    assert "a0" * 4 not in "".join(sequence)  # never more than 3 in a row, even across cycles


@pytest.mark.parametrize("weights", WEIGHTS, ids=str)
def test_every_window_is_within_two_picks_of_its_share(weights: list[int]) -> None:
    total = sum(weights)
    sequence = picks(make_strategy("weighted"), ListCandidates(weighted_accounts(weights)), total * 4)
    for length in range(1, min(2 * total, 60)):
        for start in range(len(sequence) - length):
            window = Counter(sequence[start : start + length])
            for i, weight in enumerate(weights):
                assert abs(window[f"a{i}"] - length * weight / total) < 2, (length, start, i)


def test_unavailable_accounts_are_never_returned_and_the_rest_keep_their_proportions() -> None:
    pool = weighted_accounts([3, 5, 1, 2])
    candidates = ListCandidates(pool, [pool[0], pool[2], pool[3]])
    sequence = picks(make_strategy("weighted"), candidates, 6 * 30)
    assert Counter(sequence) == {"a0": 90, "a2": 30, "a3": 60}


def test_a_lost_turn_is_not_made_up_later() -> None:
    pool = weighted_accounts([2, 1, 1])
    candidates = ListCandidates(pool, pool[1:])
    strategy = make_strategy("weighted")
    assert set(picks(strategy, candidates, 12)) == {"a1", "a2"}
    candidates.set_available(pool)
    after = picks(strategy, candidates, 4 * 5)
    for start in range(0, len(after), 4):
        assert Counter(after[start : start + 4]) == {"a0": 2, "a1": 1, "a2": 1}


def test_keeps_a_schedule_per_tier() -> None:
    high = ListCandidates(weighted_accounts([1, 1]), tier=2)
    low = ListCandidates(weighted_accounts([2, 1]), tier=0)
    strategy = make_strategy("weighted")
    sequence = [(strategy.select(high, ANY_REQUEST).name, strategy.select(low, ANY_REQUEST).name) for _ in range(6)]
    assert [h for h, _ in sequence] == ["a0", "a1"] * 3
    assert Counter(low for _, low in sequence) == {"a0": 4, "a1": 2}


def test_starts_a_new_schedule_when_the_generation_changes() -> None:
    pool = weighted_accounts([1, 1, 1])
    strategy = make_strategy("weighted")
    assert picks(strategy, ListCandidates(pool, generation=4), 2) == ["a0", "a1"]
    assert picks(strategy, ListCandidates(pool, generation=5), 1) == ["a0"]


def test_notices_a_changed_weight() -> None:
    pool = weighted_accounts([1, 1])
    candidates = ListCandidates(pool)
    strategy = make_strategy("weighted")
    picks(strategy, candidates, 3)
    pool[0].weight = 3
    counts = Counter(picks(strategy, candidates, 4 * 10))
    assert abs(counts["a0"] - 30) <= 2, counts


def test_exact_over_a_cycle_of_a_large_tier() -> None:
    rng = random.Random(5)
    weights = [rng.randint(1, 4) for _ in range(3000)]
    sequence = picks(make_strategy("weighted"), ListCandidates(weighted_accounts(weights)), sum(weights))
    assert Counter(sequence) == {f"a{i}": w for i, w in enumerate(weights)}


def test_a_mostly_busy_tier_still_gets_a_candidate() -> None:
    pool = fake_accounts(3000)
    available = [pool[2999], pool[17]]
    candidates = ListCandidates(pool, available, iterable=False)
    assert set(picks(make_strategy("weighted", {"seed": 1}), candidates, 100)) == {"a17", "a2999"}

"""Strategies on the per-request path must not slow down as a pool grows.

Counted, not timed: how many accounts a pick reads from ``ordered`` and how many it samples, in a tier of 10,000
whose candidates may not be iterated at all.
"""

from __future__ import annotations

import pytest

from selector_service.plugin.testing import ListCandidates, fake_accounts, picks
from tests.plugins.conftest import make_strategy

PICKS = 500


@pytest.mark.parametrize(
    ("name", "reads_per_pick", "samples_per_pick"),
    [("round_robin", 1, 0), ("weighted", 1, 0), ("random", 0, 1), ("p2c", 0, 2), ("zenith", 0, 16)],
)
@pytest.mark.parametrize("size", [100, 10_000])
def test_a_pick_costs_the_same_in_a_large_tier(
    name: str, reads_per_pick: int, samples_per_pick: int, size: int
) -> None:
    candidates = ListCandidates(fake_accounts(size, weight=2), iterable=False)
    strategy = make_strategy(name, {"seed": 1})
    picks(strategy, candidates, 1)  # the first pick of a tier may build its state
    candidates.ordered.reads = candidates.sampled = 0
    picks(strategy, candidates, PICKS)
    assert candidates.ordered.reads <= reads_per_pick * PICKS
    assert candidates.sampled <= samples_per_pick * PICKS


def test_a_round_robin_pick_in_a_mostly_busy_tier_stays_bounded() -> None:
    pool = fake_accounts(10_000)
    candidates = ListCandidates(pool, pool[::500], iterable=False)
    strategy = make_strategy("round_robin", {"seed": 1})
    picks(strategy, candidates, 5)  # the first fallback maps accounts to positions, once per generation
    candidates.ordered.reads = candidates.sampled = 0
    picks(strategy, candidates, PICKS)
    assert candidates.ordered.reads <= 64 * PICKS
    assert candidates.sampled <= PICKS

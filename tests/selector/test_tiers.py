"""The candidates view strategies see: O(1) membership, exclusions, uniform sampling."""

from __future__ import annotations

import random
from collections import Counter

from poolgate.config import parse_config
from selector_service.domain.account import Account
from selector_service.domain.tiers import CandidateView, Tier


def accounts(n: int) -> list[Account]:
    keys = ", ".join(f"sk-test-{i:08d}" for i in range(n))
    pool = parse_config(f"pools:\n  p: {{api_keys: [{keys}]}}\n").pools["p"]
    return [Account(pool, "p", config, i) for i, config in enumerate(pool.accounts)]


def test_marking_keeps_the_available_set_exact() -> None:
    members = accounts(6)
    tier = Tier(1, members)
    for account in members:
        tier.mark(account, True)
    tier.mark(members[2], False)
    tier.mark(members[0], False)
    tier.mark(members[0], False)  # idempotent
    tier.mark(members[5], True)
    view = CandidateView(tier, frozenset())
    assert len(view) == 4
    assert [a.name for a in view] == ["key-2", "key-4", "key-5", "key-6"]  # config order
    assert members[2] not in view and members[1] in view


def test_exclusions_are_not_candidates() -> None:
    members = accounts(4)
    tier = Tier(1, members)
    for account in members:
        tier.mark(account, True)
    view = CandidateView(tier, frozenset({"p/key-1", "p/key-3", "p/unknown"}))
    assert len(view) == 2
    assert members[0] not in view and members[1] in view
    rng = random.Random(1)
    for _ in range(50):
        assert {a.name for a in view.sample(1, rng)} <= {"key-2", "key-4"}
    assert sorted(a.name for a in view.sample(5, rng)) == ["key-2", "key-4"]


def test_sampling_is_uniform_and_distinct() -> None:
    members = accounts(10)
    tier = Tier(1, members)
    for account in members:
        tier.mark(account, True)
    view = CandidateView(tier, frozenset({"p/key-10"}))
    rng = random.Random(3)
    counts: Counter[str] = Counter()
    for _ in range(9000):
        pair = view.sample(2, rng)
        assert len({a.account_id for a in pair}) == 2
        counts.update(a.name for a in pair)
    assert "key-10" not in counts
    assert all(1800 < n < 2200 for n in counts.values()), counts

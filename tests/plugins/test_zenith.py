"""``zenith``: headroom, latency and errors, with configurable weights, over a bounded sample."""

from __future__ import annotations

from collections import Counter
from typing import Any

from selector_service.plugin.testing import ANY_REQUEST, FakeAccount, ListCandidates, fake_accounts, picks
from tests.plugins.conftest import make_strategy


def pick(*pool: FakeAccount, **options: Any) -> str:
    for index, account in enumerate(pool):
        account.index = index
    return make_strategy("zenith", options).select(ListCandidates(list(pool)), ANY_REQUEST).name


def test_prefers_headroom() -> None:
    assert pick(FakeAccount("low", headroom=0.2), FakeAccount("high", headroom=0.9)) == "high"


def test_prefers_low_latency() -> None:
    assert pick(FakeAccount("slow", recent_latency_ms=900), FakeAccount("fast", recent_latency_ms=300)) == "fast"


def test_unknown_latency_counts_as_fastest_so_new_accounts_get_tried() -> None:
    slow, new = FakeAccount("slow", recent_latency_ms=400), FakeAccount("new", recent_latency_ms=0.0)
    fast = FakeAccount("fast", recent_latency_ms=100, in_flight=1)
    assert pick(slow, new, fast) == "new"  # scores like the fastest (and is idle, which breaks that tie)


def test_prefers_fewer_errors() -> None:
    assert pick(FakeAccount("flaky", error_rate=0.5), FakeAccount("solid", error_rate=0.01)) == "solid"


def test_ties_go_to_fewer_in_flight() -> None:
    assert pick(FakeAccount("busy", in_flight=4), FakeAccount("idle", in_flight=1)) == "idle"


def test_honours_custom_weights() -> None:
    def pool() -> list[FakeAccount]:
        roomy_slow = FakeAccount("roomy_slow", headroom=1.0, recent_latency_ms=1000)
        tight_fast = FakeAccount("tight_fast", headroom=0.5, recent_latency_ms=100)
        return [roomy_slow, tight_fast]

    assert pick(*pool()) == "roomy_slow"  # 0.6 + 0.03 + 0.1 beats 0.3 + 0.3 + 0.1
    assert pick(*pool(), headroom=0.1, latency=0.9, errors=0) == "tight_fast"
    flaky = FakeAccount("flaky", error_rate=0.9)
    assert pick(flaky, FakeAccount("solid", headroom=0.5), headroom=0, latency=0, errors=1) == "solid"


def test_scores_only_a_sample_of_a_large_tier() -> None:
    candidates = ListCandidates(fake_accounts(10_000), iterable=False)
    strategy = make_strategy("zenith", {"sample_size": 8, "seed": 1})
    picks(strategy, candidates, 100)
    assert candidates.sampled == 800
    assert candidates.ordered.reads == 0


def test_the_best_account_wins_whenever_it_is_in_the_sample() -> None:
    pool = fake_accounts(10)
    pool[7].headroom = 1.0
    for account in pool[:7] + pool[8:]:
        account.headroom = 0.3
    counts = Counter(picks(make_strategy("zenith", {"seed": 3}), ListCandidates(pool), 50))
    assert counts == {"a7": 50}  # 10 candidates < sample_size 16: all are scored
    counts = Counter(picks(make_strategy("zenith", {"seed": 3, "sample_size": 2}), ListCandidates(pool), 3000))
    assert 500 <= counts["a7"] <= 700  # in 1 of 5 pairs


def test_returns_only_candidates() -> None:
    pool = fake_accounts(6)
    pool[0].headroom = 1.0
    for account in pool[1:]:
        account.headroom = 0.1
    candidates = ListCandidates(pool, pool[2:])
    assert "a0" not in picks(make_strategy("zenith", {"seed": 1}), candidates, 100)


def test_headroom_is_read_for_the_requests_model() -> None:
    from selector_service.plugin import SelectionRequest

    spent_on_opus = FakeAccount("a", index=0, headroom=0.9, model_headroom={"claude-opus-4-6": 0.05})
    fresh = FakeAccount("b", index=1, headroom=0.5)
    strategy = make_strategy("zenith", {"latency": 0, "errors": 0})
    opus = SelectionRequest(pool="test", model="claude-opus-4-6")
    sonnet = SelectionRequest(pool="test", model="claude-sonnet-4-6")
    assert strategy.select(ListCandidates([spent_on_opus, fresh]), opus).name == "b"
    assert strategy.select(ListCandidates([spent_on_opus, fresh]), sonnet).name == "a"
    p2c = make_strategy("p2c", {"seed": 1})
    assert p2c.select(ListCandidates([spent_on_opus, fresh]), opus).name == "b"
    assert p2c.select(ListCandidates([spent_on_opus, fresh]), sonnet).name == "a"

"""``random`` and ``p2c`` (seeded, with tolerant statistical bounds)."""

from __future__ import annotations

from collections import Counter

from selector_service.plugin.testing import FakeAccount, ListCandidates, fake_accounts, picks
from tests.plugins.conftest import make_strategy


def test_random_is_roughly_uniform() -> None:
    counts = Counter(picks(make_strategy("random", {"seed": 11}), ListCandidates(fake_accounts(5)), 10_000))
    assert set(counts) == {"a0", "a1", "a2", "a3", "a4"}
    assert all(1700 <= count <= 2300 for count in counts.values()), counts


def test_random_returns_only_candidates() -> None:
    pool = fake_accounts(6)
    candidates = ListCandidates(pool, [pool[1], pool[4]])
    assert set(picks(make_strategy("random", {"seed": 2}), candidates, 500)) == {"a1", "a4"}


def test_the_same_seed_gives_the_same_picks() -> None:
    for name in ("random", "p2c", "zenith"):
        first = picks(make_strategy(name, {"seed": 9}), ListCandidates(fake_accounts(20)), 100)
        again = picks(make_strategy(name, {"seed": 9}), ListCandidates(fake_accounts(20)), 100)
        assert first == again, name


def test_p2c_prefers_headroom() -> None:
    pool = [FakeAccount(name=f"a{i}", index=i, headroom=h) for i, h in enumerate([1.0, 0.6, 0.5, 0.1])]
    counts = Counter(picks(make_strategy("p2c", {"seed": 4}), ListCandidates(pool), 6000))
    assert counts["a3"] == 0  # loses to whichever account it is paired with
    assert counts["a0"] > counts["a1"] > counts["a2"]
    assert 2500 <= counts["a0"] <= 3500  # in half of the pairs


def test_p2c_breaks_headroom_ties_by_fewer_in_flight() -> None:
    pool = [FakeAccount(name="busy", in_flight=3), FakeAccount(name="idle", index=1, in_flight=0)]
    assert set(picks(make_strategy("p2c", {"seed": 1}), ListCandidates(pool), 50)) == {"idle"}


def test_p2c_with_equal_accounts_is_roughly_uniform() -> None:
    counts = Counter(picks(make_strategy("p2c", {"seed": 8}), ListCandidates(fake_accounts(4)), 8000))
    assert all(1600 <= count <= 2400 for count in counts.values()), counts


def test_p2c_returns_only_candidates_and_copes_with_one() -> None:
    pool = fake_accounts(5)
    candidates = ListCandidates(pool, [pool[3]])
    assert set(picks(make_strategy("p2c"), candidates, 20)) == {"a3"}

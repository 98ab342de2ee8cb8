"""``least_loaded``."""

from __future__ import annotations

from selector_service.plugin.testing import ANY_REQUEST, FakeAccount, ListCandidates
from tests.plugins.conftest import make_strategy


def pick(*pool: FakeAccount, available: list[FakeAccount] | None = None) -> str:
    for index, account in enumerate(pool):
        account.index = index
    return make_strategy("least_loaded").select(ListCandidates(list(pool), available), ANY_REQUEST).name


def test_picks_the_fewest_in_flight() -> None:
    assert pick(FakeAccount("a", in_flight=3), FakeAccount("b", in_flight=1), FakeAccount("c", in_flight=2)) == "b"


def test_load_is_relative_to_capacity() -> None:
    assert (
        pick(FakeAccount("small", in_flight=1, max_concurrency=2), FakeAccount("big", in_flight=4, max_concurrency=10))
        == "big"
    )
    assert (
        pick(FakeAccount("unlimited", in_flight=1), FakeAccount("limited", in_flight=1, max_concurrency=4)) == "limited"
    )


def test_ties_go_to_more_headroom_then_config_order() -> None:
    assert pick(FakeAccount("a", in_flight=1, headroom=0.2), FakeAccount("b", in_flight=1, headroom=0.9)) == "b"
    assert pick(FakeAccount("a", in_flight=1), FakeAccount("b", in_flight=1), FakeAccount("c", in_flight=0)) == "c"
    assert pick(FakeAccount("a", in_flight=2), FakeAccount("b", in_flight=1), FakeAccount("c", in_flight=1)) == "b"


def test_skips_unavailable_accounts() -> None:
    idle, busy = FakeAccount("idle"), FakeAccount("busy", in_flight=5)
    assert pick(idle, busy, available=[busy]) == "busy"

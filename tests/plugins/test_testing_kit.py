"""The fakes poolgate ships for plugin authors (``selector_service.plugin.testing``) behave as the real accounts and
candidates do, so a strategy tested with them behaves the same when served."""

from __future__ import annotations

import inspect
import random

import pytest

from selector_service.plugin import AccountView, Candidates, SelectionRequest, Strategy
from selector_service.plugin.testing import FakeAccount, ListCandidates, fake_accounts, picks
from tests.plugins.conftest import make_strategy

PROTOCOL_MACHINERY = {"__init__", "__subclasshook__"}


def members(protocol: type) -> set[str]:
    return {
        name for name, value in vars(protocol).items()
        if (isinstance(value, property) or inspect.isfunction(value)) and name not in PROTOCOL_MACHINERY
    }


@pytest.mark.parametrize(("fake", "protocol", "one_member"), [
    (FakeAccount("a"), AccountView, "window_reset_at"),
    (ListCandidates(fake_accounts(2)), Candidates, "__contains__"),
])
def test_the_fakes_have_every_member_of_the_protocols(fake: object, protocol: type, one_member: str) -> None:
    assert one_member in members(protocol)  # the protocol's members are read, not missed
    missing = {name for name in members(protocol) if not hasattr(fake, name)}
    assert not missing, f"{type(fake).__name__} lacks {sorted(missing)} of {protocol.__name__}"


def test_a_fake_account_s_headroom_for_a_model_falls_back_to_its_headroom() -> None:
    account = FakeAccount("a", headroom=0.7, model_headroom={"small": 0.2})
    assert (account.headroom_for("small"), account.headroom_for("large")) == (0.2, 0.7)
    assert account.account_id == "id-a"


def test_candidates_keep_config_order_and_compare_by_account_id() -> None:
    pool = fake_accounts(4)
    candidates = ListCandidates(pool, available=[pool[3], pool[1]])
    assert [account.name for account in candidates] == ["a1", "a3"]
    assert len(candidates) == 2
    assert FakeAccount("a3") in candidates  # another object for the same account
    assert pool[0] not in candidates
    assert list(candidates.ordered) == pool


def test_iterating_candidates_meant_to_stay_flat_fails_the_test() -> None:
    candidates = ListCandidates(fake_accounts(3), iterable=False)
    with pytest.raises(AssertionError, match=r"iterated the candidates, which is O\(n\) per pick; use "
                                             r"candidates.sample\(k, rng\)"):
        list(candidates)
    with pytest.raises(AssertionError, match="iterated the candidates"):
        make_strategy("least_loaded").select(candidates, SelectionRequest(pool="test"))
    assert len(picks(make_strategy("random", {"seed": 1}), candidates, 5)) == 5  # sampling is fine


def test_sampling_and_reads_are_counted() -> None:
    pool = fake_accounts(10)
    candidates = ListCandidates(pool, available=pool[:6])
    drawn = candidates.sample(4, random.Random(3))
    assert len({account.account_id for account in drawn}) == 4
    assert all(account in candidates for account in drawn)
    assert candidates.sample(50, random.Random(3)) and candidates.sampled == 4 + 6
    candidates.ordered[2]
    candidates.ordered[0:3]
    list(candidates.ordered)
    assert candidates.ordered.reads == 1 + 3 + 10


def test_picks_passes_the_request_on() -> None:
    seen: list[SelectionRequest] = []

    class Recording:
        def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
            seen.append(request)
            return candidates.sample(1, random.Random(0))[0]

    strategy: Strategy = Recording()
    request = SelectionRequest(pool="p", model="m")
    assert picks(strategy, ListCandidates(fake_accounts(1)), 2, request) == ["a0", "a0"]
    assert seen == [request, request]

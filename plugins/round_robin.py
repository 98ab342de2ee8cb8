"""``round_robin``: every candidate in turn, in config order."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from selector_service.plugin import AccountView, Candidates, SelectionRequest, TierStates, check_keys, rng_option

MAX_SCAN = 64
"""Accounts looked at per pick before giving up the walk (see :class:`RoundRobin`)."""


class _Cursor:
    __slots__ = ("next", "positions")

    def __init__(self) -> None:
        self.next = 0
        self.positions: dict[str, int] | None = None  # account_id -> position in ordered, built on first need

    def position_of(self, account: AccountView, candidates: Candidates) -> int | None:
        if self.positions is None:
            self.positions = {a.account_id: i for i, a in enumerate(candidates.ordered)}
        return self.positions.get(account.account_id)


class RoundRobin:
    """A cursor per tier over the tier's accounts in config order, skipping accounts that are not candidates.

    With every account available each one is picked exactly once per cycle. Each pick looks at no more than
    :data:`MAX_SCAN` accounts: when that many in a row are unavailable (most of a large tier is busy), it takes a
    random candidate instead and carries on after it, so a pick stays cheap however large the pool is.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._cursors: TierStates[_Cursor] = TierStates(lambda candidates: _Cursor())

    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        cursor = self._cursors.get(candidates)
        ordered = candidates.ordered
        size = len(ordered)
        for _ in range(min(size, MAX_SCAN)):
            account = ordered[cursor.next % size]
            cursor.next = (cursor.next + 1) % size
            if account in candidates:
                return account
        account = candidates.sample(1, self._rng)[0]
        position = cursor.position_of(account, candidates)
        if position is not None:
            cursor.next = (position + 1) % size
        return account


def round_robin(options: Mapping[str, Any]) -> RoundRobin:
    """Options: ``seed`` (int, for the random fallback described on :class:`RoundRobin`)."""
    check_keys("round_robin", options, {"seed"})
    return RoundRobin(rng_option("round_robin", options))

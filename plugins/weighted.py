"""``weighted``: smooth weighted round-robin with exact proportions.

The schedule is earliest-eligible-virtual-deadline-first. Virtual time ``V`` advances by ``1 / W`` per turn, where
``W`` is the sum of the tier's weights. An account of weight ``w`` that has had ``t`` turns becomes eligible at
``t / w`` and its deadline is ``(t + 1) / w``; each turn goes to the eligible account with the earliest deadline,
ties to config order. Hence:

* exact: over every ``W`` consecutive turns each account gets exactly ``w`` of them (a turn numbered ``t + 1``
  needs ``V >= t / w``, and the turns add up to ``W``);
* smooth: turns are spread over the cycle instead of coming in runs (weights 5, 1, 1 give ``A B A A C A A``);
* O(log n) per turn: two heaps, one of accounts waiting to become eligible and one of eligible accounts;
* exact arithmetic: times are compared as ratios of integers, never as floats.

A turn whose account is not a candidate is lost, not postponed: the account's next turn moves on, so it does not
get a burst of picks when it becomes available again.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Mapping
from typing import Any

from selector_service.plugin import AccountView, Candidates, SelectionRequest, TierStates, check_keys, rng_option

MAX_LOST_TURNS = 64
"""Turns a pick may skip before falling back (see :class:`Weighted`)."""
FALLBACK_SAMPLE = 16
"""Candidates the fallback looks at."""


class _Slot:
    __slots__ = ("account_id", "position", "turns", "weight")

    def __init__(self, account_id: str, position: int, weight: int) -> None:
        self.account_id = account_id
        self.position = position
        self.weight = weight
        self.turns = 0

    def eligible_at(self) -> _Time:
        return _Time(self.turns, self.weight, self)

    def deadline(self) -> _Time:
        return _Time(self.turns + 1, self.weight, self)


class _Time:
    """The virtual time ``num / den`` of a slot's turn, ordered by time, then by the slot's config order.

    Compared exactly by integer cross-multiplication: floats would drift, and Fraction is slower.
    """

    __slots__ = ("den", "num", "slot")

    def __init__(self, num: int, den: int, slot: _Slot) -> None:
        self.num = num
        self.den = den
        self.slot = slot

    def __lt__(self, other: _Time) -> bool:
        left, right = self.num * other.den, other.num * self.den
        return left < right or (left == right and self.slot.position < other.slot.position)


class _Schedule:
    """The turn schedule of one tier."""

    def __init__(self, candidates: Candidates) -> None:
        self.slots: dict[str, _Slot] = {}
        for position, account in enumerate(candidates.ordered):
            self.slots[account.account_id] = _Slot(account.account_id, position, _weight(account))
        self.total_weight = sum(slot.weight for slot in self.slots.values())
        self.turns = 0
        self.waiting: list[_Time] = []  # heap of the next eligible times of accounts not yet eligible
        self.eligible: list[_Time] = [slot.deadline() for slot in self.slots.values()]  # heap of deadlines
        heapq.heapify(self.eligible)

    def next_turn(self) -> _Slot:
        """Give the next turn away and return whose it is."""
        waiting, eligible = self.waiting, self.eligible
        # eligible once num / den <= turns / total_weight
        while waiting and waiting[0].num * self.total_weight <= self.turns * waiting[0].den:
            heapq.heappush(eligible, heapq.heappop(waiting).slot.deadline())
        if not eligible:  # cannot happen (some account is always eligible); kept so a pick never fails
            heapq.heappush(eligible, heapq.heappop(waiting).slot.deadline())
        slot = heapq.heappop(eligible).slot
        slot.turns += 1
        self.turns += 1
        heapq.heappush(waiting, slot.eligible_at())
        return slot


def _weight(account: AccountView) -> int:
    return max(1, account.weight)  # the config allows >= 1; never let a bad value stall the schedule


class Weighted:
    """Smooth weighted round-robin, one schedule per tier (see the module docstring).

    A pick skips at most :data:`MAX_LOST_TURNS` turns of unavailable accounts. When even more are lost in a row
    (most of the tier is busy), it samples :data:`FALLBACK_SAMPLE` candidates and takes the one whose next turn is
    soonest, without changing the schedule.
    """

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._schedules: TierStates[_Schedule] = TierStates(_Schedule)

    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        schedule = self._schedules.get(candidates)
        ordered = candidates.ordered
        if not schedule.slots:  # ordered should hold every candidate; never fail a pick if it does not
            return candidates.sample(1, self._rng)[0]
        rebuilt = False
        for _ in range(MAX_LOST_TURNS):
            slot = schedule.next_turn()
            account = ordered[slot.position] if slot.position < len(ordered) else None
            if account is None or account.account_id != slot.account_id or _weight(account) != slot.weight:
                if rebuilt:  # the tier changed under an unchanged generation twice in one pick: stop trusting it
                    break
                schedule = self._schedules.rebuild(candidates)
                rebuilt = True
                continue
            if account in candidates:
                return account
        return self._fallback(candidates, schedule)

    def _fallback(self, candidates: Candidates, schedule: _Schedule) -> AccountView:
        sample = candidates.sample(FALLBACK_SAMPLE, self._rng)
        known = [(slot.deadline(), account) for account in sample if (slot := schedule.slots.get(account.account_id))]
        if not known:
            return sample[0]
        return min(known, key=lambda pair: pair[0])[1]


def weighted(options: Mapping[str, Any]) -> Weighted:
    """Options: ``seed`` (int, for the fallback only). Weights come from the accounts' ``weight``."""
    check_keys("weighted", options, {"seed"})
    return Weighted(rng_option("weighted", options))

"""Priority tiers: the set of available accounts kept up to date incrementally, and the candidates view over it.

Selection must not cost O(pool size): the available set is maintained as accounts change state (O(1) per change),
and the view a strategy gets tests membership and samples in O(1).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from selector_service.plugin.types import AccountView

if TYPE_CHECKING:
    from selector_service.domain.account import Account
    from selector_service.domain.view import AccountReadView


class Tier:
    """The accounts of one priority, in config order, and which of them are available right now (held as the views
    strategies get, built once per account)."""

    __slots__ = ("available", "generation", "ordered", "position", "priority")

    def __init__(self, priority: int, accounts: Sequence[Account], generation: int = 0) -> None:
        self.priority = priority
        self.ordered: tuple[AccountReadView, ...] = tuple(account.view for account in accounts)
        self.generation = generation
        self.available: list[AccountReadView] = []
        self.position: dict[str, int] = {}

    def mark(self, account: Account, available: bool) -> None:
        """Add to or remove from the available set (swap-remove keeps it O(1))."""
        pos = self.position.get(account.account_id)
        if available and pos is None:
            self.position[account.account_id] = len(self.available)
            self.available.append(account.view)
        elif not available and pos is not None:
            last = self.available.pop()
            del self.position[account.account_id]
            if last is not account.view:
                self.available[pos] = last
                self.position[last.account_id] = pos

    def is_available(self, account: Account) -> bool:
        return account.account_id in self.position


class CandidateView:
    """The :class:`~selector_service.plugin.Candidates` a strategy sees: a tier's available accounts, minus the
    request's exclusions."""

    __slots__ = ("_excluded", "_excluded_here", "_tier")

    def __init__(self, tier: Tier, excluded: frozenset[str]) -> None:
        self._tier = tier
        self._excluded = excluded
        self._excluded_here = sum(1 for account_id in excluded if account_id in tier.position) if excluded else 0

    @property
    def tier(self) -> int:
        return self._tier.priority

    @property
    def generation(self) -> int:
        return self._tier.generation

    @property
    def ordered(self) -> Sequence[AccountReadView]:
        return self._tier.ordered

    def __len__(self) -> int:
        return len(self._tier.available) - self._excluded_here

    def __contains__(self, account: object) -> bool:
        account_id = getattr(account, "account_id", None)
        return account_id in self._tier.position and account_id not in self._excluded

    def __iter__(self) -> Iterator[AccountReadView]:
        position, excluded = self._tier.position, self._excluded
        return (a for a in self._tier.ordered if a.account_id in position and a.account_id not in excluded)

    def sample(self, k: int, rng: random.Random) -> list[AccountView]:
        available = self._tier.available
        size = len(self)
        if k >= size:
            picked: list[AccountView] = [a for a in available if a.account_id not in self._excluded]
            rng.shuffle(picked)
            return picked
        if self._excluded_here * 2 > len(available):
            eligible: list[AccountView] = [a for a in available if a.account_id not in self._excluded]
            return rng.sample(eligible, k)
        chosen: dict[str, AccountView] = {}
        excluded = self._excluded
        while len(chosen) < k:  # rejection sampling: at least half the set is eligible, so O(k) expected
            account = available[rng.randrange(len(available))]
            if account.account_id not in excluded:
                chosen.setdefault(account.account_id, account)
        return list(chosen.values())

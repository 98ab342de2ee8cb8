"""Fakes for testing a strategy without a running poolgate: poolgate's own strategy tests use them too.

::

    from selector_service.plugin.testing import FakeAccount, ListCandidates, picks, strategies_of
    import my_package.strategies

    def test_picks_the_fastest() -> None:
        strategy = strategies_of(my_package.strategies).create("lowest_latency", {})
        fast, slow = FakeAccount("fast", recent_latency_ms=20), FakeAccount("slow", index=1, recent_latency_ms=900)
        assert picks(strategy, ListCandidates([fast, slow]), 3) == ["fast", "fast", "fast"]

``ListCandidates(..., iterable=False)`` fails the test when the strategy iterates the candidates (O(n) per pick),
for strategies that must cost the same whatever the pool's size; ``ordered.reads`` and ``sampled`` count what a
strategy looked at, so a test can bound the work per pick instead of timing it. Nothing here needs pytest.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from selector_service.plugin.manager import StrategyRegistry, build_plugin_manager, collect_strategies
from selector_service.plugin.types import AccountView, Candidates, SelectionRequest, Strategy

__all__ = [
    "ANY_REQUEST",
    "CountingSequence",
    "FakeAccount",
    "ListCandidates",
    "fake_accounts",
    "picks",
    "strategies_of",
]

ANY_REQUEST = SelectionRequest(pool="test")
"""A request for pool ``test`` with nothing else known (no model, no session)."""


@dataclass(eq=False)
class FakeAccount:
    """Satisfies ``AccountView``; mutable, so a test can change load or latency between picks.

    ``account_id`` is ``id-<name>``; ``headroom_for(model)`` reads ``model_headroom`` and falls back to ``headroom``.
    """

    name: str
    index: int = 0
    weight: int = 1
    priority: int = 1
    in_flight: int = 0
    max_concurrency: int = 0
    headroom: float = 1.0
    recent_latency_ms: float = 0.0
    window_reset_at: float = 0.0
    error_rate: float = 0.0
    requests_total: int = 0

    model_headroom: dict[str, float] = field(default_factory=dict)

    @property
    def account_id(self) -> str:
        return f"id-{self.name}"

    def headroom_for(self, model: str) -> float:
        return self.model_headroom.get(model, self.headroom)


class CountingSequence(Sequence[AccountView]):
    """The accounts of a tier in config order, counting in ``reads`` how many a strategy has read."""

    def __init__(self, accounts: Sequence[AccountView]) -> None:
        self._accounts = list(accounts)
        self.reads = 0

    @overload
    def __getitem__(self, index: int) -> AccountView: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[AccountView]: ...
    def __getitem__(self, index: int | slice) -> AccountView | Sequence[AccountView]:
        item = self._accounts[index]
        self.reads += len(item) if isinstance(item, list) else 1
        return item

    def __len__(self) -> int:
        return len(self._accounts)

    def __iter__(self) -> Iterator[AccountView]:
        for account in self._accounts:
            self.reads += 1
            yield account


class ListCandidates:
    """Satisfies ``Candidates``: a tier's accounts in config order (``ordered``) and which of them are candidates
    (``available``, every account when not given; change it with :meth:`set_available`).

    With ``iterable=False``, iterating the candidates raises AssertionError, failing the test of a strategy that must
    not walk them. ``sampled`` counts the accounts :meth:`sample` has handed out.
    """

    def __init__(
        self,
        accounts: Sequence[AccountView],
        available: Iterable[AccountView] | None = None,
        tier: int = 1,
        generation: int = 0,
        iterable: bool = True,
    ) -> None:
        self._accounts = list(accounts)
        self.ordered = CountingSequence(self._accounts)
        self.tier = tier
        self.generation = generation
        self.iterable = iterable
        self.sampled = 0
        self._available: list[AccountView] = []
        self._ids: set[str] = set()
        self.set_available(self._accounts if available is None else available)

    def set_available(self, accounts: Iterable[AccountView]) -> None:
        """Make ``accounts`` the candidates (kept in config order, whatever the order given)."""
        self._ids = {account.account_id for account in accounts}
        self._available = [account for account in self._accounts if account.account_id in self._ids]

    def __len__(self) -> int:
        return len(self._available)

    def __contains__(self, account: object) -> bool:
        return getattr(account, "account_id", None) in self._ids

    def __iter__(self) -> Iterator[AccountView]:
        if not self.iterable:
            raise AssertionError(
                "the strategy iterated the candidates, which is O(n) per pick; use candidates.sample(k, rng), or walk "
                "candidates.ordered testing each account with `in`"
            )
        return iter(self._available)

    def sample(self, k: int, rng: random.Random) -> list[AccountView]:
        picked = rng.sample(self._available, min(k, len(self._available)))
        self.sampled += len(picked)
        return picked


def fake_accounts(count: int, **fields: Any) -> list[FakeAccount]:
    """``count`` accounts named a0, a1, ... in config order (``index`` 0, 1, ...); ``fields`` set on all of them."""
    return [FakeAccount(name=f"a{i}", index=i, **fields) for i in range(count)]


def picks(
    strategy: Strategy, candidates: Candidates, count: int, request: SelectionRequest = ANY_REQUEST
) -> list[str]:
    """The account names of ``count`` consecutive picks."""
    return [strategy.select(candidates, request).name for _ in range(count)]


def strategies_of(*plugins: object) -> StrategyRegistry:
    """The strategies of ``plugins`` alone (modules or objects with a ``register_strategies`` hook), whatever else is
    installed; raises PluginError as poolgate's start-up would (a misspelt hook, a name registered twice)."""
    return collect_strategies(build_plugin_manager(extra_plugins=plugins, installed=False))

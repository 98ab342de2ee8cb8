"""Test doubles for strategies: a fake account and a list-backed :class:`Candidates`."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import poolgate_plugins.strategies

from selector_service.plugin import AccountView, SelectionRequest, Strategy
from selector_service.plugin.manager import build_plugin_manager, collect_strategies

REQUEST = SelectionRequest(pool="test")


@dataclass(eq=False)
class FakeAccount:
    """Satisfies ``AccountView``; mutable so a test can change load or latency between picks."""

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


class CountingSequence(Sequence[FakeAccount]):
    """``ordered`` that counts how many accounts a strategy reads from it."""

    def __init__(self, accounts: list[FakeAccount]) -> None:
        self._accounts = accounts
        self.reads = 0

    @overload
    def __getitem__(self, index: int) -> FakeAccount: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[FakeAccount]: ...
    def __getitem__(self, index: int | slice) -> FakeAccount | Sequence[FakeAccount]:
        item = self._accounts[index]
        self.reads += len(item) if isinstance(item, list) else 1
        return item

    def __len__(self) -> int:
        return len(self._accounts)

    def __iter__(self) -> Iterator[FakeAccount]:
        for account in self._accounts:
            self.reads += 1
            yield account


class ListCandidates:
    """Satisfies ``Candidates``: the tier's accounts in config order and which of them are candidates.

    With ``iterable=False`` iterating the candidates fails the test, for strategies that must stay flat.
    """

    def __init__(
        self,
        accounts: list[FakeAccount],
        available: Iterable[FakeAccount] | None = None,
        tier: int = 1,
        generation: int = 0,
        iterable: bool = True,
    ) -> None:
        self.ordered = CountingSequence(accounts)
        self.tier = tier
        self.generation = generation
        self.iterable = iterable
        self.sampled = 0
        self.set_available(accounts if available is None else available)

    def set_available(self, accounts: Iterable[FakeAccount]) -> None:
        ids = {account.account_id for account in accounts}
        self._available = [account for account in self.ordered._accounts if account.account_id in ids]
        self._ids = ids

    def __len__(self) -> int:
        return len(self._available)

    def __contains__(self, account: object) -> bool:
        return getattr(account, "account_id", None) in self._ids

    def __iter__(self) -> Iterator[AccountView]:
        assert self.iterable, "this strategy must not iterate the candidates"
        return iter(self._available)

    def sample(self, k: int, rng: random.Random) -> list[AccountView]:
        picked = rng.sample(self._available, min(k, len(self._available)))
        self.sampled += len(picked)
        return list(picked)


def accounts(count: int, **fields: Any) -> list[FakeAccount]:
    """``count`` accounts named a0, a1, ... in config order; ``fields`` set on all of them."""
    return [FakeAccount(name=f"a{i}", index=i, **fields) for i in range(count)]


def weighted_accounts(weights: Sequence[int]) -> list[FakeAccount]:
    return [FakeAccount(name=f"a{i}", index=i, weight=weight) for i, weight in enumerate(weights)]


def make_strategy(name: str, options: Mapping[str, Any] | None = None) -> Strategy:
    """A built-in strategy through a fresh registry holding only the built-ins."""
    manager = build_plugin_manager(extra_plugins=[poolgate_plugins.strategies], load_entry_points=False)
    return collect_strategies(manager).create(name, options or {})


def picks(strategy: Strategy, candidates: ListCandidates, count: int) -> list[str]:
    """The names of ``count`` consecutive picks."""
    return [strategy.select(candidates, REQUEST).name for _ in range(count)]

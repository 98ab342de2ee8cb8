"""What a strategy sees and returns. These are read-only views: a strategy never changes an account.

A pool's accounts are split into priority tiers; the selector asks the pool's strategy to pick from the highest tier
that has a candidate. Candidates are already filtered for health, concurrency, rate limits and the request's
exclusions, so any candidate the strategy returns is fine to lease.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


class AccountView(Protocol):
    """Read-only view of one account, for strategies."""

    @property
    def account_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def index(self) -> int:
        """Position in the pool's config order (0 first), across all tiers; not the position within ``ordered``."""
    @property
    def weight(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def in_flight(self) -> int: ...
    @property
    def max_concurrency(self) -> int:
        """0 means unlimited."""
    @property
    def headroom(self) -> float:
        """Fraction of rate-limit quota left, 0..1, from the tightest known limit; 1.0 when nothing is known.

        Kept current by the pool: quota use older than a minute, and learned limits past their reset time, stop
        counting within a second even on an account that serves nothing."""
    def headroom_for(self, model: str) -> float:
        """:attr:`headroom` for requests for ``model``: providers limit per model, so the share left is read from the
        latest answer for that model (with the account's own caps and a plan's windows); :attr:`headroom` when no
        answer for it is known yet."""
    @property
    def window_reset_at(self) -> float:
        """When the soonest learned rate-limit or quota window that is partly used resets (epoch seconds); 0.0 when
        none is known. Capacity that refreshes soon is worth spending first."""
    @property
    def recent_latency_ms(self) -> float:
        """Exponentially weighted latency of recent successes; 0.0 before the first."""
    @property
    def error_rate(self) -> float:
        """Share of recent attempts that failed, 0..1: the plain average of the first five outcomes, then
        exponentially weighted (cancelled calls and client errors do not count)."""
    @property
    def requests_total(self) -> int: ...


class Candidates(Protocol):
    """The accounts of one tier that may serve this request.

    Membership tests and sampling are O(1); iteration is O(n). Strategies meant for large pools should use
    :meth:`sample` or walk :attr:`ordered` with ``in`` rather than iterate.
    """

    @property
    def tier(self) -> int:
        """The priority tier (2 high, 1 normal, 0 low) the candidates come from."""
    @property
    def generation(self) -> int:
        """Changes whenever the tier's accounts change (added, removed, reordered or re-weighted by a config
        reload); cached state keyed on the tier should be rebuilt when it changes."""
    @property
    def ordered(self) -> Sequence[AccountView]:
        """Every account of the tier in config order, candidates or not (test with ``in``)."""
    def __len__(self) -> int:
        """How many candidates there are (never 0 when a strategy is called)."""
    def __contains__(self, account: object) -> bool:
        """Whether ``account`` (compared by ``account_id``) is a candidate."""
    def __iter__(self) -> Iterator[AccountView]:
        """The candidates, in config order."""
    def sample(self, k: int, rng: random.Random) -> list[AccountView]:
        """Up to ``k`` distinct candidates drawn uniformly at random, in O(k) expected time."""


@dataclass(frozen=True, slots=True)
class SelectionRequest:
    """What is known about the request an account is picked for."""

    pool: str
    model: str = ""
    session_key: str = ""
    estimated_input_tokens: int | None = None
    conversation: bool = False
    """The session key names one conversation (an agent's): it sticks unless the pool turns conversation_affinity
    off."""
    light: bool = False
    """A light call (token counting): not counted against the account's request rate or concurrency."""


@runtime_checkable
class Strategy(Protocol):
    """Picks one account. One instance serves one pool; it may keep state (a cursor, a schedule) between calls."""

    def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
        """Return one of ``candidates`` (never empty). Called on the per-request path: keep it cheap."""
        ...


StrategyFactory = Callable[[Mapping[str, Any]], Strategy]
"""Builds a strategy for one pool from the pool's ``strategy_options``; raises ValueError on bad options."""

RegisterStrategy = Callable[[str, StrategyFactory], None]
"""The callback a plugin's ``register_strategies`` hook calls, once per strategy: ``register(name, factory)``."""

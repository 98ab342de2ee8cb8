"""A pool at run time: its accounts by tier, what is available, sticky sessions, and the queue of waiting requests."""

from __future__ import annotations

import heapq
import itertools
import math
from collections import OrderedDict, deque
from dataclasses import dataclass

from poolgate.config import PoolConfig
from selector_service.domain.account import NEVER, Account
from selector_service.domain.classify import pool_rules
from selector_service.domain.outcomes import AccountState
from selector_service.domain.scopes import Scoper
from selector_service.domain.tiers import CandidateView, Tier
from selector_service.domain.view import AccountReadView
from selector_service.plugin.types import SelectionRequest, Strategy

MAX_STICKY_SESSIONS = 100_000
HEADROOM_RECHECK = 1.0
"""Seconds between re-checks of one account's headroom as its quota use ages out."""


class StrategyContractError(RuntimeError):
    """A strategy returned something that was not one of its candidates."""


@dataclass(slots=True)
class Waiter:
    """A SelectAccount call queued until an account frees up."""

    request: SelectionRequest
    excluded: frozenset[str]
    future: object  # asyncio.Future[Lease]; typed loosely to keep asyncio out of this module


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    account: Account
    state: AccountState
    reason: str
    cooldown_remaining: float


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    name: str
    config: PoolConfig
    accounts: list[AccountSnapshot]
    available: int
    waiting: int
    taken_at: float


class Pool:
    """One configured pool. Not thread-safe: everything runs on the selector's event loop."""

    def __init__(self, name: str, config: PoolConfig, strategy: Strategy) -> None:
        self.name = name
        self.config = config
        self.strategy = strategy
        self.rules = pool_rules(config)
        self.scoper = Scoper(config)
        self._resting: dict[str, set[str]] = {}
        """scope -> the accounts with a rest for it (per-model cooldowns)."""
        self._scopes_of: dict[str, frozenset[str]] = {}
        """account id -> its resting scopes, as last indexed."""
        self.generation = 0
        self._wakeups: list[tuple[float, int, Account]] = []
        self._seq = itertools.count()
        self.sessions: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.waiters: deque[Waiter] = deque()
        self._index([Account(config, name, c, i) for i, c in enumerate(config.accounts)])

    def _index(self, accounts: list[Account]) -> None:
        self.accounts: dict[str, Account] = {a.account_id: a for a in accounts}
        by_priority: dict[int, list[Account]] = {}
        for account in accounts:
            by_priority.setdefault(account.priority, []).append(account)
        self.tiers = [
            Tier(priority, members, self.generation) for priority, members in sorted(by_priority.items(), reverse=True)
        ]
        self._tier_of = {a.account_id: t for t in self.tiers for a in t.ordered}

    def reconfigure(self, config: PoolConfig, strategy: Strategy) -> tuple[list[Account], list[Account]]:
        """Apply a new config for this pool; returns (new accounts, removed accounts).

        An account with the same name and credential keeps its object, health and in-flight leases; one whose key
        changed is a new account. Removed accounts drain: their leases can still be reported, nothing new is leased.
        """
        kept: list[Account] = []
        added: list[Account] = []
        for index, account_config in enumerate(config.accounts):
            existing = self.accounts.get(f"{self.name}/{account_config.name}")
            if existing is not None and existing.auth.fingerprint == account_config.credential_fingerprint:
                existing.configure(config, account_config, index)
                kept.append(existing)
            else:
                account = Account(config, self.name, account_config, index)
                kept.append(account)
                added.append(account)
        before = self.accounts
        self.config = config
        self.strategy = strategy
        self.rules = pool_rules(config)
        self.scoper = Scoper(config)
        self.generation += 1
        self._index(kept)  # availability is derived by the caller's refresh, once saved health is restored
        removed = [a for a in before.values() if self.accounts.get(a.account_id) is not a]
        return added, removed

    def is_member(self, account: Account) -> bool:
        return self.accounts.get(account.account_id) is account

    def is_available(self, account: Account) -> bool:
        """Whether ``account`` can be chosen now. An account added by a reload is a member before it is available:
        it joins once its saved health has been loaded."""
        tier = self._tier_of.get(account.account_id)
        return tier is not None and tier.is_available(account)

    # -- availability ----------------------------------------------------------------------------------------------

    def refresh(self, account: Account, now: float) -> None:
        """Re-derive whether ``account`` is available; schedule a re-check for when a cooldown ends."""
        if not self.is_member(account):
            return  # removed by a reload: draining, never leased again
        rises_at = account.quota.expire(now)
        until = account.blocked_until(now)
        self._tier_of[account.account_id].mark(account, until == 0.0)
        if account.rests.rests or account.quota.scope_windows or account.account_id in self._scopes_of:
            self._index_scopes(account, now)
        if 0.0 < until < NEVER:
            heapq.heappush(self._wakeups, (until, next(self._seq), account))
        elif until == 0.0 and account.auth.expires_at:
            # An available account whose credential will expire: re-check when it enters the skip threshold
            # (once per expiry, not on every lease).
            auth = account.auth
            edge = auth.expires_at - auth.expiry_skip
            if edge != auth.expiry_wakeup:
                auth.expiry_wakeup = edge
                heapq.heappush(self._wakeups, (edge, next(self._seq), account))
        if rises_at:
            # Headroom rises by itself as quota use ages out; strategies that prefer headroom would otherwise keep
            # avoiding an idle account on old figures. One re-check pending per account (an earlier one replaces
            # it), at most one a second.
            when = max(rises_at, now + HEADROOM_RECHECK)
            quota = account.quota
            if quota.headroom_wakeup <= now or when < quota.headroom_wakeup:
                quota.headroom_wakeup = when
                heapq.heappush(self._wakeups, (when, next(self._seq), account))

    def _index_scopes(self, account: Account, now: float) -> None:
        """Keep the per-scope index of resting accounts, and wake queued calls when a scope's rest ends."""
        account_id = account.account_id
        full = account.quota.full_scopes(now)
        rests = account.rests.rests
        scopes = frozenset(rests) | full
        before = self._scopes_of.get(account_id, frozenset())
        for scope in before - scopes:
            members = self._resting.get(scope)
            if members is not None:
                members.discard(account_id)
                if not members:
                    del self._resting[scope]
        for scope in scopes - before:
            self._resting.setdefault(scope, set()).add(account_id)
        if scopes:
            self._scopes_of[account_id] = scopes
        else:
            self._scopes_of.pop(account_id, None)
        for rest in rests.values():
            if rest.until > now and rest.woken != rest.until:
                rest.woken = rest.until
                heapq.heappush(self._wakeups, (rest.until, next(self._seq), account))
        for scope in full - before:  # a model's configured cap reached: re-check when its minute frees up
            heapq.heappush(self._wakeups, (account.scope_blocked_until(scope, now), next(self._seq), account))

    def refresh_all(self, now: float) -> None:
        for account in self.accounts.values():
            self.refresh(account, now)

    def process_due(self, now: float) -> None:
        """Re-check accounts whose cooldown (or window) has ended."""
        wakeups = self._wakeups
        while wakeups and wakeups[0][0] <= now:
            _, _, account = heapq.heappop(wakeups)
            self.refresh(account, now)

    def next_wakeup(self) -> float | None:
        return self._wakeups[0][0] if self._wakeups else None

    @property
    def available_count(self) -> int:
        return sum(len(tier.available) for tier in self.tiers)

    # -- selection -------------------------------------------------------------------------------------------------

    def scope_of(self, request: SelectionRequest) -> str:
        return self.scoper.scope_of(request.model)

    def blocked_in(self, scope: str, now: float) -> frozenset[str]:
        """The accounts that cannot take a lease for ``scope`` now because of their rest for it (or its probe out).
        Costs the number of accounts resting for that scope, not the pool's size."""
        resting = self._resting.get(scope) if scope else None
        if not resting:
            return frozenset()
        accounts = self.accounts
        return frozenset(account_id for account_id in resting if account_id in accounts
                         and accounts[account_id].scope_blocked_until(scope, now) > 0.0)

    def waiting_for(self, scope: str) -> bool:
        """Whether a call for ``scope`` is queued (FIFO holds within a scope; another model's call may go)."""
        return any(self.scoper.scope_of(waiter.request.model) == scope for waiter in self.waiters)

    def choose(self, request: SelectionRequest, excluded: frozenset[str], now: float) -> Account | None:
        """The account to lease for ``request`` now, or None when no candidate is available."""
        self.process_due(now)
        scope = self.scope_of(request)
        if scope:
            blocked = self.blocked_in(scope, now)
            if blocked:
                excluded = excluded | blocked
        sticky = request.session_key and (
            self.config.sticky_sessions or (request.conversation and self.config.conversation_affinity))
        if sticky:
            account = self._sticky_account(request.session_key, excluded, now)
            if account is not None:
                return account
        for tier in self.tiers:
            if not tier.available:
                continue
            candidates = CandidateView(tier, excluded)
            if not len(candidates):
                continue
            picked = self.strategy.select(candidates, request)
            if not isinstance(picked, AccountReadView) or picked not in candidates:
                raise StrategyContractError(
                    f"strategy {self.config.strategy!r} of pool {self.name!r} returned an account that is not a "
                    "candidate; fix the strategy plugin"
                )
            account = self.accounts[picked.account_id]
            if sticky:
                self._remember_session(request.session_key, account, now)
            return account
        return None

    def _sticky_account(self, session_key: str, excluded: frozenset[str], now: float) -> Account | None:
        entry = self.sessions.get(session_key)
        if entry is None:
            return None
        account_id, expires = entry
        account = self.accounts.get(account_id)
        if expires <= now or account is None:  # expired, or the account was removed
            del self.sessions[session_key]
            return None
        if account_id in excluded or not self.is_available(account):
            return None  # the session moves (and stays on whichever account serves it next)
        self.sessions[session_key] = (account_id, now + self.config.session_ttl)
        self.sessions.move_to_end(session_key)
        return account

    def _remember_session(self, session_key: str, account: Account, now: float) -> None:
        self.sessions[session_key] = (account.account_id, now + self.config.session_ttl)
        self.sessions.move_to_end(session_key)
        while len(self.sessions) > MAX_STICKY_SESSIONS:
            self.sessions.popitem(last=False)

    # -- why nothing is available ----------------------------------------------------------------------------------

    def shortage(self, excluded: frozenset[str], now: float, scope: str = "") -> tuple[float | None, str, str]:
        """When the earliest non-excluded account may free up (None: not by itself), the cause, and a summary;
        ``scope``: the model scope asked for (accounts resting for it count as cooling)."""
        earliest = math.inf
        busy = False
        counts: dict[str, int] = {}
        for account in self.accounts.values():
            if account.account_id in excluded:
                counts["already tried"] = counts.get("already tried", 0) + 1
                continue
            until = account.blocked_until(now)
            state, _ = account.state(now)
            scoped = account.scope_blocked_until(scope, now) if until == 0.0 else 0.0
            if scoped:
                if account.awaiting_scope_probe(scope, now):
                    busy = True  # the model's probe may answer any moment
                    label = "probe for this model in flight"
                else:  # resting for the model, or at the model's configured cap
                    label = "cooling for this model"
                    earliest = min(earliest, scoped)
            elif until == 0.0:
                # Not yet in the index: added by a reload that is still loading its saved health.
                label = "available" if self.is_available(account) else "being added"
            elif account.auth.awaiting_refresh and not account.health.disabled:
                label = "credential rejected, refreshing"  # back when the refresh succeeds
            elif account.auth.expiring(now) and not account.health.disabled:
                label = "credential expiring"  # back when a refresh succeeds, not at a known time
            elif account.awaiting_probe(now):
                busy = True  # its probe may answer any moment
                label = "probe in flight"
            elif until == NEVER and not account.health.disabled:
                busy = True
                label = "at max concurrency"
            else:
                label = state.value.replace("_", " ")
                earliest = min(earliest, until)
            counts[label] = counts.get(label, 0) + 1
        summary = ", ".join(f"{n} {label}" for label, n in sorted(counts.items()))
        cooling = counts.get("cooling", 0) + counts.get("cooling for this model", 0)
        cause = "busy" if busy else ("rate_limited" if cooling else "unavailable")
        if busy:
            return None, cause, summary
        return (earliest - now if earliest < math.inf else None), cause, summary

    def may_free_up(self, excluded: frozenset[str], now: float, deadline: float, scope: str = "") -> bool:
        """Whether waiting until ``deadline`` could help: a lease may return, or a cooldown ends before it."""
        for account in self.accounts.values():
            if account.account_id in excluded:
                continue
            until = account.blocked_until(now)
            if until == 0.0 and scope:
                if account.awaiting_scope_probe(scope, now):
                    return True  # the model's probe is out: its answer may come any moment
                until = account.scope_blocked_until(scope, now)
            if until <= deadline or account.awaiting_probe(now) or (until == NEVER and not account.health.disabled
                                     and (account.auth.refreshing or not account.auth.expiring(now))):
                return True
        return False

    # -- reporting -------------------------------------------------------------------------------------------------

    def snapshot(self, now: float) -> PoolSnapshot:
        self.process_due(now)
        accounts = []
        for account in self.accounts.values():
            state, reason = account.state(now)
            accounts.append(AccountSnapshot(account, state, reason, account.cooldown_remaining(now)))
        return PoolSnapshot(
            self.name, self.config, accounts, self.available_count, len(self.waiters), now
        )

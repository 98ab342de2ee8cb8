"""Handing out leases: an account at once when one is free, else a place in the pool's queue; leases that come
back (reported, expired, or given up by a caller who went away)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from selector_service.domain.account import Account
from selector_service.domain.errors import InvalidRequestError, NoAccountAvailableError
from selector_service.domain.leases import Grant, Lease, LeaseTable
from selector_service.domain.pool import Pool
from selector_service.domain.queueing import WaitQueue
from selector_service.domain.registry import PoolRegistry
from selector_service.plugin.types import SelectionRequest

log = logging.getLogger("poolgate.selector")

MAX_EXCLUDED = 1000


@dataclass(slots=True)
class CredentialHooks:
    """What the selector tells whoever renews credentials (set once that is running)."""

    on_refresh_due: Callable[[Account], None] | None = None
    """Called (without waiting) when a leased account's credential is within its refresh margin."""
    on_credential_rejected: Callable[[Account], bool] | None = None
    """Called (without waiting) when the upstream rejected an account's credential; True when a refresh of it has
    started, so the account waits for the new credential instead of being disabled."""


class Leasing:
    """Leases out accounts of the registry's pools, FIFO behind queued calls."""

    def __init__(self, registry: PoolRegistry, clock: Callable[[], float], hooks: CredentialHooks) -> None:
        self._registry = registry
        self._clock = clock
        self._hooks = hooks
        self.leases = LeaseTable()
        self.queue = WaitQueue(clock, self._grant, self._exhausted, self.release)

    def try_select(self, request: SelectionRequest, exclude: Iterable[str]) -> Grant | None:
        """A lease at once when an account is free and nobody is queued, else None."""
        pool, excluded = self._checked(request, exclude)
        return self._grant_now(pool, request, excluded, self._clock())

    async def select(self, request: SelectionRequest, exclude: Iterable[str], timeout: float | None) -> Grant:
        """Lease an account, waiting (FIFO) up to ``timeout`` seconds (the pool's queue_timeout when None)."""
        pool, excluded = self._checked(request, exclude)
        now = self._clock()
        grant = self._grant_now(pool, request, excluded, now)
        if grant is not None:
            return grant
        wait = pool.config.queue_timeout if timeout is None else max(0.0, min(timeout, pool.config.queue_timeout))
        deadline = now + wait
        scope = pool.scope_of(request)
        if wait <= 0 or not pool.may_free_up(excluded, now, deadline, scope):
            raise self._exhausted(pool, excluded, now, scope)
        return await self.queue.wait(pool, request, excluded, deadline)

    def _grant_now(self, pool: Pool, request: SelectionRequest, excluded: frozenset[str], now: float) -> Grant | None:
        self.expire(now)
        # FIFO: nobody overtakes a queued call for the same model scope (one for another model may go: its accounts
        # may be free while the queued call's are resting for its model).
        if not pool.waiters or not pool.waiting_for(pool.scope_of(request)):
            account = pool.choose(request, excluded, now)
            if account is not None:
                return self._grant(pool, account, request, now)
        return None

    def _checked(self, request: SelectionRequest, exclude: Iterable[str]) -> tuple[Pool, frozenset[str]]:
        pool = self._registry.pool(request.pool)
        excluded = exclude if isinstance(exclude, frozenset) else frozenset(exclude)
        if len(excluded) > MAX_EXCLUDED:
            raise InvalidRequestError("exclude_account_ids", f"at most {MAX_EXCLUDED} ids, got {len(excluded)}")
        if request.estimated_input_tokens is not None and request.estimated_input_tokens < 0:
            raise InvalidRequestError("estimated_input_tokens", "must not be negative")
        return pool, excluded

    def _grant(self, pool: Pool, account: Account, request: SelectionRequest, now: float) -> Grant:
        scope = pool.scope_of(request)
        probe_id = account.acquire(now, request.light, scope)
        on_refresh_due = self._hooks.on_refresh_due
        if account.auth.expires_at and on_refresh_due is not None and account.auth.refresh_due(now):
            on_refresh_due(account)  # starts a background refresh; the grant never waits for it
        scope_epoch, scope_probe = account.rests.probe(scope, now)
        lease = self.leases.open(account, request.model, now, pool.config.lease_ttl, probe_id, request.light,
                                 scope, scope_epoch, scope_probe)
        pool.refresh(account, now)
        return Grant(lease, pool)

    def _exhausted(self, pool: Pool, excluded: frozenset[str], now: float, scope: str = "") -> NoAccountAvailableError:
        retry_after, cause, summary = pool.shortage(excluded, now, scope)
        return NoAccountAvailableError(pool.name, summary, retry_after, cause)

    def returned(self, lease: Lease) -> None:
        """A lease came back: the account counts it no longer (and a probe's slot frees up)."""
        account = lease.account
        account.release(lease.probe_id, lease.light)
        if lease.scope_probe:
            account.rests.returned(lease.scope, lease.scope_epoch)

    def release(self, lease: Lease, why: str) -> None:
        """Give a lease back unreported (its caller went away)."""
        if self.leases.close(lease.lease_id, why) is None:
            return
        self._released(lease, self._clock())

    def _released(self, lease: Lease, now: float) -> None:
        pool = self._registry.pool_of(lease.account)
        self.returned(lease)
        pool.refresh(lease.account, now)
        self.queue.serve(pool)

    def expire(self, now: float) -> None:
        """Release the leases past their time to live."""
        for lease in self.leases.expire(now):
            log.info("lease on %s expired unreported after %.0f s; released",
                     lease.account.account_id, now - lease.granted_at)
            self._released(lease, now)

    def serve(self, pool: Pool, account: Account | None = None) -> None:
        """Re-check ``account`` (changed from outside: an operator, a refreshed credential) and serve the pool's
        waiting calls."""
        if account is not None:
            pool.refresh(account, self._clock())
        self.queue.serve(pool)

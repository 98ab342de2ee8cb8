"""The selector's domain facade: leases out accounts, applies outcomes, queues requests when nothing is free.

Selection and success reports run in memory only; health changes are written through the :class:`StateWriter`
(failure reports wait until their change is durable, so an acknowledged 429 survives a crash).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from poolgate.config import Config, PoolConfig
from selector_service.domain.account import Account
from selector_service.domain.admission import NO_EPOCH
from selector_service.domain.errors import (
    InvalidRequestError,
    NoAccountAvailableError,
    UnknownAccountError,
    UnknownPoolError,
)
from selector_service.domain.leases import Grant, Lease, LeaseTable
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport, ReportResult
from selector_service.domain.pool import Pool, PoolSnapshot
from selector_service.domain.queueing import WaitQueue
from selector_service.domain.state import PersistedState, StateChange
from selector_service.domain.usage import PriceTable, UsageRecord, UsageRecorder
from selector_service.domain.writer import StateStore, StateWriter
from selector_service.plugin.manager import StrategyRegistry
from selector_service.plugin.types import SelectionRequest, Strategy

log = logging.getLogger("poolgate.selector")

MAX_REPORTED = 10**12
"""The largest token count or time in milliseconds a report may carry: more than any request uses or waits, and small
enough that totals and usage sums stay within 64 bits."""

SWEEP_INTERVAL = 1.0
MAX_EXCLUDED = 1000


@dataclass(slots=True)
class ReloadSummary:
    """What a reload changed (account ids)."""

    pools_added: list[str] = field(default_factory=list)
    pools_removed: list[str] = field(default_factory=list)
    accounts_added: list[str] = field(default_factory=list)
    accounts_removed: list[str] = field(default_factory=list)


def _consume(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()  # logged by the writer already; retrieve it so asyncio does not warn


class SelectorCore:
    def __init__(
        self,
        config: Config,
        strategies: StrategyRegistry,
        store: StateStore,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        usage: UsageRecorder | None = None,
        expand: Callable[[Config], Config] | None = None,
        served: Config | None = None,
    ) -> None:
        """``expand`` turns a config into the one served, with the accounts of its credential sources (files,
        environment, plugins); ``config`` stays as given, so a reload re-expands it. ``served`` is ``expand(config)``
        when the caller has it already (it expands first to report unusable credentials before anything starts)."""
        self.config = config
        self._expand: Callable[[Config], Config] = expand or (lambda given: given)
        self._reload_lock = asyncio.Lock()
        self.on_refresh_due: Callable[[Account], None] | None = None
        """Called (without waiting) when a leased account's credential is within its refresh margin."""
        self.on_credential_rejected: Callable[[Account], bool] | None = None
        """Called (without waiting) when the upstream rejected an account's credential; True when a refresh of it
        has started, so the account waits for the new credential instead of being disabled."""
        self._strategies = strategies
        self._clock = clock
        self._rng = rng or random.Random()
        self.usage = usage
        self._prices = PriceTable.from_config(config)
        self._store = store
        self._writer = StateWriter(store)
        self.leases = LeaseTable()
        self.pools: dict[str, Pool] = {}
        pools = (served or self._expand(config)).pools
        for name, strategy in strategies.build(pools).items():
            self.pools[name] = Pool(name, pools[name], strategy)
        self.queue = WaitQueue(self._clock, self._grant, self._exhausted, self._release)
        self._sweeper: asyncio.Task[None] | None = None
        self.transitions: dict[tuple[str, str, str], int] = {}  # (pool, from, to) caused by reports
        self._retired: dict[str, Pool] = {}  # pools removed by a reload, until their leases are reported

    async def _restore(self, accounts: list[Account]) -> None:
        """Register accounts with the store and take over their saved health."""
        if not accounts:
            return  # a reload that added nothing (e.g. a refreshed token file) needs no database round trip
        rows = [(a.account_id, a.pool, a.name, a.auth.redacted, a.auth.fingerprint) for a in accounts]
        saved = await self._store.load(rows)
        for account in accounts:
            if account.account_id in saved:
                account.restore(saved[account.account_id])

    async def start(self) -> None:
        """Load saved health (cooldowns, disables) and start background upkeep."""
        await self._restore([a for pool in self.pools.values() for a in pool.accounts.values()])
        now = self._clock()
        for pool in self.pools.values():
            pool.refresh_all(now)
        self._writer.start()
        if self.usage is not None:
            self.usage.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="poolgate-lease-sweeper")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        for pool in self.pools.values():
            self.queue.fail_all(pool, NoAccountAvailableError(pool.name, "selector shutting down", 1.0, "unavailable"))
        await self._writer.close()
        if self.usage is not None:
            await self.usage.close()

    # -- SelectAccount ---------------------------------------------------------------------------------------------

    def pool(self, name: str) -> Pool:
        if not name:
            raise InvalidRequestError("pool", "required: name the pool to select from")
        pool = self.pools.get(name)
        if pool is None:
            raise UnknownPoolError(name, list(self.pools))
        return pool

    def try_select(self, request: SelectionRequest, exclude: Iterable[str]) -> Grant | None:
        """A lease at once when an account is free and nobody is queued, else None (then :meth:`select` decides
        whether to wait). Synchronous, so the stream answers without a task per selection."""
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
        self._expire_leases(now)
        # FIFO: nobody overtakes a queued call for the same model scope (one for another model may go: its accounts
        # may be free while the queued call's are resting for its model).
        if not pool.waiters or not pool.waiting_for(pool.scope_of(request)):
            account = pool.choose(request, excluded, now)
            if account is not None:
                return self._grant(pool, account, request, now)
        return None

    def _checked(self, request: SelectionRequest, exclude: Iterable[str]) -> tuple[Pool, frozenset[str]]:
        pool = self.pool(request.pool)
        excluded = exclude if isinstance(exclude, frozenset) else frozenset(exclude)
        if len(excluded) > MAX_EXCLUDED:
            raise InvalidRequestError("exclude_account_ids", f"at most {MAX_EXCLUDED} ids, got {len(excluded)}")
        if request.estimated_input_tokens is not None and request.estimated_input_tokens < 0:
            raise InvalidRequestError("estimated_input_tokens", "must not be negative")
        return pool, excluded

    def _grant(self, pool: Pool, account: Account, request: SelectionRequest, now: float) -> Grant:
        scope = pool.scope_of(request)
        probe_id = account.acquire(now, request.light, scope)
        if account.auth.expires_at and self.on_refresh_due is not None and account.auth.refresh_due(now):
            self.on_refresh_due(account)  # starts a background refresh; the grant never waits for it
        scope_epoch, scope_probe = account.rests.probe(scope, now)
        lease = self.leases.open(account, request.model, now, pool.config.lease_ttl, probe_id, request.light,
                                 scope, scope_epoch, scope_probe)
        pool.refresh(account, now)
        return Grant(lease, pool)

    def _exhausted(self, pool: Pool, excluded: frozenset[str], now: float, scope: str = "") -> NoAccountAvailableError:
        retry_after, cause, summary = pool.shortage(excluded, now, scope)
        return NoAccountAvailableError(pool.name, summary, retry_after, cause)

    # -- ReportOutcome ---------------------------------------------------------------------------------------------

    async def report(self, report: OutcomeReport) -> ReportResult:
        """Apply a report (:meth:`record`) and, for a failure, wait until its health change is durable."""
        result, durable = self.record(report)
        if durable is not None:
            try:
                await asyncio.shield(durable)
            except Exception as exc:
                return ReportResult(True, f"recorded, but saving the account's state failed: {exc}", result.state)
        return result

    def record(self, report: OutcomeReport) -> tuple[ReportResult, asyncio.Future[None] | None]:
        """Apply a report to the accounts in memory at once, so that every selection decided after this call sees
        it; returns the result and, for a failure whose change must be durable before it is acknowledged, the
        database write to wait for (successes never wait on the database)."""
        self._check(report)
        now = self._clock()
        self._expire_leases(now)
        if report.early:
            return self._answered(report, now), None
        lease = self.leases.close(report.lease_id, "already reported")
        if lease is None:
            return self._not_recorded(report.lease_id), None
        account = lease.account
        pool = self._pool_of(account)
        account.release(lease.probe_id, lease.light)
        if lease.scope_probe:
            account.rests.returned(lease.scope, lease.scope_epoch)
        before = account.state(now)[0]
        renew = None
        if report.outcome is Outcome.AUTH_FAILED and self.on_credential_rejected is not None:
            renew = partial(self.on_credential_rejected, account)
        # A lease whose 2xx answer was reported early has vouched for the account already: not a second step.
        epoch = NO_EPOCH if lease.answered and report.outcome is Outcome.SUCCESS else lease.epoch
        change = account.apply(report, epoch, lease.granted_at, now, pool.config, self._rng, renew, pool.rules,
                               lease.scope, lease.scope_epoch, lease.model)
        if self.usage is not None:
            self.usage.record(UsageRecord(
                now, account.pool, account.account_id, account.name, lease.model, report.outcome.value,
                report.http_status, report.latency_ms, report.time_to_first_token_ms, report.input_tokens,
                report.output_tokens, self._prices.cost(lease.model, report.input_tokens, report.output_tokens),
            ))
        state, reason = self._changed(pool, account, before, now)
        durable: asyncio.Future[None] | None = None
        if not change.is_empty:
            durable = self._writer.submit(change)
            if report.outcome is Outcome.SUCCESS:
                durable.add_done_callback(_consume)  # the hot path never waits on the database
                durable = None
        return ReportResult(True, reason or "recorded", state), durable

    def _answered(self, report: OutcomeReport, now: float) -> ReportResult:
        """An early report: the upstream answered a lease still held (its headers arrived)."""
        if report.outcome is not Outcome.SUCCESS:
            raise InvalidRequestError("outcome", "an early report carries OUTCOME_SUCCESS (the upstream answered 2xx);"
                                                 " report a failure as the final report, with early unset")
        lease = self.leases.get(report.lease_id)
        if lease is None:
            return self._not_recorded(report.lease_id)
        account = lease.account
        before = account.state(now)[0]
        change = account.answered(report, NO_EPOCH if lease.answered else lease.epoch, now, lease.scope,
                                  NO_EPOCH if lease.answered else lease.scope_epoch, lease.model)
        lease.answered = True
        state, reason = self._changed(self._pool_of(account), account, before, now)
        if not change.is_empty:
            self._writer.submit(change).add_done_callback(_consume)
        return ReportResult(True, reason or "recorded", state)

    def _not_recorded(self, lease_id: str) -> ReportResult:
        why = self.leases.why_closed(lease_id) or "unknown lease (never issued, or forgotten)"
        return ReportResult(False, f"not recorded: {why}")

    def _changed(self, pool: Pool, account: Account, before: AccountState, now: float) -> tuple[AccountState, str]:
        """Re-derive the account's availability after a report, serve waiting calls, count a state transition."""
        pool.refresh(account, now)
        self.queue.serve(pool)
        state, reason = account.state(now)
        if state is not before:
            key = (account.pool, before.value, state.value)
            self.transitions[key] = self.transitions.get(key, 0) + 1
        return state, reason

    @staticmethod
    def _check(report: OutcomeReport) -> None:
        if not report.lease_id:
            raise InvalidRequestError("lease_id", "required: pass the lease_id SelectAccount returned")
        for name in ("latency_ms", "time_to_first_token_ms", "input_tokens", "output_tokens", "retry_after_ms"):
            value = getattr(report, name)
            if value < 0:
                raise InvalidRequestError(name, "must not be negative")
            if value > MAX_REPORTED:
                raise InvalidRequestError(name, f"must be at most {MAX_REPORTED:,}, got {value:,}")
        if not 0 <= report.http_status <= 999:
            raise InvalidRequestError("http_status", f"must be 0 or an HTTP status, got {report.http_status}")

    # -- upkeep ----------------------------------------------------------------------------------------------------

    def _pool_of(self, account: Account) -> Pool:
        pool = self.pools.get(account.pool)
        if pool is None or not pool.is_member(account):
            pool = self._retired.get(account.pool, pool)
        assert pool is not None, account.account_id
        return pool

    def _release(self, lease: Lease, why: str) -> None:
        if self.leases.close(lease.lease_id, why) is None:
            return
        self._released(lease, self._clock())

    def _released(self, lease: Lease, now: float) -> None:
        pool = self._pool_of(lease.account)
        lease.account.release(lease.probe_id, lease.light)
        if lease.scope_probe:
            lease.account.rests.returned(lease.scope, lease.scope_epoch)
        pool.refresh(lease.account, now)
        self.queue.serve(pool)

    def _expire_leases(self, now: float) -> None:
        for lease in self.leases.expire(now):
            log.info("lease on %s expired unreported after %.0f s; released",
                     lease.account.account_id, now - lease.granted_at)
            self._released(lease, now)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = self._clock()
            self._expire_leases(now)
            for pool in self.pools.values():
                pool.process_due(now)
                self.queue.serve(pool)

    def persist(self, change: StateChange) -> asyncio.Future[None]:
        return self._writer.submit(change)

    def account_changed(self, account: Account) -> None:
        """Re-check an account changed from outside (a refreshed or rejected credential) and serve waiting calls."""
        pool = self.pools.get(account.pool)
        if pool is None or not pool.is_member(account):
            return  # removed meanwhile: draining
        pool.refresh(account, self._clock())
        self.queue.serve(pool)

    # -- replicas sharing one database -----------------------------------------------------------------------------

    @property
    def state_lock(self) -> asyncio.Lock:
        """Held while this selector writes health changes; read other replicas' changes under it."""
        return self._writer.lock

    def apply_external(self, states: Iterable[PersistedState]) -> set[str]:
        """Take over health that other replicas wrote to the shared database (cooldowns, circuits, disables).

        Accounts with changes of this selector not yet written are skipped and returned: their state in memory is
        ahead of the rows read. Unknown accounts (another config, or removed) are ignored.
        """
        pending = self._writer.pending_ids()
        skipped: set[str] = set()
        now = self._clock()
        changed: dict[str, Pool] = {}
        for saved in states:
            if saved.account_id in pending:
                skipped.add(saved.account_id)
                continue
            pool = self.pools.get(saved.account_id.split("/", 1)[0])
            account = pool.accounts.get(saved.account_id) if pool is not None else None
            if pool is None or account is None:
                continue
            if account.take_external(saved, now):
                pool.refresh(account, now)
                changed[pool.name] = pool
        for pool in changed.values():
            self.queue.serve(pool)
        return skipped

    # -- reload ----------------------------------------------------------------------------------------------------

    async def reload(self, config: Config | None = None) -> ReloadSummary:
        """Switch to ``config`` without a restart (None: the current one again, after its credential sources'
        accounts changed). Strategies and accounts are built first, so a bad config changes nothing: ConfigError
        says what is wrong."""
        async with self._reload_lock:
            raw = self.config if config is None else config
            return await self._reload(raw, self._expand(raw))

    async def _reload(self, raw: Config, config: Config) -> ReloadSummary:
        def unchanged(name: str, pool_config: PoolConfig) -> Strategy | None:
            current = self.pools.get(name)
            if current is not None and (current.config.strategy, current.config.strategy_options) == (
                    pool_config.strategy, pool_config.strategy_options):
                return current.strategy
            return None

        strategies = self._strategies.build(config.pools, reuse=unchanged)
        now = self._clock()
        summary = ReloadSummary()
        new_accounts: list[Account] = []
        for name, pool_config in config.pools.items():
            pool = self.pools.get(name)
            if pool is None:
                retired = self._retired.pop(name, None)
                if retired is not None:
                    pool = retired
                    added, removed = pool.reconfigure(pool_config, strategies[name])
                else:
                    pool = Pool(name, pool_config, strategies[name])
                    added, removed = list(pool.accounts.values()), []
                self.pools[name] = pool
                summary.pools_added.append(name)
            else:
                added, removed = pool.reconfigure(pool_config, strategies[name])
            new_accounts += added
            summary.accounts_added += [a.account_id for a in added]
            summary.accounts_removed += [a.account_id for a in removed]
        for name in [n for n in self.pools if n not in config.pools]:
            pool = self.pools.pop(name)
            self._retired[name] = pool
            summary.pools_removed.append(name)
            self.queue.fail_all(pool, UnknownPoolError(name, list(config.pools)))
        # Kept accounts keep their health: available again at once, so that selections made during the database
        # round trip below do not find pools with nothing available. New accounts wait for their saved health.
        new = set(new_accounts)
        for pool in self.pools.values():
            for account in pool.accounts.values():
                if account not in new:
                    pool.refresh(account, now)
            self.queue.serve(pool)
        await self._restore(new_accounts)
        for account in new_accounts:  # the kept ones were refreshed above
            self.pools[account.pool].refresh(account, now)
        for pool in self.pools.values():
            self.queue.serve(pool)
        self.config = raw
        self._prices = PriceTable.from_config(config)
        return summary

    # -- ListAccounts ----------------------------------------------------------------------------------------------

    def snapshots(self, pool: str = "") -> list[PoolSnapshot]:
        now = self._clock()
        self._expire_leases(now)
        pools = [self.pool(pool)] if pool else list(self.pools.values())
        return [p.snapshot(now) for p in pools]

    # -- operator actions ------------------------------------------------------------------------------------------

    def account(self, pool: str, account: str) -> Account:
        """An account by pool and name (or id); raises UnknownPoolError / UnknownAccountError."""
        found = self.pool(pool).accounts.get(account if "/" in account else f"{pool}/{account}")
        if found is None:
            raise UnknownAccountError(pool, account, [a.name for a in self.pool(pool).accounts.values()])
        return found

    async def enable(self, pool: str, account: str) -> Account:
        target = self.account(pool, account)
        await self._operator_change(target, target.enable())
        return target

    async def disable(self, pool: str, account: str, reason: str) -> Account:
        target = self.account(pool, account)
        await self._operator_change(target, target.disable(reason.strip() or "disabled by an operator"))
        return target

    async def reset(self, pool: str, account: str) -> Account:
        target = self.account(pool, account)
        await self._operator_change(target, target.reset())
        return target

    async def _operator_change(self, account: Account, change: StateChange) -> None:
        pool = self._pool_of(account)
        pool.refresh(account, self._clock())
        self.queue.serve(pool)
        await asyncio.shield(self._writer.submit(change))

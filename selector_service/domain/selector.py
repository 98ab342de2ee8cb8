"""The selector's domain facade: one object the API calls, made of the parts that do the work.

- :class:`~.registry.PoolRegistry` the pools served (and those a reload removed, while their leases drain),
- :class:`~.leasing.Leasing` hands out leases and queues calls when nothing is free,
- :class:`~.reporting.Reporter` applies outcomes,
- :class:`~.reloading.Reloader` switches to a new config,
- :class:`~.clients.ClientBook` enforces the limits and budgets of the clients selections are made for,
- :class:`~.writer.StateWriter` writes health changes (failure reports wait until their change is durable, so an
  acknowledged 429 survives a crash); selection and success reports run in memory only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from poolgate.config import Config
from selector_service.domain.account import Account
from selector_service.domain.clients import ClientBook, ClientLimits, SpendStore
from selector_service.domain.errors import NoAccountAvailableError
from selector_service.domain.leases import Grant, LeaseTable
from selector_service.domain.leasing import CredentialHooks, Leasing
from selector_service.domain.outcomes import OutcomeReport, ReportResult
from selector_service.domain.pool import Pool, PoolSnapshot
from selector_service.domain.queueing import WaitQueue
from selector_service.domain.registry import PoolRegistry
from selector_service.domain.reloading import Reloader, ReloadSummary, restore
from selector_service.domain.reporting import Reporter
from selector_service.domain.state import PersistedState, StateChange
from selector_service.domain.usage import PriceTable, UsageRecorder
from selector_service.domain.writer import StateStore, StateWriter
from selector_service.plugin.manager import StrategyRegistry
from selector_service.plugin.types import SelectionRequest

SWEEP_INTERVAL = 1.0
log = logging.getLogger("poolgate.selector")

__all__ = ["ReloadSummary", "SelectorCore"]


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
        self.on_reload: list[Callable[[Config], None]] = []
        """Called with the config served after each reload (the gRPC layer's topology feed listens here)."""
        self._clock = clock
        self.usage = usage
        self._store = store
        self._writer = StateWriter(store)
        pools = (served or self._expand(config)).pools
        self.pools: dict[str, Pool] = {
            name: Pool(name, pools[name], strategy) for name, strategy in strategies.build(pools).items()}
        self._registry = PoolRegistry(self.pools)
        self._hooks = CredentialHooks()
        self._leasing = Leasing(self._registry, clock, self._hooks)
        self.clients = ClientBook(store if isinstance(store, SpendStore) else None, clock)
        self._reporter = Reporter(self._registry, self._leasing, self._writer, clock, rng or random.Random(),
                                  self._hooks, usage, PriceTable.from_config(config), self.clients)
        self._reloader = Reloader(self._registry, strategies, self._leasing, store, clock)
        self._sweeper: asyncio.Task[None] | None = None

    @property
    def on_refresh_due(self) -> Callable[[Account], None] | None:
        """Called (without waiting) when a leased account's credential is within its refresh margin."""
        return self._hooks.on_refresh_due

    @on_refresh_due.setter
    def on_refresh_due(self, hook: Callable[[Account], None] | None) -> None:
        self._hooks.on_refresh_due = hook

    @property
    def on_credential_rejected(self) -> Callable[[Account], bool] | None:
        """Called (without waiting) when the upstream rejected an account's credential; True when a refresh of it
        has started, so the account waits for the new credential instead of being disabled."""
        return self._hooks.on_credential_rejected

    @on_credential_rejected.setter
    def on_credential_rejected(self, hook: Callable[[Account], bool] | None) -> None:
        self._hooks.on_credential_rejected = hook

    @property
    def leases(self) -> LeaseTable:
        return self._leasing.leases

    @property
    def queue(self) -> WaitQueue:
        return self._leasing.queue

    @property
    def transitions(self) -> dict[tuple[str, str, str], int]:
        """(pool, from, to) state transitions caused by reports."""
        return self._reporter.transitions

    async def start(self) -> None:
        """Load saved health (cooldowns, disables) and start background upkeep."""
        await restore(self._store, [a for pool in self.pools.values() for a in pool.accounts.values()])
        now = self._clock()
        for pool in self.pools.values():
            pool.refresh_all(now)
        await self.clients.sync()  # clients' spend so far today and this month
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
        try:
            await self.clients.sync()
        except Exception as exc:
            log.error("could not save the clients' latest spend: %s", exc)
        if self.usage is not None:
            await self.usage.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            now = self._clock()
            self._leasing.expire(now)
            self.clients.forget_idle(now)
            for pool in self.pools.values():
                pool.process_due(now)
                self.queue.serve(pool)

    # -- SelectAccount and ReportOutcome ---------------------------------------------------------------------------

    def pool(self, name: str) -> Pool:
        return self._registry.pool(name)

    def try_select(
        self, request: SelectionRequest, exclude: Iterable[str], client: ClientLimits | None = None
    ) -> Grant | None:
        """A lease at once when an account is free and nobody is queued, else None (then :meth:`select` decides
        whether to wait). Synchronous, so the stream answers without a task per selection. ``client``: whom the
        selection is for; ClientLimitError when it is over a limit or budget."""
        if client is None:
            return self._leasing.try_select(request, exclude)
        self.clients.admit(client, self._clock())
        grant = self._leasing.try_select(request, exclude)
        if grant is not None:
            self._for_client(grant, client)
        return grant

    # select and report hand back their part's coroutine itself: awaiting it here would add a coroutine per call.

    def select(
        self, request: SelectionRequest, exclude: Iterable[str], timeout: float | None,
        client: ClientLimits | None = None,
    ) -> Coroutine[Any, Any, Grant]:
        """Lease an account, waiting (FIFO) up to ``timeout`` seconds (the pool's queue_timeout when None), for
        ``client`` when given (see :meth:`try_select`)."""
        if client is None:
            return self._leasing.select(request, exclude, timeout)
        return self._select_for(request, exclude, timeout, client)

    async def _select_for(
        self, request: SelectionRequest, exclude: Iterable[str], timeout: float | None, client: ClientLimits
    ) -> Grant:
        admitted = self._clock()
        self.clients.admit(client, admitted)
        self.clients.leased(client, admitted)  # holds its place in the client's limit while it waits
        try:
            grant = await self._leasing.select(request, exclude, timeout)
        except BaseException:
            self.clients.not_leased(client, admitted)
            raise
        grant.lease.client = client
        return grant

    def _for_client(self, grant: Grant, client: ClientLimits) -> Grant:
        grant.lease.client = client
        self.clients.leased(client, self._clock())
        return grant

    def report(self, report: OutcomeReport) -> Coroutine[Any, Any, ReportResult]:
        """Apply a report and, for a failure, wait until its health change is durable."""
        return self._reporter.report(report)

    def record(self, report: OutcomeReport) -> tuple[ReportResult, asyncio.Future[None] | None]:
        """Apply a report in memory at once; returns the result and, for a failure, the database write to wait for
        before acknowledging it (see :meth:`.Reporter.record`)."""
        return self._reporter.record(report)

    # -- health changed from outside -------------------------------------------------------------------------------

    def persist(self, change: StateChange) -> asyncio.Future[None]:
        return self._writer.submit(change)

    def account_changed(self, account: Account) -> None:
        """Re-check an account changed from outside (a refreshed or rejected credential) and serve waiting calls."""
        pool = self.pools.get(account.pool)
        if pool is None or not pool.is_member(account):
            return  # removed meanwhile: draining
        self._leasing.serve(pool, account)

    @property
    def state_lock(self) -> asyncio.Lock:
        """Held while this selector writes health changes; read other replicas' changes under it."""
        return self._writer.lock

    def apply_external(self, states: Iterable[PersistedState]) -> set[str]:
        """Take over health that other replicas wrote to the shared database (cooldowns, circuits, disables).

        Accounts with changes of this selector not yet written are skipped and returned: their state in memory is
        ahead of the rows read. Unknown accounts (another config, or removed) are ignored.
        """
        skipped, changed = self._registry.take_external(states, self._writer.pending_ids(), self._clock())
        for pool in changed:
            self.queue.serve(pool)
        return skipped

    # -- reload ----------------------------------------------------------------------------------------------------

    async def reload(self, config: Config | None = None) -> ReloadSummary:
        """Switch to ``config`` without a restart (None: the current one again, after its credential sources'
        accounts changed). Strategies and accounts are built first, so a bad config changes nothing: ConfigError
        says what is wrong."""
        async with self._reload_lock:
            raw = self.config if config is None else config
            served = self._expand(raw)
            summary = await self._reloader.switch(served)
            self.config = raw
            self._reporter.prices = PriceTable.from_config(served)
            for listener in self.on_reload:
                listener(raw)
            return summary

    # -- ListAccounts and operator actions -------------------------------------------------------------------------

    def snapshots(self, pool: str = "") -> list[PoolSnapshot]:
        now = self._clock()
        self._leasing.expire(now)
        pools = [self.pool(pool)] if pool else list(self.pools.values())
        return [p.snapshot(now) for p in pools]

    def account(self, pool: str, account: str) -> Account:
        """An account by pool and name (or id); raises UnknownPoolError / UnknownAccountError."""
        return self._registry.account(pool, account)

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
        self._leasing.serve(self._registry.pool_of(account), account)
        await asyncio.shield(self._writer.submit(change))

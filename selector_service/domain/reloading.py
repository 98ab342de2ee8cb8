"""Switching the pools to a new config without a restart: kept accounts keep their health, load and leases; new
ones take over their saved health before they serve; removed ones drain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from poolgate.config import Config, PoolConfig
from selector_service.domain.account import Account
from selector_service.domain.errors import UnknownPoolError
from selector_service.domain.leasing import Leasing
from selector_service.domain.pool import Pool
from selector_service.domain.registry import PoolRegistry
from selector_service.domain.writer import StateStore
from selector_service.plugin.manager import StrategyRegistry
from selector_service.plugin.types import Strategy


@dataclass(slots=True)
class ReloadSummary:
    """What a reload changed (account ids)."""

    pools_added: list[str] = field(default_factory=list)
    pools_removed: list[str] = field(default_factory=list)
    accounts_added: list[str] = field(default_factory=list)
    accounts_removed: list[str] = field(default_factory=list)


async def restore(store: StateStore, accounts: list[Account]) -> None:
    """Register accounts with the store and take over their saved health."""
    if not accounts:
        return  # a reload that added nothing (e.g. a refreshed token file) needs no database round trip
    rows = [(a.account_id, a.pool, a.name, a.auth.redacted, a.auth.fingerprint) for a in accounts]
    saved = await store.load(rows)
    for account in accounts:
        if account.account_id in saved:
            account.restore(saved[account.account_id])


class Reloader:
    """Applies a new (expanded) config to the registry's pools."""

    def __init__(self, registry: PoolRegistry, strategies: StrategyRegistry, leasing: Leasing, store: StateStore,
                 clock: Callable[[], float]) -> None:
        self._registry = registry
        self._strategies = strategies
        self._leasing = leasing
        self._store = store
        self._clock = clock

    async def switch(self, config: Config) -> ReloadSummary:
        """Serve ``config``'s pools. Strategies and accounts are built first, so a bad config changes nothing:
        ConfigError says what is wrong."""
        pools, retired = self._registry.pools, self._registry.retired

        def unchanged(name: str, pool_config: PoolConfig) -> Strategy | None:
            current = pools.get(name)
            if current is not None and (current.config.strategy, current.config.strategy_options) == (
                    pool_config.strategy, pool_config.strategy_options):
                return current.strategy
            return None

        strategies = self._strategies.build(config.pools, reuse=unchanged)
        now = self._clock()
        summary = ReloadSummary()
        new_accounts: list[Account] = []
        for name, pool_config in config.pools.items():
            pool = pools.get(name)
            if pool is None:
                pool = retired.pop(name, None)
                if pool is not None:
                    added, removed = pool.reconfigure(pool_config, strategies[name])
                else:
                    pool = Pool(name, pool_config, strategies[name])
                    added, removed = list(pool.accounts.values()), []
                pools[name] = pool
                summary.pools_added.append(name)
            else:
                added, removed = pool.reconfigure(pool_config, strategies[name])
            new_accounts += added
            summary.accounts_added += [a.account_id for a in added]
            summary.accounts_removed += [a.account_id for a in removed]
        queue = self._leasing.queue
        for name in [n for n in pools if n not in config.pools]:
            pool = pools.pop(name)
            retired[name] = pool
            summary.pools_removed.append(name)
            queue.fail_all(pool, UnknownPoolError(name, list(config.pools)))
        # Kept accounts keep their health: available again at once, so that selections made during the database
        # round trip below do not find pools with nothing available. New accounts wait for their saved health.
        new = set(new_accounts)
        for pool in pools.values():
            for account in pool.accounts.values():
                if account not in new:
                    pool.refresh(account, now)
            queue.serve(pool)
        await restore(self._store, new_accounts)
        for account in new_accounts:  # the kept ones were refreshed above
            pools[account.pool].refresh(account, now)
        for pool in pools.values():
            queue.serve(pool)
        return summary

"""Credential sources at run time: the accounts they provide, kept current, and expiring credentials kept fresh.

:meth:`CredentialManager.expand` turns the config as written into the one served (every pool's accounts from every
source); the selector calls it at start and on each reload. :meth:`CredentialManager.start` then watches the
sources (a source's change re-applies the config through ``SelectorCore.reload``, so unchanged accounts keep their
state and removed ones drain) and refreshes credentials that enter their refresh margin, in the background and when
a lease is granted, one refresh per account at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from poolgate.config import AccountConfig, Config, ConfigError
from selector_service.credentials.refresh import RETRY_BASE, RETRY_MAX, Refresher
from selector_service.credentials.source import (
    CredentialSource,
    CredentialSourceError,
    RefreshedCredential,
    RefreshingSource,
    WatchingSource,
)
from selector_service.domain.account import Account
from selector_service.domain.state import StateChange

if TYPE_CHECKING:
    from selector_service.domain.selector import SelectorCore

log = logging.getLogger("poolgate.selector.credentials")

REJECTED = "credential refresh rejected"
"""How the disable reason of an account whose refresh was rejected begins."""
UPKEEP_INTERVAL = 1.0


class CredentialManager:
    """Applies the credential sources' accounts to a selector and keeps expiring credentials fresh."""

    def __init__(
        self,
        sources: Mapping[str, CredentialSource],
        clock: Callable[[], float] = time.time,
        interval: float = UPKEEP_INTERVAL,
        retry_base: float = RETRY_BASE,
        retry_max: float = RETRY_MAX,
        rng: random.Random | None = None,
    ) -> None:
        self.sources = dict(sources)
        self._clock = clock
        self._interval = interval
        self._origins: dict[str, str] = {}  # account id -> the source that provided it
        self._known_pools: set[str] = set()
        self._lenient = False
        self._core: SelectorCore | None = None
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.refresher = Refresher(self._refreshed, self._rejected, self._settled, clock, retry_base, retry_max, rng)

    # -- the accounts ----------------------------------------------------------------------------------------------

    def expand(self, config: Config) -> Config:
        """``config`` with every pool's accounts from every source; ConfigError lists every problem."""
        errors: list[str] = []
        origins: dict[str, str] = {}
        pools = {}
        for pool_name, pool in config.pools.items():
            for wanted in pool.credential_sources:
                if wanted not in self.sources:
                    errors.append(f"pools.{pool_name}.credential_sources.{wanted}: no installed credential source is "
                                  f"named {wanted!r} (installed: {', '.join(sorted(self.sources)) or 'none'}); "
                                  "install its plugin, or remove the entry")
            produced: list[tuple[str, AccountConfig]] = []
            failed = False
            for source_name, source in self.sources.items():
                try:
                    produced += [(source_name, account) for account in source.accounts(pool_name, pool)]
                except CredentialSourceError as exc:
                    errors += exc.errors
                    failed = True
                except Exception as exc:  # a broken plugin must not be swallowed, nor crash the selector later
                    errors.append(f"pools.{pool_name}: credential source {source_name!r} failed: "
                                  f"{type(exc).__name__}: {exc}")
                    failed = True
            position = {account.name: i for i, account in enumerate(pool.accounts)}
            produced.sort(key=lambda item: position.get(item[1].name, len(position)))  # config order first
            accounts: list[AccountConfig] = []
            seen: dict[str, str] = {}
            for source_name, account in produced:
                if account.name in seen:
                    problem = (f"pools.{pool_name}: two accounts are named {account.name!r} (from the "
                               f"{seen[account.name]} and {source_name} credential sources); rename one")
                    if self._lenient:
                        log.warning("%s; the second is left out", problem)
                    else:
                        errors.append(problem)
                    continue
                seen[account.name] = source_name
                accounts.append(account)
                origins[f"{pool_name}/{account.name}"] = source_name
            for index, account in enumerate(pool.accounts):
                if account.name not in seen and not failed:
                    errors.append(f"pools.{pool_name}.accounts[{index}]: no installed credential source provides it; "
                                  "reinstall poolgate (pip install) so that its built-in plugins are registered")
            if not accounts and pool_name not in self._known_pools and not failed:
                errors.append(f"pools.{pool_name}: no accounts: its credential sources provided none")
            pools[pool_name] = pool.model_copy(update={"accounts": accounts})
        if errors:
            raise ConfigError("config", errors)
        self._origins = origins
        self._known_pools = set(config.pools)
        return config.model_copy(update={"pools": pools})

    # -- running ---------------------------------------------------------------------------------------------------

    async def start(self, core: SelectorCore) -> None:
        """Watch the sources and refresh credentials for ``core`` (already started with :meth:`expand`)."""
        self._core = core
        core.on_refresh_due = self._refresh_due
        core.on_credential_rejected = self._renew_rejected
        for source in self.sources.values():
            if isinstance(source, WatchingSource):
                await source.start(self._dirty.set)
        self._task = asyncio.create_task(self._run(), name="poolgate-credentials")

    async def stop(self) -> None:
        if self._core is not None:
            self._core.on_refresh_due = None
            self._core.on_credential_rejected = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.refresher.close()
        for source in self.sources.values():
            if isinstance(source, WatchingSource):
                await source.stop()

    async def _run(self) -> None:
        while True:
            self._refresh_entering_margin()
            try:
                async with asyncio.timeout(self._interval):
                    await self._dirty.wait()
            except TimeoutError:
                continue
            self._dirty.clear()
            await self.apply_changes()

    async def apply_changes(self) -> None:
        """Re-apply the config after a source's accounts changed (added, removed or changed files)."""
        core = self._core
        if core is None:
            return
        rejected = {a.account_id: a.credential.value for a in self._accounts()
                    if a.disabled and a.disabled_reason.startswith(REJECTED)}
        self._lenient = True
        try:
            summary = await core.reload()
        except ConfigError as exc:
            log.error("credential sources changed, but the change cannot be applied: %s", "; ".join(exc.errors))
            return
        except Exception:
            log.exception("credential sources changed, but applying the change failed")
            return
        finally:
            self._lenient = False
        if summary.accounts_added or summary.accounts_removed:
            log.info("credential sources changed: accounts added: %s; removed (draining): %s",
                     ", ".join(summary.accounts_added) or "none", ", ".join(summary.accounts_removed) or "none")
        for account in self._accounts():
            # A new credential (someone logged in again) brings back an account whose refresh was rejected.
            if account.account_id in rejected and account.disabled and rejected[account.account_id] != (
                    account.credential.value):
                log.info("account %s has a new credential; enabled again", account.account_id)
                await self._save(account, account.enable())
        self._refresh_entering_margin()

    def _accounts(self) -> list[Account]:
        core = self._core
        return [a for pool in core.pools.values() for a in pool.accounts.values()] if core else []

    # -- refreshing ------------------------------------------------------------------------------------------------

    def _refresh_entering_margin(self) -> None:
        now = self._clock()
        for account in self._accounts():
            if account.auth.refresh_due(now):
                self._refresh_due(account)

    def _refresh_due(self, account: Account) -> None:
        """Start a refresh of ``account`` if its source can renew it (called on the selection path: no waiting)."""
        if not account.disabled and not self.refresher.in_flight(account.account_id):
            self._refresh(account)

    def _renew_rejected(self, account: Account) -> bool:
        """The upstream rejected ``account``'s credential: refresh it if its source can (a refresh already running
        counts). False when it cannot be renewed; the account is then disabled."""
        return self.refresher.in_flight(account.account_id) or self._refresh(account)

    def _refresh(self, account: Account) -> bool:
        """Ask the refresher to renew ``account`` (it may hold back while a failed refresh waits out its backoff:
        the upkeep loop asks again); False when its source cannot renew it."""
        core = self._core
        source = self.sources.get(self._origins.get(account.account_id, ""))
        pool = core.pools.get(account.pool) if core is not None else None
        if pool is None or not pool.is_member(account) or not isinstance(source, RefreshingSource):
            return False
        config = pool.config
        if not source.refreshable(account.pool, config, account.name):
            return False
        self.refresher.request(account, lambda: source.refresh(account.pool, config, account.name))
        return True

    def _refreshed(self, account: Account, credential: RefreshedCredential) -> None:
        account.set_credential(credential.key, credential.expires_at, self._clock())
        left = credential.expires_at - self._clock() if credential.expires_at else 0.0
        log.info("credential of %s refreshed (%s)", account.account_id,
                 f"valid for {left / 60:.0f} min" if left else "no expiry given")

    async def _rejected(self, account: Account, reason: str) -> None:
        if account.disabled:
            return
        log.error("account %s disabled: %s", account.account_id, reason)
        await self._save(account, account.disable(f"{REJECTED}: {reason}"))

    def _settled(self, account: Account) -> None:
        if self._core is not None:
            self._core.account_changed(account)

    async def _save(self, account: Account, change: StateChange) -> None:
        core = self._core
        if core is None:
            return
        core.account_changed(account)
        with contextlib.suppress(Exception):  # the writer logs a failed save itself
            await asyncio.shield(core.persist(change))

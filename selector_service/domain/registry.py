"""The pools a selector serves, and those a reload removed, kept until their leases are reported."""

from __future__ import annotations

from collections.abc import Iterable

from selector_service.domain.account import Account
from selector_service.domain.errors import InvalidRequestError, UnknownAccountError, UnknownPoolError
from selector_service.domain.pool import Pool
from selector_service.domain.state import PersistedState


class PoolRegistry:
    """Pools by name; an account's pool even after a reload removed it (its leases still come back)."""

    def __init__(self, pools: dict[str, Pool]) -> None:
        self.pools = pools
        """The pools served (changed in place by a reload)."""
        self.retired: dict[str, Pool] = {}
        """Pools removed by a reload, until their leases are reported."""

    def pool(self, name: str) -> Pool:
        if not name:
            raise InvalidRequestError("pool", "required: name the pool to select from")
        pool = self.pools.get(name)
        if pool is None:
            raise UnknownPoolError(name, list(self.pools))
        return pool

    def pool_of(self, account: Account) -> Pool:
        pool = self.pools.get(account.pool)
        if pool is None or not pool.is_member(account):
            pool = self.retired.get(account.pool, pool)
        assert pool is not None, account.account_id
        return pool

    def account(self, pool: str, account: str) -> Account:
        """An account by pool and name (or id); raises UnknownPoolError / UnknownAccountError."""
        found = self.pool(pool).accounts.get(account if "/" in account else f"{pool}/{account}")
        if found is None:
            raise UnknownAccountError(pool, account, [a.name for a in self.pool(pool).accounts.values()])
        return found

    def take_external(self, states: Iterable[PersistedState], pending: set[str], now: float) -> tuple[set[str],
                                                                                                     list[Pool]]:
        """Take over health other replicas wrote (see ``SelectorCore.apply_external``): returns the accounts skipped
        because changes of ours are still pending for them, and the pools whose accounts changed."""
        skipped: set[str] = set()
        changed: dict[str, Pool] = {}
        for saved in states:
            if saved.account_id in pending:
                skipped.add(saved.account_id)
                continue
            pool = self.pools.get(saved.account_id.split("/", 1)[0])
            account = pool.accounts.get(saved.account_id) if pool is not None else None
            if pool is None or account is None:
                continue  # another config's account, or removed
            if account.take_external(saved, now):
                pool.refresh(account, now)
                changed[pool.name] = pool
        return skipped, list(changed.values())

"""What a credential source is: the plugin-facing contract for where accounts and their keys come from.

A source turns a pool's config into accounts (:class:`~poolgate.config.AccountConfig`). The built-in ones read a
static ``key:``, an environment variable (``key_env:``) and a directory of OAuth credential files
(``credentials_dir:``); a plugin can add others, e.g. a secrets manager configured under the pool's
``credential_sources: {name: {...}}``. Optional parts, found by duck typing:

- :class:`WatchingSource`: ``start(changed)`` / ``stop()``; call ``changed()`` whenever :meth:`accounts` would
  answer differently, and the selector re-applies the config without a restart.
- :class:`RefreshingSource`: ``refreshable`` / ``refresh`` renew an expiring credential (``expires_at``) in place,
  keeping the account's identity, health and leases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from poolgate.config import AccountConfig, PoolConfig


class CredentialSourceError(Exception):
    """A pool's accounts cannot be loaded; ``errors`` are ``path: what is wrong and what to do`` lines."""

    def __init__(self, errors: Iterable[str]) -> None:
        self.errors = list(errors)
        super().__init__("; ".join(self.errors))


class CredentialRejected(Exception):
    """The credential can no longer be renewed (e.g. the token endpoint said ``invalid_grant``).

    The account is disabled with ``str(exc)`` as the reason, which must not contain a secret.
    """


@dataclass(frozen=True, slots=True)
class RefreshedCredential:
    """A renewed credential, already stored where the source keeps it."""

    key: str = field(repr=False)
    expires_at: float
    """Unix seconds; 0 when it does not expire."""


@runtime_checkable
class CredentialSource(Protocol):
    """Provides accounts for pools. One instance serves one running selector."""

    def accounts(self, pool: str, config: PoolConfig) -> list[AccountConfig]:
        """The accounts this source provides for pool ``pool`` (``[]`` when the pool does not use it).

        Called at start and on every reload, on the event loop: keep it quick (serve from memory what a watch
        keeps current). Raise :class:`CredentialSourceError` when the pool's settings for this source cannot work;
        a start or a config reload then fails with those messages.
        """
        ...


@runtime_checkable
class WatchingSource(Protocol):
    async def start(self, changed: Callable[[], None]) -> None:
        """Start watching; call ``changed()`` (from the event loop) when :meth:`accounts` would answer differently."""
        ...

    async def stop(self) -> None: ...


@runtime_checkable
class RefreshingSource(Protocol):
    def refreshable(self, pool: str, config: PoolConfig, account: str) -> bool:
        """Whether :meth:`refresh` can renew this account's credential (cheap: no I/O)."""
        ...

    async def refresh(self, pool: str, config: PoolConfig, account: str) -> RefreshedCredential:
        """Renew the credential and store it durably before returning it.

        Raise :class:`CredentialRejected` when it can never work again; any other exception is retried with
        backoff. Never called twice at once for the same account.
        """
        ...


CredentialSourceFactory = Callable[[], CredentialSource]
"""Builds one source for a running selector."""

RegisterCredentialSource = Callable[[str, CredentialSourceFactory], None]
"""The callback a plugin's ``register_credential_sources`` hook calls, once per source: ``register(name, factory)``."""

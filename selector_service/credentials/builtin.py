"""The two simplest credential sources: keys written in the config, and keys read from environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

from poolgate.config import AccountConfig, PoolConfig
from selector_service.credentials.source import CredentialSourceError


class StaticKeySource:
    """The ``accounts:`` entries with a ``key:`` (``${VAR}`` in it is expanded when the config is read)."""

    def accounts(self, pool: str, config: PoolConfig) -> list[AccountConfig]:
        return [account for account in config.accounts if not account.key_env]


class EnvKeySource:
    """The ``accounts:`` entries with ``key_env: NAME``: the key is the variable's value when the selector starts
    (and on each reload)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ if environ is not None else os.environ

    def accounts(self, pool: str, config: PoolConfig) -> list[AccountConfig]:
        found: list[AccountConfig] = []
        errors: list[str] = []
        for index, account in enumerate(config.accounts):
            if not account.key_env:
                continue
            value = self._environ.get(account.key_env)
            if value is None or not value.strip():
                state = "not set" if value is None else "empty"
                errors.append(f"pools.{pool}.accounts[{index}].key_env: environment variable {account.key_env} is "
                              f"{state}; export it in the selector's environment, or give the key with key:")
                continue
            found.append(account.model_copy(update={"key": value.strip()}))
        if errors:
            raise CredentialSourceError(errors)
        return found

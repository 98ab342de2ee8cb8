"""The public API for poolgate plugins.

A strategy plugin is a module with a ``register_strategies`` hook::

    from selector_service.plugin import hookimpl, Candidates, SelectionRequest, AccountView

    class LowestLatency:
        def select(self, candidates: Candidates, request: SelectionRequest) -> AccountView:
            return min(candidates, key=lambda a: a.recent_latency_ms)

    @hookimpl
    def register_strategies(register):
        register("lowest_latency", lambda options: LowestLatency())

and is made known to poolgate by an entry point in its package's ``pyproject.toml``::

    [project.entry-points.poolgate]
    my_strategies = "my_package.strategies"

After ``pip install``, ``strategy: lowest_latency`` in a pool's config selects it.

The helpers the built-in strategies use are here for every plugin: ``check_keys``, ``int_option``, ``weight_option``
and ``rng_option`` validate ``strategy_options``; ``TierStates`` keeps a cursor or schedule per priority tier. Fakes
for a strategy's tests are in :mod:`selector_service.plugin.testing`.

A credential-source plugin provides accounts instead, with a ``register_credential_sources`` hook (see
``docs/credentials.md``)::

    from selector_service.plugin import AccountConfig, CredentialSourceError, hookimpl

    class VaultSource:
        def accounts(self, pool, config):
            options = config.credential_sources.get("vault")
            if options is None:
                return []
            return [AccountConfig(name=name, key=key) for name, key in read_vault(options["path"])]

    @hookimpl
    def register_credential_sources(register):
        register("vault", VaultSource)
"""

from poolgate.config import AccountConfig, PoolConfig
from selector_service.credentials.source import (
    CredentialRejected,
    CredentialSource,
    CredentialSourceError,
    CredentialSourceFactory,
    RefreshedCredential,
    RefreshingSource,
    RegisterCredentialSource,
    WatchingSource,
)
from selector_service.plugin.options import check_keys, int_option, rng_option, weight_option
from selector_service.plugin.spec import hookimpl
from selector_service.plugin.tier_state import TierStates
from selector_service.plugin.types import (
    AccountView,
    Candidates,
    RegisterStrategy,
    SelectionRequest,
    Strategy,
    StrategyFactory,
)

__all__ = [
    "AccountConfig",
    "AccountView",
    "Candidates",
    "CredentialRejected",
    "CredentialSource",
    "CredentialSourceError",
    "CredentialSourceFactory",
    "PoolConfig",
    "RefreshedCredential",
    "RefreshingSource",
    "RegisterCredentialSource",
    "RegisterStrategy",
    "SelectionRequest",
    "Strategy",
    "StrategyFactory",
    "TierStates",
    "WatchingSource",
    "check_keys",
    "hookimpl",
    "int_option",
    "rng_option",
    "weight_option",
]

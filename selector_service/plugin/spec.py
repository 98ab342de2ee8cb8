"""Hook specifications: what a poolgate plugin can provide."""

from __future__ import annotations

import pluggy

from selector_service.credentials.source import RegisterCredentialSource
from selector_service.plugin.types import RegisterStrategy

PROJECT_NAME = "poolgate"
"""The pluggy project name and the setuptools entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def register_strategies(register: RegisterStrategy) -> None:
    """Register selection strategies.

    Called once at start-up. Call ``register(name, factory)`` for each strategy the plugin provides; ``name`` is what
    a config's ``strategy:`` says, and ``factory(options)`` builds one strategy instance for one pool from that pool's
    ``strategy_options`` (raise ``ValueError`` with a clear message for bad options).

    :param register: the callback to call once per strategy.
    """


@hookspec
def register_credential_sources(register: RegisterCredentialSource) -> None:
    """Register credential sources: where pools' accounts and their keys come from.

    Called once at start-up. Call ``register(name, factory)`` for each source the plugin provides; ``factory()``
    builds one :class:`~selector_service.plugin.CredentialSource` for a running selector. Every source is asked for
    every pool's accounts; a source reads its own settings from the pool's config (a third-party one from the pool's
    ``credential_sources: {name: {...}}``) and returns ``[]`` for pools that do not use it.

    :param register: the callback to call once per source.
    """

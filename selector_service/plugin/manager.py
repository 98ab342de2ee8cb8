"""Builds the plugin set, once per process, and the strategy and credential-source registries from it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

import pluggy

from poolgate.config import ConfigError, PoolConfig
from selector_service.credentials.source import CredentialSource, CredentialSourceFactory
from selector_service.plugin import spec
from selector_service.plugin.types import Strategy, StrategyFactory

F = TypeVar("F", StrategyFactory, CredentialSourceFactory)


class PluginError(Exception):
    """A plugin could not be loaded or registered something invalid."""


class UnknownStrategyError(ValueError):
    """A config names a strategy no installed plugin provides."""

    def __init__(self, name: str, installed: Iterable[str]) -> None:
        self.name = name
        self.installed = sorted(installed)
        super().__init__(f"unknown strategy {name!r}; installed strategies: {', '.join(self.installed) or 'none'}")


@dataclass
class _Registry(Generic[F]):
    """Factories by name, each with the plugin that registered it."""

    KIND: ClassVar[str] = "factory"
    """What the factories make, for messages."""
    factories: dict[str, F] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)

    def register(self, name: str, factory: F, provider: str = "") -> None:
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise PluginError(f"plugin {provider!r} registered an invalid {self.KIND} name {name!r}")
        if name in self.factories:
            raise PluginError(
                f"{self.KIND} {name!r} is registered twice (by {self.providers[name]!r} and {provider!r}); "
                "uninstall one of the two packages"
            )
        if not callable(factory):
            raise PluginError(f"plugin {provider!r} registered {self.KIND} {name!r} with a factory that is not "
                              "callable")
        self.factories[name] = factory
        self.providers[name] = provider

    @property
    def names(self) -> list[str]:
        return sorted(self.factories)

    def collect(self, hook: Any) -> Self:
        """Ask every plugin implementing ``hook`` to register its factories here."""
        for impl in hook.get_hookimpls():
            provider: str = impl.plugin_name

            def register(name: str, factory: F, _provider: str = provider) -> None:
                self.register(name, factory, _provider)

            impl.function(register=register)
        return self


@dataclass
class StrategyRegistry(_Registry[StrategyFactory]):
    """Strategy factories by name, filled by the plugins' ``register_strategies`` hooks."""

    KIND: ClassVar[str] = "strategy"

    def create(self, name: str, options: Mapping[str, Any]) -> Strategy:
        """A new strategy instance for one pool; raises UnknownStrategyError or ValueError (bad options)."""
        factory = self.factories.get(name)
        if factory is None:
            raise UnknownStrategyError(name, self.factories)
        strategy = factory(options)
        if not isinstance(strategy, Strategy):
            raise PluginError(f"strategy {name!r} factory returned {type(strategy).__name__}, which has no select()")
        return strategy

    def build(
        self,
        pools: Mapping[str, PoolConfig],
        reuse: Callable[[str, PoolConfig], Strategy | None] = lambda _name, _pool: None,
    ) -> dict[str, Strategy]:
        """One strategy per pool (``reuse`` may hand back a pool's running one), for checks, start-up and reloads.

        Raises ConfigError naming every pool whose strategy cannot be built, and why; a factory's own bug is
        reported the same way rather than escaping."""
        strategies: dict[str, Strategy] = {}
        errors = []
        for name, pool in pools.items():
            try:
                running = reuse(name, pool)
                strategies[name] = running if running is not None else self.create(pool.strategy, pool.strategy_options)
            except UnknownStrategyError as exc:
                errors.append(f"pools.{name}.strategy: {exc}")
            except (ValueError, TypeError) as exc:
                errors.append(f"pools.{name}.strategy_options: {exc}")
            except Exception as exc:  # a third-party factory's bug: reported, not raised from a reload
                errors.append(f"pools.{name}.strategy: strategy {pool.strategy!r} failed to build: "
                              f"{type(exc).__name__}: {exc}")
        if errors:
            raise ConfigError("config", errors)
        return strategies


def build_plugin_manager(
    blocked: Iterable[str] = (),
    extra_plugins: Iterable[object] = (),
    load_entry_points: bool = True,
) -> pluggy.PluginManager:
    """The plugin manager, in a fixed order: blocked names, entry points (built-ins come this way too), extras.

    Then every implementation is checked against the specs, so a misspelt hook fails start-up instead of being
    silently ignored.
    """
    manager = pluggy.PluginManager(spec.PROJECT_NAME)
    manager.add_hookspecs(spec)
    for name in blocked:
        manager.set_blocked(name)
    if load_entry_points:
        try:
            manager.load_setuptools_entrypoints(spec.PROJECT_NAME)
        except Exception as exc:  # a broken third-party package must not be swallowed
            raise PluginError(f"loading poolgate plugins failed: {type(exc).__name__}: {exc}") from exc
    try:
        for plugin in extra_plugins:
            manager.register(plugin)
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from exc
    return manager


def collect_strategies(manager: pluggy.PluginManager) -> StrategyRegistry:
    """Ask every plugin for its strategies."""
    return StrategyRegistry().collect(manager.hook.register_strategies)


@functools.cache
def installed_plugins() -> pluggy.PluginManager:
    """Every installed plugin, loaded once per process: strategies and credential sources come from one scan of the
    entry points. A failure is not cached; the next call tries again."""
    return build_plugin_manager()


def _manager(blocked: Iterable[str], extra_plugins: Iterable[object]) -> pluggy.PluginManager:
    blocked, extra_plugins = tuple(blocked), tuple(extra_plugins)
    if blocked or extra_plugins:
        return build_plugin_manager(blocked=blocked, extra_plugins=extra_plugins)
    return installed_plugins()


def load_strategies(blocked: Iterable[str] = (), extra_plugins: Iterable[object] = ()) -> StrategyRegistry:
    """The strategies of every installed plugin (the usual way to get a registry)."""
    return collect_strategies(_manager(blocked, extra_plugins))


@dataclass
class CredentialSourceRegistry(_Registry[CredentialSourceFactory]):
    """Credential source factories by name, filled by the plugins' ``register_credential_sources`` hooks."""

    KIND: ClassVar[str] = "credential source"

    def create_all(self) -> dict[str, CredentialSource]:
        """One new instance of every source, in registration order (for one running selector)."""
        sources = {}
        for name, factory in self.factories.items():
            source = factory()
            if not isinstance(source, CredentialSource):
                raise PluginError(f"credential source {name!r} (plugin {self.providers[name]!r}) has no accounts() "
                                  "method")
            sources[name] = source
        return sources


def collect_credential_sources(manager: pluggy.PluginManager) -> CredentialSourceRegistry:
    """Ask every plugin for its credential sources."""
    return CredentialSourceRegistry().collect(manager.hook.register_credential_sources)


def load_credential_sources(
    blocked: Iterable[str] = (), extra_plugins: Iterable[object] = ()
) -> CredentialSourceRegistry:
    """The credential sources of every installed plugin."""
    return collect_credential_sources(_manager(blocked, extra_plugins))

"""Builds a plugin set (built-ins, installed packages, extras) and the strategy and credential-source registries."""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
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


BUILTIN_PLUGINS: Mapping[str, str] = MappingProxyType({
    "builtin_strategies": "poolgate_plugins.strategies",
    "builtin_credentials": "poolgate_plugins.credentials",
})
"""poolgate's own plugins: the name each is registered under (its entry point's name in poolgate's pyproject.toml)
and its module."""


def build_plugin_manager(
    blocked: Iterable[str] = (),
    extra_plugins: Iterable[object] = (),
    installed: bool = True,
) -> pluggy.PluginManager:
    """A new plugin manager, built in a fixed order: blocked names; the built-ins, by import; the ``poolgate`` entry
    points of the installed packages; ``extra_plugins``. Then every implementation is checked against the specs, so a
    misspelt hook fails start-up instead of being silently ignored.

    ``installed=False`` leaves the built-ins and the entry points out: the manager holds ``extra_plugins`` alone (for
    the tests of one plugin). Nothing keeps a manager per process: whoever needs one builds it, in a few milliseconds
    (a scan of the installed distributions), so a package installed since the last build is found by the next.
    """
    manager = pluggy.PluginManager(spec.PROJECT_NAME)
    manager.add_hookspecs(spec)
    for name in blocked:
        manager.set_blocked(name)
    try:
        if installed:
            for name, module in BUILTIN_PLUGINS.items():
                manager.register(importlib.import_module(module), name=name)
            _load_entry_points(manager)
        for plugin in extra_plugins:
            try:
                manager.register(plugin)
            except ValueError as exc:  # pluggy refuses a plugin, or a plugin's name, registered twice
                raise PluginError(f"plugin {_plugin_name(manager, plugin)!r} is registered already (or its name is "
                                  "taken); pass each plugin once: the built-ins and the installed packages are "
                                  "registered unless installed=False") from exc
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        hooks = sorted(name for name, caller in vars(manager.hook).items() if caller.has_spec())
        raise PluginError(f"plugin {_plugin_name(manager, exc.plugin)!r}: {exc}; poolgate's hooks are "
                          f"{' and '.join(hooks)}") from exc
    return manager


def _plugin_name(manager: pluggy.PluginManager, plugin: object) -> str:
    """The name a plugin is registered under (an entry point's name), else its module's or class's."""
    name = manager.get_name(plugin)
    if name is not None and name != str(id(plugin)):  # pluggy names an unnamed object by its id
        return name
    return getattr(plugin, "__name__", None) or type(plugin).__qualname__


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    """Register the installed packages' ``poolgate`` entry points, except those naming a built-in module.

    The built-ins are registered already, under their entry points' names, so pluggy skips poolgate's own entry
    points by name. It would refuse a built-in module registered a second time under another name (a second install
    of poolgate, an old fork), so such an entry point is blocked; one that takes a built-in's name for another module
    is refused rather than silently skipped.
    """
    builtin_modules = set(BUILTIN_PLUGINS.values())
    try:
        for distribution in importlib.metadata.distributions():
            for entry_point in distribution.entry_points.select(group=spec.PROJECT_NAME):
                if entry_point.module in builtin_modules:
                    if entry_point.name not in BUILTIN_PLUGINS:
                        manager.set_blocked(entry_point.name)
                elif entry_point.name in BUILTIN_PLUGINS:
                    raise PluginError(
                        f"package {distribution.name!r} declares the poolgate entry point {entry_point.name!r}, the "
                        f"name of a built-in plugin, for {entry_point.value!r}; rename its entry point or uninstall it"
                    )
        manager.load_setuptools_entrypoints(spec.PROJECT_NAME)
    except PluginError:
        raise
    except Exception as exc:  # a broken third-party package must not be swallowed
        raise PluginError(f"loading poolgate plugins failed: {type(exc).__name__}: {exc}") from exc


def collect_strategies(manager: pluggy.PluginManager) -> StrategyRegistry:
    """Ask every plugin for its strategies."""
    return StrategyRegistry().collect(manager.hook.register_strategies)


def load_strategies(blocked: Iterable[str] = (), extra_plugins: Iterable[object] = ()) -> StrategyRegistry:
    """The strategies of the built-ins, every installed plugin and ``extra_plugins`` (the usual way to get a
    registry), from a new plugin manager."""
    return collect_strategies(build_plugin_manager(blocked, extra_plugins))


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
    """The credential sources of the built-ins, every installed plugin and ``extra_plugins``, from a new plugin
    manager."""
    return collect_credential_sources(build_plugin_manager(blocked, extra_plugins))

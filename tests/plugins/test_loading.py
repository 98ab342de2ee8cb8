"""Loading plugins: entry points, duplicates, misspelt hooks, unknown names. Each test builds its own manager."""

from __future__ import annotations

import pluggy
import poolgate_plugins.strategies
import pytest

from selector_service.plugin import RegisterStrategy, Strategy, hookimpl
from selector_service.plugin.manager import (
    PluginError,
    UnknownStrategyError,
    build_plugin_manager,
    collect_strategies,
    installed_plugins,
    load_credential_sources,
    load_strategies,
)
from tests.plugins.test_options import BUILT_INS


class DuplicateRoundRobin:
    @hookimpl
    def register_strategies(self, register: RegisterStrategy) -> None:
        register("round_robin", poolgate_plugins.strategies.round_robin)


class MisspeltHook:
    @hookimpl
    def register_strategys(self, register: RegisterStrategy) -> None:
        raise AssertionError("never called")


def test_installed_plugins_provide_the_built_ins_and_the_example() -> None:
    registry = load_strategies()
    assert set(BUILT_INS) | {"lowest_latency"} <= set(registry.names)
    assert {registry.providers[name] for name in BUILT_INS} == {"builtin_strategies"}
    assert registry.providers["lowest_latency"] == "example_strategy"


def test_strategies_and_credential_sources_come_from_one_scan_of_the_entry_points(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scans = []
    real = pluggy.PluginManager.load_setuptools_entrypoints

    def counting(manager: pluggy.PluginManager, group: str, name: str | None = None) -> int:
        scans.append(group)
        return real(manager, group, name)

    monkeypatch.setattr(pluggy.PluginManager, "load_setuptools_entrypoints", counting)
    installed_plugins.cache_clear()
    try:
        strategies, sources = load_strategies(), load_credential_sources()
        assert "round_robin" in strategies.names and "files" in sources.names
        assert scans == ["poolgate"]
        load_strategies(blocked=["example_strategy"])  # a different plugin set is built on its own
        assert scans == ["poolgate", "poolgate"]
    finally:
        installed_plugins.cache_clear()


@pytest.mark.parametrize("name", BUILT_INS)
def test_every_built_in_builds_a_strategy(name: str) -> None:
    assert isinstance(load_strategies().create(name, {}), Strategy)


def test_a_duplicate_name_is_an_error() -> None:
    with pytest.raises(PluginError, match="strategy 'round_robin' is registered twice"):
        load_strategies(extra_plugins=[DuplicateRoundRobin()])


def test_a_duplicate_name_is_an_error_without_entry_points() -> None:
    manager = build_plugin_manager(
        extra_plugins=[poolgate_plugins.strategies, DuplicateRoundRobin()], load_entry_points=False
    )
    with pytest.raises(PluginError, match="registered twice"):
        collect_strategies(manager)


def test_a_misspelt_hook_fails_loading() -> None:
    with pytest.raises(PluginError, match="register_strategys"):
        build_plugin_manager(extra_plugins=[MisspeltHook()], load_entry_points=False)


def test_an_unknown_strategy_lists_the_installed_ones() -> None:
    registry = load_strategies()
    with pytest.raises(UnknownStrategyError) as caught:
        registry.create("nope", {})
    assert "unknown strategy 'nope'" in str(caught.value)
    for name in [*BUILT_INS, "lowest_latency"]:
        assert name in str(caught.value)
        assert name in caught.value.installed


def test_a_blocked_plugin_is_not_loaded() -> None:
    registry = load_strategies(blocked=["example_strategy"])
    assert "lowest_latency" not in registry.names
    assert "round_robin" in registry.names


def test_bad_options_surface_as_value_error_from_the_registry() -> None:
    with pytest.raises(ValueError, match="strategy 'p2c': option 'seed'"):
        load_strategies().create("p2c", {"seed": "x"})

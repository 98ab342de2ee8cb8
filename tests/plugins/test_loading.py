"""Loading plugins: the installed set, duplicates, misspelt hooks, unknown names. Each test builds its own manager;
entry points themselves are tested with fake distributions in ``test_entry_points``."""

from __future__ import annotations

import poolgate_plugins.strategies
import pytest

from selector_service.plugin import RegisterStrategy, Strategy, hookimpl
from selector_service.plugin.manager import PluginError, UnknownStrategyError, load_strategies
from selector_service.plugin.testing import strategies_of
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


@pytest.mark.parametrize("name", BUILT_INS)
def test_every_built_in_builds_a_strategy(name: str) -> None:
    assert isinstance(load_strategies().create(name, {}), Strategy)


def test_a_duplicate_name_is_an_error() -> None:
    with pytest.raises(PluginError, match="strategy 'round_robin' is registered twice"):
        load_strategies(extra_plugins=[DuplicateRoundRobin()])


def test_a_duplicate_name_is_an_error_without_the_installed_plugins() -> None:
    with pytest.raises(PluginError, match="registered twice"):
        strategies_of(poolgate_plugins.strategies, DuplicateRoundRobin())


def test_an_extra_plugin_registered_already_is_an_error() -> None:
    with pytest.raises(PluginError, match=r"plugin 'builtin_strategies' is registered already .*pass each plugin once"):
        load_strategies(extra_plugins=[poolgate_plugins.strategies])


def test_a_misspelt_hook_fails_loading() -> None:
    with pytest.raises(PluginError, match="plugin 'MisspeltHook': unknown hook 'register_strategys'"):
        strategies_of(MisspeltHook())


def test_strategies_of_holds_only_the_plugins_given() -> None:
    assert strategies_of().names == []
    registry = strategies_of(poolgate_plugins.strategies)
    assert set(registry.names) == set(BUILT_INS)
    assert set(registry.providers.values()) == {"poolgate_plugins.strategies"}


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


def test_blocking_the_built_ins_leaves_them_out() -> None:
    registry = load_strategies(blocked=["builtin_strategies"])
    assert not set(BUILT_INS) & set(registry.names)
    assert "lowest_latency" in registry.names


def test_bad_options_surface_as_value_error_from_the_registry() -> None:
    with pytest.raises(ValueError, match="strategy 'p2c': option 'seed'"):
        load_strategies().create("p2c", {"seed": "x"})

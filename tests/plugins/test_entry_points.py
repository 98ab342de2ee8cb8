"""Loading installed packages through the ``poolgate`` entry-point group, tested without installing anything: the
installed distributions are replaced by fake ones (as pluggy's own tests do), whose entry points name
``tests/plugins/installed_plugin.py``."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import PurePath

import poolgate_plugins.credentials
import poolgate_plugins.strategies
import pytest

from selector_service.plugin.manager import (
    BUILTIN_PLUGINS,
    PluginError,
    build_plugin_manager,
    collect_credential_sources,
    collect_strategies,
    load_strategies,
)
from tests.plugins import installed_plugin
from tests.plugins.test_options import BUILT_INS

PLUGIN = "tests.plugins.installed_plugin"


class FakeDistribution(importlib.metadata.Distribution):
    """An installed package as ``importlib.metadata`` reads one: its metadata and its ``poolgate`` entry points."""

    def __init__(self, name: str, **entry_points: str) -> None:
        self._name = name
        self._entry_points = entry_points

    def read_text(self, filename: str) -> str | None:
        if filename == "METADATA":
            return f"Metadata-Version: 2.1\nName: {self._name}\nVersion: 1.0\n"
        if filename == "entry_points.txt":
            return "[poolgate]\n" + "".join(f"{name} = {value}\n" for name, value in self._entry_points.items())
        return None

    def locate_file(self, path: str | PurePath) -> PurePath:
        return PurePath("/nonexistent", self._name, path)


Install = Callable[..., None]


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Install:
    """``install(*distributions)``: from then on they are the only installed packages."""

    def install(*distributions: FakeDistribution) -> None:
        monkeypatch.setattr(importlib.metadata, "distributions", lambda: list(distributions))

    return install


def test_an_installed_package_is_loaded_from_its_entry_point(install: Install) -> None:
    package = FakeDistribution("poolgate-first-candidate", first_candidate=PLUGIN)
    install(package)
    manager = build_plugin_manager()
    registry = collect_strategies(manager)
    assert registry.providers["first_candidate"] == "first_candidate"
    assert manager.get_plugin("first_candidate") is installed_plugin
    assert [(plugin, dist.metadata["name"]) for plugin, dist in manager.list_plugin_distinfo()] == [
        (installed_plugin, "poolgate-first-candidate")
    ]


def test_the_built_ins_register_by_import_with_nothing_installed(install: Install) -> None:
    install()
    manager = build_plugin_manager()
    assert manager.get_plugin("builtin_strategies") is poolgate_plugins.strategies
    assert manager.get_plugin("builtin_credentials") is poolgate_plugins.credentials
    assert manager.list_plugin_distinfo() == []
    strategies = collect_strategies(manager)
    assert set(strategies.names) == set(BUILT_INS)
    assert set(strategies.providers.values()) == {"builtin_strategies"}
    assert set(collect_credential_sources(manager).names) == {"static", "env", "files"}


def test_the_built_ins_are_registered_under_the_names_of_poolgate_s_own_entry_points() -> None:
    declared = importlib.metadata.distribution("poolgate").entry_points.select(group="poolgate")
    assert {entry_point.name: entry_point.value for entry_point in declared} == dict(BUILTIN_PLUGINS)


def test_poolgate_s_own_entry_points_are_skipped_as_registered_already(install: Install) -> None:
    poolgate = FakeDistribution("poolgate", **BUILTIN_PLUGINS)
    install(poolgate, poolgate)  # two copies of its metadata, as a stale second install leaves
    manager = build_plugin_manager()
    assert manager.list_plugin_distinfo() == []  # nothing came through the entry points
    assert manager.get_plugin("builtin_strategies") is poolgate_plugins.strategies
    assert collect_strategies(manager).providers["round_robin"] == "builtin_strategies"


def test_a_package_declaring_a_built_in_module_under_another_name_is_skipped(install: Install) -> None:
    # pluggy refuses a module registered twice: without the skip, this would stop every start.
    fork = FakeDistribution("poolgate-old-fork", strategies="poolgate_plugins.strategies", first_candidate=PLUGIN)
    install(fork)
    manager = build_plugin_manager()
    assert manager.is_blocked("strategies")
    assert manager.get_name(poolgate_plugins.strategies) == "builtin_strategies"
    registry = collect_strategies(manager)
    assert registry.providers["round_robin"] == "builtin_strategies"
    assert registry.providers["first_candidate"] == "first_candidate"  # the package's other entry point loads


def test_an_entry_point_taking_a_built_in_s_name_is_refused(install: Install) -> None:
    install(FakeDistribution("poolgate-impostor", builtin_strategies=PLUGIN))
    with pytest.raises(PluginError) as caught:
        build_plugin_manager()
    assert str(caught.value) == (
        "package 'poolgate-impostor' declares the poolgate entry point 'builtin_strategies', the name of a built-in "
        f"plugin, for '{PLUGIN}'; rename its entry point or uninstall it"
    )


def test_a_blocked_entry_point_is_not_loaded(install: Install) -> None:
    install(FakeDistribution("poolgate-first-candidate", first_candidate=PLUGIN))
    registry = load_strategies(blocked=["first_candidate"])
    assert "first_candidate" not in registry.names
    assert "round_robin" in registry.names


def test_an_entry_point_that_cannot_be_imported_fails_loading(install: Install) -> None:
    install(FakeDistribution("poolgate-broken", broken="tests.plugins.no_such_module"))
    with pytest.raises(PluginError, match=r"loading poolgate plugins failed: ModuleNotFoundError: .*no_such_module"):
        build_plugin_manager()


def test_a_misspelt_hook_in_an_installed_package_fails_loading(install: Install) -> None:
    install(FakeDistribution("poolgate-misspelt", misspelt=f"{PLUGIN}:misspelt"))
    hooks = "poolgate's hooks are register_credential_sources and register_strategies"
    with pytest.raises(PluginError, match=rf"plugin 'misspelt': unknown hook 'register_strategys' in .*; {hooks}"):
        build_plugin_manager()


def test_two_packages_registering_one_strategy_name_fail_loading(install: Install) -> None:
    install(FakeDistribution("one", first_candidate=PLUGIN), FakeDistribution("two", same_name=f"{PLUGIN}:same_name"))
    with pytest.raises(PluginError, match=r"strategy 'first_candidate' is registered twice .*uninstall one"):
        load_strategies()


def test_no_manager_is_kept_per_process_a_package_installed_later_is_found(install: Install) -> None:
    assert "first_candidate" not in load_strategies().names
    install(FakeDistribution("poolgate-first-candidate", first_candidate=PLUGIN))
    assert load_strategies().providers["first_candidate"] == "first_candidate"

"""Credential sources as plugins: the built-ins through the entry point, a third-party source, key_env."""

from __future__ import annotations

import asyncio
import importlib.metadata
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import poolgate_plugins.credentials
import pytest

from poolgate.config import ConfigError, parse_config
from selector_service.app import start_selector
from selector_service.plugin import (
    AccountConfig,
    CredentialSource,
    CredentialSourceError,
    PoolConfig,
    RegisterCredentialSource,
    hookimpl,
)
from selector_service.plugin.manager import (
    PluginError,
    build_plugin_manager,
    collect_credential_sources,
    load_credential_sources,
)
from selector_service.plugin.types import SelectionRequest
from tests.credentials.conftest import Start
from tests.support import eventually


class FakeVault:
    """A secrets-manager source: ``credential_sources: {vault: {path: ...}}`` names a folder of secrets."""

    secrets: ClassVar[dict[str, dict[str, str]]] = {}

    def __init__(self) -> None:
        self.changed: Callable[[], None] | None = None
        self.stopped = False

    def accounts(self, pool: str, config: PoolConfig) -> list[AccountConfig]:
        options = config.credential_sources.get("vault")
        if options is None:
            return []
        folder = self.secrets.get(options.get("path", ""))
        if folder is None:
            raise CredentialSourceError([f"pools.{pool}.credential_sources.vault.path: no such folder in the vault"])
        return [AccountConfig(name=name, key=key) for name, key in sorted(folder.items())]

    async def start(self, changed: Callable[[], None]) -> None:
        self.changed = changed

    async def stop(self) -> None:
        self.stopped = True


class VaultPlugin:
    def __init__(self) -> None:
        self.instances: list[FakeVault] = []

    def make(self) -> FakeVault:
        source = FakeVault()
        self.instances.append(source)
        return source

    @hookimpl
    def register_credential_sources(self, register: RegisterCredentialSource) -> None:
        register("vault", self.make)


def vault_config(path: str = "team/openai") -> str:
    return textwrap.dedent(f"""
        pools:
          p:
            credential_sources: {{vault: {{path: {path}}}}}
            accounts:
              - {{name: static, key: sk-static-key-0001}}
    """)


def test_the_built_ins_are_registered_through_the_entry_point() -> None:
    registry = load_credential_sources()
    assert {"static", "env", "files"} <= set(registry.names)
    assert {registry.providers[name] for name in ("static", "env", "files")} == {"builtin_credentials"}
    points = {p.name: p.value for p in importlib.metadata.entry_points(group="poolgate")}
    assert points["builtin_credentials"] == "poolgate_plugins.credentials"
    assert all(isinstance(source, CredentialSource) for source in registry.create_all().values())


def test_duplicate_misspelt_and_invalid_sources_fail_loading() -> None:
    class Duplicate:
        @hookimpl
        def register_credential_sources(self, register: RegisterCredentialSource) -> None:
            register("files", poolgate_plugins.credentials.files)

    class Misspelt:
        @hookimpl
        def register_credential_source(self, register: RegisterCredentialSource) -> None:
            raise AssertionError("never called")

    class NotASource:
        @hookimpl
        def register_credential_sources(self, register: RegisterCredentialSource) -> None:
            register("broken", object)  # type: ignore[arg-type]

    with pytest.raises(PluginError, match="credential source 'files' is registered twice"):
        load_credential_sources(extra_plugins=[Duplicate()])
    with pytest.raises(PluginError, match="register_credential_source"):
        build_plugin_manager(extra_plugins=[Misspelt()], installed=False)
    registry = collect_credential_sources(build_plugin_manager(extra_plugins=[NotASource()], installed=False))
    with pytest.raises(PluginError, match=r"credential source 'broken' .* has no accounts\(\) method"):
        registry.create_all()


async def test_a_third_party_source_adds_and_updates_accounts(tmp_path: Path) -> None:
    FakeVault.secrets = {"team/openai": {"vault-1": "sk-vault-key-0001"}}
    plugin = VaultPlugin()
    registry = load_credential_sources(extra_plugins=[plugin])
    handle = await start_selector(parse_config(vault_config()), listen="127.0.0.1:0",
                                  database=str(tmp_path / "state.db"), credential_sources=registry)
    try:
        core = handle.core
        assert [a.name for a in core.pools["p"].accounts.values()] == ["static", "vault-1"]
        vault = core.pools["p"].accounts["p/vault-1"]
        assert vault.credential.value == "Bearer sk-vault-key-0001"
        FakeVault.secrets["team/openai"]["vault-2"] = "sk-vault-key-0002"
        assert plugin.instances[-1].changed is not None
        plugin.instances[-1].changed()  # the source says its accounts changed
        pool = core.pools["p"]
        # A member at once, selectable once the reload has loaded its saved health (a database round trip later).
        await eventually(lambda: "p/vault-2" in pool.accounts and pool.is_available(pool.accounts["p/vault-2"]))
        assert core.pools["p"].accounts["p/vault-1"] is vault
        names = set()
        for _ in range(3):
            grant = await core.select(SelectionRequest("p"), (), 0)
            names.add(grant.lease.account.name)
        assert names == {"static", "vault-1", "vault-2"}
    finally:
        await handle.stop(grace=0)
    assert plugin.instances[-1].stopped


@pytest.mark.parametrize(("text", "message"), [
    (vault_config("nowhere"), "pools.p.credential_sources.vault.path: no such folder in the vault"),
    (vault_config().replace("vault:", "vualt:"),
     "pools.p.credential_sources.vualt: no installed credential source is named 'vualt' (installed: env, files, "
     "static, vault); install its plugin, or remove the entry"),
])
async def test_source_problems_stop_the_start(tmp_path: Path, text: str, message: str) -> None:
    FakeVault.secrets = {"team/openai": {}}
    registry = load_credential_sources(extra_plugins=[VaultPlugin()])
    with pytest.raises(ConfigError) as caught:
        await start_selector(parse_config(text), listen="127.0.0.1:0", database=str(tmp_path / "state.db"),
                             credential_sources=registry)
    assert message in caught.value.errors
    assert not (tmp_path / "state.db").exists()  # nothing was started


async def test_key_env_reads_the_environment(start: Start) -> None:
    config = parse_config(textwrap.dedent("""
        pools:
          p:
            strategy: fill_first
            accounts:
              - {name: from-env, key_env: POOLGATE_TEST_KEY_2}
              - {name: static, key: sk-static-key-0001}
    """))
    running = await start(config, environ={"POOLGATE_TEST_KEY_2": "sk-env-key-0002"})
    assert [a.name for a in running.core.pools["p"].accounts.values()] == ["from-env", "static"]
    assert running.account("from-env").credential.value == "Bearer sk-env-key-0002"
    assert running.account("from-env").credential_redacted == "…0002"
    assert (await running.lease()).lease.account.name == "from-env"
    with pytest.raises(ConfigError) as caught:
        await start(config, environ={})
    assert caught.value.errors == [
        "pools.p.accounts[0].key_env: environment variable POOLGATE_TEST_KEY_2 is not set; export it in the "
        "selector's environment, or give the key with key:"]


async def test_the_selector_applies_sources_on_a_config_reload(start: Start, tmp_path: Path) -> None:
    directory = tmp_path / "creds"
    directory.mkdir()
    running = await start(parse_config("pools:\n  p:\n    api_key: sk-static-key-0001\n"), poll=60)
    (directory / "kiro-a.json").write_text('{"access_token": "at-a-0001"}')
    summary = await running.core.reload(parse_config(
        f"pools:\n  p:\n    api_key: sk-static-key-0001\n    credentials_dir: {directory}\n"))
    assert summary.accounts_added == ["p/kiro-a"]
    assert running.core.config.pools["p"].accounts[0].name == "key-1"  # the config as written stays
    with pytest.raises(ConfigError, match="no file in"):
        await running.core.reload(parse_config(
            f"pools:\n  p:\n    api_key: sk-static-key-0001\n    credentials_dir: {directory}\n"
            "    credentials_glob: 'none-*.json'\n"))
    assert "p/kiro-a" in running.core.pools["p"].accounts  # a rejected reload changes nothing
    await asyncio.sleep(0)

"""The admin commands need only the selector's address, TLS and admin token from the config: the pools' keys may
name variables that only the selector's environment has."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from poolgate.config import load_config
from selector_service.app import start_selector
from selector_service.overlay import ConfigSource
from tests.commands.conftest import Running, poolgate
from tests.support import free_port


@pytest.mark.parametrize("command", [["accounts", "list"], ["accounts", "disable", "p", "a"],
                                     ["accounts", "enable", "p", "a"], ["accounts", "reset", "p", "a"], ["reload"]])
async def test_admin_commands_work_without_the_pools_key_variables(
    running_selector: Running, command: list[str]
) -> None:
    ran = await poolgate(*command, "--config", str(running_selector.config))
    assert ran.status == 0, ran.err
    assert "POOLGATE_TEST_COMMANDS_KEY" not in ran.err
    if command == ["accounts", "list"]:
        assert "…abcd" in ran.out and "sk-test-commands-key" not in ran.out
    if command[:2] == ["accounts", "disable"]:
        assert "p/a: disabled" in ran.out or "a: disabled" in ran.out
        assert running_selector.handle.core.pools["p"].accounts["p/a"].disabled


async def test_the_admin_token_still_comes_from_the_config(running_selector: Running) -> None:
    # The token's own variable is unset here and its default is wrong: the selector refuses, so it was read.
    ran = await poolgate("accounts", "disable", "p", "a", "--config", str(running_selector.config),
                         env={**os.environ, "POOLGATE_TEST_ADMIN": "not-the-admin-token-0000"})
    assert ran.status == 1
    assert not running_selector.handle.core.pools["p"].accounts["p/a"].disabled


async def test_problems_in_the_selector_settings_are_still_reported(running_selector: Running) -> None:
    text = running_selector.config.read_text().replace("listen: 127.0.0.1:", "listen: ${POOLGATE_TEST_NO_SUCH}:")
    running_selector.config.write_text(text)
    ran = await poolgate("accounts", "list", "--config", str(running_selector.config))
    assert ran.status == 2
    assert "selector.listen: environment variable POOLGATE_TEST_NO_SUCH is not set" in ran.err


async def test_key_env_names_a_variable_of_the_selector(running_selector: Running) -> None:
    helped = await poolgate("accounts", "add", "--help")
    assert "read in the selector's environment" in " ".join(helped.out.split())
    ran = await poolgate("accounts", "add", "p", "b", "--key-env", "POOLGATE_TEST_ONLY_IN_THE_ADMINS_SHELL",
                         "--config", str(running_selector.config),
                         env={**os.environ, "POOLGATE_TEST_ONLY_IN_THE_ADMINS_SHELL": "sk-x-12345678"})
    assert ran.status == 1
    assert "environment variable POOLGATE_TEST_ONLY_IN_THE_ADMINS_SHELL is not set" in ran.err
    assert ("--key-env names a variable of the selector's environment, not this shell's: set "
            "POOLGATE_TEST_ONLY_IN_THE_ADMINS_SHELL where the selector runs and restart it, or give the key with "
            "--key-stdin") in ran.err
    assert "p/b" not in running_selector.handle.core.pools["p"].accounts


async def test_reload_reaches_each_replica_listed(running_selector: Running, tmp_path: Path) -> None:
    """Replicas each read their own copy of the file: `--selector A,B` reloads both, and one that does not answer is
    named while the others are still reloaded (exit 1)."""
    config = load_config(running_selector.config)
    second = await start_selector(config, listen="127.0.0.1:0", database=str(tmp_path / "second.db"),
                                  source=ConfigSource(str(running_selector.config)))
    try:
        text = running_selector.config.read_text()
        running_selector.config.write_text(text + "  q:\n    accounts:\n      - {name: b, key: sk-test-second-0001}\n")
        first = running_selector.handle.address
        ran = await poolgate("reload", "--config", str(running_selector.config), "--selector",
                             f"{first},{second.address}")
        assert ran.status == 0, ran.err
        assert f"{first}: reloaded: pools added: q" in ran.out and f"{second.address}: reloaded" in ran.out
        assert "q" in running_selector.handle.core.pools and "q" in second.core.pools
        gone = f"127.0.0.1:{free_port()}"
        ran = await poolgate("reload", "--config", str(running_selector.config), "--selector", f"{gone},{first}")
        assert ran.status == 1 and f"no selector answers at {gone}" in ran.err
        assert f"{first}: reloaded (no pool or account changes)" in ran.out
    finally:
        await second.stop(grace=0.5)

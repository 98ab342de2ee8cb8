"""The admin commands need only the selector's address, TLS and admin token from the config: the pools' keys may
name variables that only the selector's environment has."""

from __future__ import annotations

import os

import pytest

from tests.commands.conftest import Running, poolgate


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

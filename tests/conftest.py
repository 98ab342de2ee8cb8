"""Fixtures every test package shares: the installed strategies, and a fake upstream on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from fake_upstream import FakeUpstream, start_fake_upstream
from selector_service.plugin.manager import StrategyRegistry, load_strategies

LOOPBACK = ("127.0.0.1", "localhost", "::1")
for _name in ("NO_PROXY", "no_proxy"):
    # Every test server is on loopback: a proxy set in the environment of the machine running the tests (as CI
    # machines may have) must not carry the tests' own calls, from the SDKs or from processes they start.
    _given = [part for part in os.environ.get(_name, "").split(",") if part.strip()]
    os.environ[_name] = ",".join([*_given, *(host for host in LOOPBACK if host not in _given)])


@pytest.fixture(scope="session")
def registry() -> StrategyRegistry:
    """The strategies of every installed plugin (built-ins and the example plugin)."""
    return load_strategies()


@pytest.fixture
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    """A fake OpenAI/Anthropic upstream on a free port (see ``fake_upstream``)."""
    server = await start_fake_upstream()
    yield server
    await server.stop()

"""Fixtures every test package shares: the installed strategies, and a fake upstream on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from poolgate.fake_upstream import FakeUpstream, start_fake_upstream
from selector_service.plugin.manager import StrategyRegistry, load_strategies


@pytest.fixture(scope="session")
def registry() -> StrategyRegistry:
    """The strategies of every installed plugin (built-ins and the example plugin)."""
    return load_strategies()


@pytest.fixture
async def fake_upstream() -> AsyncIterator[FakeUpstream]:
    """A fake OpenAI/Anthropic upstream on a free port (see ``poolgate.fake_upstream``)."""
    server = await start_fake_upstream()
    yield server
    await server.stop()

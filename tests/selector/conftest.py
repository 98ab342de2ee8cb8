"""Fixtures for selector tests: configs from YAML text, a controllable clock, cores on a real SQLite file, and a
real selector server on loopback (its config from the module's ``selector_yaml`` fixture)."""

from __future__ import annotations

import random
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from poolgate.config import Config, parse_config
from poolgate.v1 import selector_pb2_grpc
from selector_service.app import SelectorHandle, start_selector
from selector_service.domain.selector import SelectorCore
from selector_service.plugin.manager import StrategyRegistry
from selector_service.storage import StateRepository
from tests.support import open_accounts

__all__ = ["open_accounts"]  # re-exported: selector tests import their helpers from here


class FakeClock:
    """Wall-clock stand-in: time moves only when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def config_from(text: str) -> Config:
    return parse_config(textwrap.dedent(text))


def pool_config(accounts: str, **settings: object) -> Config:
    """A one-pool config named ``p`` with the given ``accounts:`` YAML and pool settings."""
    lines = "\n".join(f"    {k}: {v}" for k, v in settings.items())
    body = textwrap.indent(textwrap.dedent(accounts).strip(), "      ")
    return parse_config(f"pools:\n  p:\n{lines}\n    accounts:\n{body}\n")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


CoreFactory = Callable[..., Awaitable[SelectorCore]]


@pytest.fixture
async def make_core(tmp_path: Path, registry: StrategyRegistry, clock: FakeClock) -> AsyncIterator[CoreFactory]:
    """Build started cores on a real SQLite file (``database`` to share one between cores); all stopped at the end."""
    started: list[tuple[SelectorCore, StateRepository]] = []

    async def factory(config: Config, database: Path | None = None, use_clock: bool = True,
                      strategies: StrategyRegistry | None = None) -> SelectorCore:
        repository = StateRepository.open(str(database or tmp_path / "state.db"))
        core = SelectorCore(config, strategies or registry, repository,
                            clock=clock if use_clock else __import__("time").time, rng=random.Random(7))
        await core.start()
        started.append((core, repository))
        return core

    yield factory
    for core, repository in started:
        await core.stop()
        await repository.close()


@pytest.fixture
async def selector(tmp_path: Path, selector_yaml: str) -> AsyncIterator[SelectorHandle]:
    """A selector server on 127.0.0.1 (a free port) serving the module's ``selector_yaml``, on a real SQLite file."""
    handle = await start_selector(config_from(selector_yaml), listen="127.0.0.1:0", database=str(tmp_path / "s.db"))
    yield handle
    await handle.stop(grace=0.5)


@pytest.fixture
async def stub(selector: SelectorHandle) -> AsyncIterator[selector_pb2_grpc.SelectorStub]:
    async with grpc.aio.insecure_channel(selector.address) as channel:
        yield selector_pb2_grpc.SelectorStub(channel)

"""Property-based fuzzing: the whole stack (fake upstream, selector, edge) runs in an event loop of its own thread,
so hypothesis drives it with plain blocking clients, many examples against one stack."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings

from fake_upstream import FakeUpstream, start_fake_upstream
from poolgate.config import Config
from proxy_edge.app import EdgeServer, start_edge
from selector_service.app import SelectorHandle, start_selector
from tests.edge.conftest import stack_config

FUZZ = settings(max_examples=int(os.environ.get("POOLGATE_FUZZ_EXAMPLES", "150")), deadline=None, database=None,
                print_blob=True, suppress_health_check=[HealthCheck.too_slow])
"""For every fuzz test: bounded and fast, the same budget every run (POOLGATE_FUZZ_EXAMPLES=5000 for a deeper search
by hand), no example database (a failure prints the blob to reproduce it)."""

T = TypeVar("T")


@dataclass
class BackgroundStack:
    """A running stack and the loop it runs in."""

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    fake: FakeUpstream
    selector: SelectorHandle
    edge: EdgeServer
    config: Config

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` in the stack's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)


class LoopThread:
    """An event loop running in a thread of its own, for servers that blocking clients (hypothesis) drive."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def run(self, coroutine: Awaitable[T]) -> T:
        """Run ``coroutine`` in the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def background_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundStack]:
    database = tmp_path_factory.mktemp("fuzz") / "state.db"
    loop = LoopThread("fuzz-stack")
    stack = loop.run(_start(database))
    yield BackgroundStack(loop.loop, loop.thread, *stack)
    loop.run(_stop(*stack))
    loop.close()


async def _start(database: Path) -> tuple[FakeUpstream, SelectorHandle, EdgeServer, Config]:
    fake = await start_fake_upstream()
    config = stack_config(
        fake.url,
        openai_accounts="- {name: one, key: sk-good-fuzz0001}\n- {name: two, key: sk-good-fuzz0002}",
        anthropic_accounts="- {name: one, key: sk-good-fuzz0003}",
        # Random reports leave probes unanswered: let their slots lapse at once, so selections rarely wait.
        extra="defaults:\n  probe_timeout: 10ms")
    selector = await start_selector(config, listen="127.0.0.1:0", database=str(database))
    config.edge.selector = selector.address
    edge = await start_edge(config, "127.0.0.1:0")
    return fake, selector, edge, config


async def _stop(fake: FakeUpstream, selector: SelectorHandle, edge: EdgeServer, _config: Config) -> None:
    await edge.stop()
    await selector.stop(grace=0)
    await fake.stop()

"""Helpers shared by test packages (fixtures live in conftest files; plain functions live here)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for processes that must be told their port)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def eventually(condition: Callable[[], object], within: float = 5.0, what: str = "condition") -> None:
    """Wait, polling every 10 ms, until ``condition()`` is true; fail naming ``what`` after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"{what} not met within {within:g} s"
        await asyncio.sleep(0.01)


async def eventually_async(condition: Callable[[], Awaitable[object]], within: float = 5.0,
                           what: str = "condition") -> None:
    """As :func:`eventually`, for a condition that must be awaited (e.g. a gRPC call)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"{what} not met within {within:g} s"
        await asyncio.sleep(0.01)

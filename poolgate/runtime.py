"""Running an asyncio program: with uvloop when it is installed (faster sockets and callbacks), unless turned off.

``POOLGATE_UVLOOP=0`` (or ``--no-uvloop`` on the ``poolgate`` command) runs on the standard event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

UVLOOP_ENV = "POOLGATE_UVLOOP"


def uvloop_enabled() -> bool:
    if os.environ.get(UVLOOP_ENV, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when enabled."""
    if uvloop_enabled():
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    return asyncio.run(main)


def stop_requested() -> asyncio.Event:
    """An event the running loop sets on SIGINT or SIGTERM: a server waits on it, then stops cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop

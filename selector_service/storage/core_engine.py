"""SQLAlchemy Core on an asyncio driver (aiosqlite, asyncpg), without ``sqlalchemy.ext.asyncio``.

SQLAlchemy's asyncio extension imports its ORM: 5.6 MB resident in a selector that uses Core only. The extension is a
thin layer over ``greenlet_spawn``, which runs ordinary synchronous SQLAlchemy code in a greenlet and hands every
driver call back to the event loop; this module uses that bridge directly. The driver still does all of its I/O on
the event loop, so nothing blocks it, and a transaction is one spawn rather than one per statement.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.util import greenlet_spawn

T = TypeVar("T")
log = logging.getLogger("poolgate.selector.storage")
DISPOSE_WAIT = 10.0
"""Seconds closing waits for transactions whose callers gave up."""
READ_ONLY = "poolgate_read_only"
"""Execution option set on the connections :meth:`CoreEngine.read` hands out (a dialect may begin them differently)."""


class UnusableDatabase(ValueError):
    """The database URL cannot be used: unknown, not installed, or a driver that would block the event loop."""


class CoreEngine:
    """An engine whose work runs as plain functions of a :class:`Connection`, awaited from asyncio."""

    def __init__(self, url: str, **options: Any) -> None:
        engine = create_engine(url, **options)
        if not engine.dialect.is_async:
            driver = f"{engine.dialect.name}+{engine.dialect.driver}"
            raise UnusableDatabase(f"its driver {driver!r} is not an asyncio driver")
        self.sync_engine: Engine = engine
        """The synchronous face of the engine, for event listeners."""
        self._running: set[asyncio.Future[Any]] = set()

    @property
    def dialect(self) -> Dialect:
        return self.sync_engine.dialect

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction: committed when it returns, rolled back when it raises. A caller that is
        cancelled meanwhile gets its CancelledError, and the transaction still ends (see :meth:`_to_the_end`)."""
        return await self._to_the_end(greenlet_spawn(self._in_transaction, work))

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` on a pooled connection marked :data:`READ_ONLY`, and roll back whatever it did."""
        return await self._to_the_end(greenlet_spawn(self._on_connection, work))

    async def _to_the_end(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await ``coroutine`` in a task of its own that a cancellation of the caller does not reach.

        Cancelled in the middle, a transaction never reached its commit or rollback: its connection went back to the
        pool still holding the database's write lock (SQLite), and every later write waited out the busy timeout and
        failed. A caller gives up on a transaction when its client goes away, at a timeout (the replication poll) or
        at shutdown (the usage log's writer).
        """
        task = asyncio.ensure_future(coroutine)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_retrieve)  # its outcome is nobody's now, but is not to be logged as unretrieved
            raise

    async def dispose(self) -> None:
        """Let transactions whose callers gave up end (for :data:`DISPOSE_WAIT` seconds at most), then close every
        pooled connection."""
        if self._running:
            _, pending = await asyncio.wait(set(self._running), timeout=DISPOSE_WAIT)
            if pending:
                log.warning("%d database transaction(s) still running after %g s at close; left unfinished",
                            len(pending), DISPOSE_WAIT)
        await greenlet_spawn(self.sync_engine.dispose)

    def _in_transaction(self, work: Callable[[Connection], T]) -> T:
        with self.sync_engine.begin() as conn:
            return work(conn)

    def _on_connection(self, work: Callable[[Connection], T]) -> T:
        with self.sync_engine.connect() as conn:
            return work(conn.execution_options(**{READ_ONLY: True}))


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Log the failure of a transaction nobody waits for any more (its caller's own error handling is gone)."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        # The driver's message only: SQLAlchemy's own text lists the statement's parameters.
        log.warning("a database transaction whose caller had given up failed: %s: %s", type(exc).__name__,
                    str(getattr(exc, "orig", None) or exc)[:200])

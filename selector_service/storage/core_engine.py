"""SQLAlchemy Core on an asyncio driver (aiosqlite, asyncpg), without ``sqlalchemy.ext.asyncio``.

SQLAlchemy's asyncio extension imports its ORM: 5.6 MB resident in a selector that uses Core only. The extension is a
thin layer over ``greenlet_spawn``, which runs ordinary synchronous SQLAlchemy code in a greenlet and hands every
driver call back to the event loop; this module uses that bridge directly. The driver still does all of its I/O on
the event loop, so nothing blocks it, and a transaction is one spawn rather than one per statement.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import create_engine
from sqlalchemy.engine import Connection, Dialect, Engine
from sqlalchemy.util import greenlet_spawn

T = TypeVar("T")
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

    @property
    def dialect(self) -> Dialect:
        return self.sync_engine.dialect

    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` in one transaction: committed when it returns, rolled back when it raises."""
        return await greenlet_spawn(self._in_transaction, work)

    async def read(self, work: Callable[[Connection], T]) -> T:
        """Run ``work`` on a pooled connection marked :data:`READ_ONLY`, and roll back whatever it did."""
        return await greenlet_spawn(self._on_connection, work)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await greenlet_spawn(self.sync_engine.dispose)

    def _in_transaction(self, work: Callable[[Connection], T]) -> T:
        with self.sync_engine.begin() as conn:
            return work(conn)

    def _on_connection(self, work: Callable[[Connection], T]) -> T:
        with self.sync_engine.connect() as conn:
            return work(conn.execution_options(**{READ_ONLY: True}))

"""Several selector replicas on one database: each takes over the health changes the others write.

Selection never touches the database. Instead every replica polls the shared state table for rows changed lately
(every :data:`POLL_INTERVAL` seconds) and hands the rows it has not seen yet to
:meth:`SelectorCore.apply_external`. A cooldown, circuit or disable set through one replica is so honoured by the
others within about half a second; counters stay exact because every replica writes increments and the rows it reads
back are the merged result.

Each poll also syncs clients' spend (:meth:`.clients.ClientBook.sync`): this replica's increments are written and
every client's spend read back, so budgets hold across replicas.

What stays per replica: leases and in-flight counts, sticky sessions, the queue of waiting calls, rate-limit
windows (accounts' and clients') and quota learned from headers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from selector_service.domain.selector import SelectorCore
from selector_service.domain.state import PersistedState

log = logging.getLogger("poolgate.selector.replication")

POLL_INTERVAL = 0.5
POLL_TIMEOUT = 5.0
"""Longest a poll may take: it holds the writer's lock, so a database that hangs must not hold up this replica's
own writes for longer."""
WARN_EVERY = 60.0


class ChangeFeed(Protocol):
    """Where other replicas' changes are read from (implemented by the storage layer)."""

    async def changed_since(self, watermark: float | None) -> tuple[float, list[PersistedState]]:
        """Rows changed since ``watermark`` (all for None) and the watermark for the next call."""
        ...


class Replicator:
    """Polls the shared state for changes written by other replicas and applies them to this one."""

    def __init__(self, core: SelectorCore, feed: ChangeFeed, interval: float = POLL_INTERVAL) -> None:
        self._core = core
        self._feed = feed
        self.interval = interval
        self._watermark: float | None = None
        self._seen: dict[str, int] = {}  # account id -> version last taken over
        self._task: asyncio.Task[None] | None = None
        self._failing_since = 0.0
        self._warned_at = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="poolgate-replica-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def poll(self) -> int:
        """Take over what changed since the last poll; returns how many accounts were updated."""
        # Under the writer's lock: no batch of ours is half-written while we read, so a row we read either has our
        # changes or they are still pending (and then the account is skipped until they are written).
        async with self._core.state_lock:
            async with asyncio.timeout(POLL_TIMEOUT):  # not wait_for, which may drop stop()'s cancellation (3.11)
                watermark, rows = await self._feed.changed_since(self._watermark)
            fresh = [row for row in rows if self._seen.get(row.account_id) != row.version]
            skipped = self._core.apply_external(fresh) if fresh else set()
        for row in fresh:
            if row.account_id not in skipped:
                self._seen[row.account_id] = row.version
        self._watermark = watermark
        async with asyncio.timeout(POLL_TIMEOUT):
            await self._core.clients.sync()
        return len(fresh) - len(skipped)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.poll()
            except Exception as exc:  # the database may be restarting; health in memory stays in force meanwhile
                now = time.monotonic()
                if not self._failing_since:
                    self._failing_since = now
                if now - self._warned_at >= WARN_EVERY:
                    self._warned_at = now
                    log.warning("cannot read other replicas' account changes from the database (%s: %s); "
                                "retrying every %.1f s, this replica's own state stays in force",
                                type(exc).__name__, str(exc)[:200], self.interval)
                continue
            if self._failing_since:
                log.info("reading other replicas' account changes again after %.0f s",
                         time.monotonic() - self._failing_since)
                self._failing_since = self._warned_at = 0.0

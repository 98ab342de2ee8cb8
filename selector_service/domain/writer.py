"""Group commit of health changes: many changes, one transaction, each caller told when its change is durable.

Changes that cannot be saved (the database is down) stay in memory and are retried every second until it is back,
so an acknowledged cooldown or disable reaches the database late rather than never.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from selector_service.domain.state import PersistedState, StateChange

log = logging.getLogger("poolgate.selector.state")

RETRIES = 3
RETRY_LATER = 1.0
MAX_UNSAVED = 100_000


class StateStore(Protocol):
    """Where account health is kept across restarts (implemented by the storage layer)."""

    async def load(self, accounts: list[tuple[str, str, str, str, str]]) -> dict[str, PersistedState]:
        """Register ``(account_id, pool, name, credential_redacted, fingerprint)`` rows and return saved states."""
        ...

    async def apply(self, changes: list[StateChange]) -> None:
        """Apply every change, in order, in one transaction."""
        ...


class StateWriter:
    """Collects changes while a transaction is running and writes them together in the next one."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._pending: list[tuple[StateChange, asyncio.Future[None]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.lock = asyncio.Lock()
        """Held while a batch is taken and written; whoever reads the store under it sees no half-written batch."""
        self._unsaved: list[StateChange] = []
        self._retry: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="poolgate-state-writer")

    def submit(self, change: StateChange) -> asyncio.Future[None]:
        """Queue a change; the future resolves once it is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((change, future))
        self._wakeup.set()
        return future

    def pending_ids(self) -> set[str]:
        """Accounts with changes submitted but not yet written (their in-memory state is ahead of the store)."""
        return {change.account_id for change, _ in self._pending} | {change.account_id for change in self._unsaved}

    async def close(self) -> None:
        """Write what is pending, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._retry is not None:
            self._retry.cancel()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            async with self.lock:
                batch, self._pending = self._pending, []
                if batch or self._unsaved:
                    await self._write(batch)
            if self._closing and not self._pending:
                return

    async def _write(self, batch: list[tuple[StateChange, asyncio.Future[None]]]) -> None:
        unsaved, self._unsaved = self._unsaved, []
        changes = unsaved + [change for change, _ in batch]
        error: Exception | None = None
        for attempt in range(RETRIES):
            try:
                await self._store.apply(changes)
                error = None
                break
            except Exception as exc:  # the database may be briefly locked by another process
                error = exc
                if not unsaved:  # once per outage, not once per retry
                    log.warning("saving %d account state change(s) failed (try %d/%d): %s",
                                len(changes), attempt + 1, RETRIES, exc)
                await asyncio.sleep(0.05 * (attempt + 1))
        for _, future in batch:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
        if error is None:
            if unsaved:
                log.info("%d account state change(s) saved now that the database answers again", len(unsaved))
        elif self._closing:
            log.error("%d account state change(s) were NOT saved and are lost: %s", len(changes), error)
        else:
            if not unsaved:
                log.error("account state changes cannot be saved (%s); they stay in force here and are retried "
                          "every %g s until the database answers (lost if this selector stops before)",
                          error, RETRY_LATER)
            if len(changes) > MAX_UNSAVED:
                log.error("dropping %d unsaved account state change(s), the oldest", len(changes) - MAX_UNSAVED)
            self._unsaved = changes[-MAX_UNSAVED:]
            self._retry = asyncio.get_running_loop().call_later(RETRY_LATER, self._wakeup.set)

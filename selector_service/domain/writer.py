"""Group commit of health changes: many changes, one transaction, each caller told when its change is durable."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from selector_service.domain.state import PersistedState, StateChange

log = logging.getLogger("poolgate.selector.state")

RETRIES = 3


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
        return {change.account_id for change, _ in self._pending}

    async def close(self) -> None:
        """Write what is pending, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            async with self.lock:
                batch, self._pending = self._pending, []
                if batch:
                    await self._write(batch)
            if self._closing and not self._pending:
                return

    async def _write(self, batch: list[tuple[StateChange, asyncio.Future[None]]]) -> None:
        changes = [change for change, _ in batch]
        error: Exception | None = None
        for attempt in range(RETRIES):
            try:
                await self._store.apply(changes)
                error = None
                break
            except Exception as exc:  # the database may be briefly locked by another process
                error = exc
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
        if error is not None:
            log.error("account state changes were NOT saved and will be lost on restart: %s", error)

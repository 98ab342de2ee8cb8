"""The usage log when its database falls behind: what waits in memory is bounded, what cannot wait is dropped and
counted (logged once), and once the database catches up everything held is written and recording goes on. Real
SQLite file; the database "falls behind" by having its writes held until the test lets them go."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from selector_service.domain import usage
from selector_service.domain.usage import UsageRecord, UsageRecorder
from selector_service.storage import StateRepository
from tests.support import eventually, eventually_async


def record() -> UsageRecord:
    return UsageRecord(time.time(), "p", "p/a", "a", "m", "success", 200, 10, 5, 100, 20, 0.001)


class HeldWrites:
    """The repository, with its usage writes held until :attr:`go` is set (a database that does not keep up)."""

    def __init__(self, repository: StateRepository) -> None:
        self.repository = repository
        self.go = asyncio.Event()
        self.waiting = 0

    async def append_usage(self, records: list[UsageRecord]) -> None:
        self.waiting += 1
        await self.go.wait()
        await self.repository.append_usage(records)

    async def usage_between(self, since: float, until: float, pool: str, account_id: str,
                            client: str = "") -> list[UsageRecord]:
        return await self.repository.usage_between(since, until, pool, account_id, client)

    async def prune_usage(self, before: float) -> int:
        return await self.repository.prune_usage(before)


async def test_a_database_that_falls_behind_costs_bounded_memory_and_counted_records(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(usage, "MAX_BUFFERED", 300)
    monkeypatch.setattr(usage, "FLUSH_SIZE", 100)
    repository = StateRepository.open(str(tmp_path / "state.db"))
    await repository.create_schema()
    store = HeldWrites(repository)
    recorder = UsageRecorder(store, 86400)
    recorder.start()
    try:
        for _ in range(100):
            recorder.record(record())
        await eventually(lambda: store.waiting == 1, what="the first batch being written")
        with caplog.at_level(logging.WARNING, logger="poolgate.selector.usage"):
            for _ in range(1000):  # while the first batch's write is held
                recorder.record(record())
        assert recorder.dropped == 700  # 300 wait; the rest could not
        overflow = [r for r in caplog.records if "not keeping up" in r.getMessage()]
        assert len(overflow) == 1, caplog.text  # logged once, not per record
        store.go.set()
        await eventually_async(lambda: _count(repository, 400), what="every held record written")
        for _ in range(5):
            recorder.record(record())
        await recorder.close()
        assert len(await repository.usage_between(0, time.time() + 1)) == 405
        assert recorder.dropped == 700
        assert any("caught up" in r.getMessage() for r in caplog.records), caplog.text
    finally:
        await recorder.close()
        await repository.close()


async def _count(repository: StateRepository, expected: int) -> bool:
    return len(await repository.usage_between(0, time.time() + 1)) >= expected

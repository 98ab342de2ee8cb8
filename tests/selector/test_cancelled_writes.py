"""A write whose caller gives up (its client went away, a timeout, shutdown) still ends: cancelled in the middle of
its transaction, it used to leave the SQLite file's write lock held, so every later write waited out the busy
timeout (10 s) and failed. Real SQLite file, real usage log writer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from selector_service.domain.clients import ClientBook, ClientLimits
from selector_service.domain.usage import UsageRecord, UsageRecorder
from selector_service.storage import StateRepository


def records(count: int) -> list[UsageRecord]:
    now = time.time()
    return [UsageRecord(now, "p", "p/a", "a", "m", "success", 200, 10, 5, 100, 20, 0.001) for _ in range(count)]


async def test_a_usage_write_cancelled_midway_still_ends_and_the_next_write_goes_through(tmp_path: Path) -> None:
    repository = StateRepository.open(str(tmp_path / "state.db"))
    await repository.create_schema()
    try:
        written = 0
        for step in range(20):  # cancelled at 20 points of the transaction, from before its start to after its end
            task = asyncio.ensure_future(repository.append_usage(records(2000)))
            await asyncio.sleep(step * 0.001)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.wait_for(repository.append_usage(records(1)), 3)  # not the busy timeout's 10 s
            written += 1
        await repository.engine.dispose()  # waits for the transactions whose callers gave up
        rows = await repository.usage_between(0, time.time() + 1)
        assert len(rows) == written + 20 * 2000  # and none of them was lost: each cancelled batch was written whole
    finally:
        await repository.close()


async def test_the_usage_logs_shutdown_writes_every_record(tmp_path: Path) -> None:
    """Closing the usage log while its writer is in the middle of a batch, or just about to start one: that batch
    and the rest are written, and close returns (it used to cancel the writer, which lost the batch, left the
    database locked, and at one moment hung forever)."""
    repository = StateRepository.open(str(tmp_path / "state.db"))
    await repository.create_schema()
    try:
        written = 0
        for step in range(10):
            recorder = UsageRecorder(repository, 86400)
            recorder.start()
            for record in records(3000):  # over the batch size: the writer starts at once
                recorder.record(record)
            await asyncio.sleep(step * 0.002)
            await asyncio.wait_for(recorder.close(), 5)
            written += 3000
            assert recorder.dropped == 0
        assert len(await repository.usage_between(0, time.time() + 1)) == written
    finally:
        await repository.close()


async def test_a_spend_sync_whose_caller_gives_up_is_counted_once(tmp_path: Path) -> None:
    """The replication poll gives up on a slow sync of clients' spend (its timeout), or shutdown does: the write
    still ends, and the increments it wrote are not written again by the next sync."""
    repository = StateRepository.open(str(tmp_path / "state.db"))
    await repository.create_schema()
    try:
        book = ClientBook(repository, time.time)
        client = ClientLimits("alice", daily_budget=100.0)
        day = book.periods("UTC", time.time()).day
        for step in range(10):
            book.reported(client, 10, 1.0, time.time())
            task = asyncio.ensure_future(book.sync())
            await asyncio.sleep(step * 0.0005)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await book.sync()
            assert book.spent("alice", day) == pytest.approx(step + 1.0)
    finally:
        await repository.close()

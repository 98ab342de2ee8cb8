"""The stream client used by the edge: unary-like calls, batching underneath, recovery after a selector restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from poolgate.exchange_client import ExchangeClient, SelectError
from poolgate.v1 import selector_pb2 as pb
from selector_service.app import SelectorHandle, start_selector
from tests.selector.conftest import config_from, open_accounts
from tests.support import eventually, free_port

CONFIG = """
pools:
  openai:
    accounts:
      - {name: a, key: sk-test-aaaaaaaa1111, max_concurrency: 2}
      - {name: b, key: sk-test-bbbbbbbb2222, max_concurrency: 2}
"""


@pytest.fixture
def selector_yaml() -> str:
    return CONFIG



async def test_many_concurrent_selections_share_one_stream(selector: SelectorHandle) -> None:
    async with grpc.aio.insecure_channel(selector.address) as channel:
        client = ExchangeClient(channel)

        async def one() -> str:
            lease = await client.select(pb.SelectAccountRequest(pool="openai"), timeout=5)
            await asyncio.sleep(0.01)
            client.report(pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS))
            return lease.account_name

        names = await asyncio.gather(*(one() for _ in range(40)))  # 40 callers, 4 slots: most of them queue
        assert sorted(set(names)) == ["a", "b"]
        with pytest.raises(SelectError) as exc:
            await client.select(pb.SelectAccountRequest(pool="missing"), timeout=1)
        assert exc.value.code == grpc.StatusCode.NOT_FOUND
        await eventually(lambda: all(a.in_flight == 0 for a in selector.core.pools["openai"].accounts.values()),
                         what="every lease back")
        await client.close()


async def test_exhausted_pool_and_cancelled_caller(selector: SelectorHandle) -> None:
    await open_accounts(selector.core)
    async with grpc.aio.insecure_channel(selector.address) as channel:
        client = ExchangeClient(channel)
        leases = [await client.select(pb.SelectAccountRequest(pool="openai"), timeout=1) for _ in range(4)]
        with pytest.raises(SelectError) as exc:
            await client.select(pb.SelectAccountRequest(pool="openai"), timeout=0.3)
        assert exc.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED and exc.value.cause == "busy"
        waiting = asyncio.create_task(client.select(pb.SelectAccountRequest(pool="openai"), timeout=5))
        pool = selector.core.pools["openai"]
        await eventually(lambda: len(pool.waiters) == 1, what="the selection queued")
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        for lease in leases:
            client.report(pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS))
        await eventually(lambda: not pool.waiters and all(a.in_flight == 0 for a in pool.accounts.values()),
                         what="the queue empty and every lease back")
        await client.close()


async def test_recovers_after_the_selector_restarts(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    handle = await start_selector(config_from(CONFIG), listen=address, database=str(tmp_path / "s.db"))
    async with grpc.aio.insecure_channel(address) as channel:
        client = ExchangeClient(channel)
        try:
            assert (await client.select(pb.SelectAccountRequest(pool="openai"), timeout=2)).lease_id
        finally:
            await handle.stop(grace=0)
        with pytest.raises(SelectError) as exc:
            await client.select(pb.SelectAccountRequest(pool="openai"), timeout=1)
        assert exc.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        handle = await start_selector(config_from(CONFIG), listen=address, database=str(tmp_path / "s.db"))
        try:
            for _ in range(40):
                try:
                    lease = await client.select(pb.SelectAccountRequest(pool="openai"), timeout=1)
                    break
                except SelectError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the client did not recover within about 4 s of the selector's return")
            assert lease.account_name in ("a", "b")
        finally:
            await client.close()
            await handle.stop(grace=0.5)


async def test_sync_confirms_only_reports_not_yet_confirmed(selector: SelectorHandle) -> None:
    """An idle client syncs without a stream (an edge stopping after its selector says nothing); a queued report
    needs the selector to confirm it."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{free_port()}") as channel:  # nothing listens there
        client = ExchangeClient(channel)
        await client.sync(0.5)
        assert client._stream is None
        client.report(pb.ReportOutcomeRequest(lease_id="lease-1", outcome=pb.OUTCOME_SUCCESS))
        with pytest.raises(SelectError):
            await client.sync(0.5)
        await client.close()
    async with grpc.aio.insecure_channel(selector.address) as channel:
        client = ExchangeClient(channel)
        lease = await client.select(pb.SelectAccountRequest(pool="openai"), timeout=5)
        client.report(pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS))
        await client.sync(5)  # returns once the selector has applied it
        assert all(a.in_flight == 0 for a in selector.core.pools["openai"].accounts.values())
        await client.close()


async def test_concurrent_syncs_leave_no_later_report_unconfirmed(selector: SelectorHandle) -> None:
    accounts = selector.core.pools["openai"].accounts.values()
    await open_accounts(selector.core)
    async with grpc.aio.insecure_channel(selector.address) as channel:
        client = ExchangeClient(channel)
        leases = [await client.select(pb.SelectAccountRequest(pool="openai"), timeout=5) for _ in range(3)]

        def report(lease: pb.Lease) -> None:
            client.report(pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS))

        report(leases[0])
        first = asyncio.create_task(client.sync(5))
        await asyncio.sleep(0)
        report(leases[1])
        second = asyncio.create_task(client.sync(5))
        await asyncio.gather(first, second)
        assert sum(a.in_flight for a in accounts) == 1
        report(leases[2])
        await client.sync(5)  # must wait for this report, however the two syncs before it counted
        assert sum(a.in_flight for a in accounts) == 0
        await client.close()

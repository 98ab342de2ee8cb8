"""Two selector replicas (real gRPC servers) sharing one PostgreSQL database: health set through one is honoured by
the other within a second, and concurrent reports on both count exactly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import grpc
import pytest

from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from selector_service.app import SelectorHandle, start_selector
from selector_service.storage import StateRepository
from tests.selector.conftest import config_from
from tests.support import open_accounts

TWO_ACCOUNTS = """
pools:
  p:
    accounts:
      - {name: a, key: sk-test-replica-a-0001}
      - {name: b, key: sk-test-replica-b-0002}
"""
ONE_ACCOUNT = """
pools:
  p:
    accounts:
      - {name: only, key: sk-test-replica-only-0003}
"""


@dataclass
class Replica:
    handle: SelectorHandle
    channel: grpc.aio.Channel
    stub: selector_pb2_grpc.SelectorStub
    admin: selector_pb2_grpc.AdminStub

    async def account(self, account_id: str) -> pb.AccountStatus:
        listing = await self.stub.ListAccounts(pb.ListAccountsRequest(pool="p"), timeout=5)
        return next(a for a in listing.pools[0].accounts if a.account_id == account_id)

    async def until(self, account_id: str, check: Callable[[pb.AccountStatus], bool], within: float = 3.0) -> float:
        """Seconds until ``check`` holds for the account on this replica (fails the test after ``within``)."""
        started = time.monotonic()
        while True:
            status = await self.account(account_id)
            if check(status):
                return time.monotonic() - started
            if time.monotonic() - started > within:
                pytest.fail(f"{account_id} on {self.handle.address} never got there: {status}")
            await asyncio.sleep(0.01)


@pytest.fixture
async def start_replicas(postgres_database: str) -> AsyncIterator[Callable[..., object]]:
    started: list[Replica] = []

    async def start(config: str, count: int = 2) -> list[Replica]:
        for _ in range(count):
            handle = await start_selector(config_from(config), listen="127.0.0.1:0", database=postgres_database)
            channel = grpc.aio.insecure_channel(handle.address)
            started.append(Replica(handle, channel, selector_pb2_grpc.SelectorStub(channel),
                                   selector_pb2_grpc.AdminStub(channel)))
        return started[-count:]

    yield start
    for replica in started:
        await replica.channel.close()
        await replica.handle.stop(grace=0)


async def test_cooldown_and_disable_through_one_replica_are_honoured_by_the_other_within_a_second(
    start_replicas: Callable[..., object],
) -> None:
    one, other = await start_replicas(TWO_ACCOUNTS)  # type: ignore[misc]
    assert one.handle.repository.dialect == "postgresql"
    lease = await one.stub.SelectAccount(pb.SelectAccountRequest(pool="p"), timeout=5)
    limited = lease.account_id
    healthy = "p/b" if limited == "p/a" else "p/a"
    answer = await one.stub.ReportOutcome(pb.ReportOutcomeRequest(
        lease_id=lease.lease_id, outcome=pb.OUTCOME_RATE_LIMITED, http_status=429, retry_after_ms=600_000), timeout=5)
    assert answer.recorded and answer.account_state == pb.ACCOUNT_STATE_COOLING

    assert await other.until(limited, lambda a: a.state == pb.ACCOUNT_STATE_COOLING) < 1.0
    status = await other.account(limited)
    assert 590_000 < status.cooldown_remaining_ms <= 600_000  # the cooldown itself came over, not just a flag
    assert status.rate_limited_total == 1 and "rate limited (429)" in status.reason
    for _ in range(4):  # the other replica now leases only the healthy account
        granted = await other.stub.SelectAccount(pb.SelectAccountRequest(pool="p"), timeout=5)
        assert granted.account_id == healthy
        await other.stub.ReportOutcome(pb.ReportOutcomeRequest(lease_id=granted.lease_id,
                                                               outcome=pb.OUTCOME_SUCCESS), timeout=5)

    name = healthy.split("/")[1]
    await other.admin.DisableAccount(pb.DisableAccountRequest(pool="p", account=name, reason="audit"), timeout=5)
    assert await one.until(healthy, lambda a: a.state == pb.ACCOUNT_STATE_DISABLED) < 1.0
    assert (await one.account(healthy)).reason == "audit"
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await one.stub.SelectAccount(pb.SelectAccountRequest(pool="p"), timeout=2)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    # Enabling and resetting through the first replica brings both accounts back on the second: each probes first.
    await one.admin.EnableAccount(pb.AccountRef(pool="p", account=name), timeout=5)
    await one.admin.ResetAccount(pb.AccountRef(pool="p", account=limited.split("/")[1]), timeout=5)
    assert await other.until(healthy, lambda a: a.state == pb.ACCOUNT_STATE_PROBING) < 1.0
    assert await other.until(limited, lambda a: a.state == pb.ACCOUNT_STATE_PROBING) < 1.0
    seen = set()
    for _ in range(4):
        granted = await other.stub.SelectAccount(pb.SelectAccountRequest(pool="p"), timeout=5)
        seen.add(granted.account_id)
        await other.stub.ReportOutcome(pb.ReportOutcomeRequest(lease_id=granted.lease_id,
                                                               outcome=pb.OUTCOME_SUCCESS), timeout=5)
    assert seen == {"p/a", "p/b"}


async def test_concurrent_429s_split_across_two_replicas_count_exactly(
    start_replicas: Callable[..., object], postgres_database: str,
) -> None:
    replicas = await start_replicas(ONE_ACCOUNT)  # type: ignore[misc]
    for replica in replicas:
        await open_accounts(replica.handle.core)  # known to be fine on both: many leases at once
    leases: list[tuple[Replica, str]] = []
    for replica in replicas:  # 50 leases on each replica, all taken before the first 429 cools the account
        for _ in range(50):
            lease = await replica.stub.SelectAccount(pb.SelectAccountRequest(pool="p", model="gpt-4o"), timeout=5)
            leases.append((replica, lease.lease_id))

    answers = await asyncio.gather(*(
        replica.stub.ReportOutcome(pb.ReportOutcomeRequest(
            lease_id=lease_id, outcome=pb.OUTCOME_RATE_LIMITED, http_status=429, retry_after_ms=30_000), timeout=10)
        for replica, lease_id in leases))
    assert all(answer.recorded for answer in answers)

    repository = StateRepository.open(postgres_database)
    try:
        row = await repository.fetch("p/only")
    finally:
        await repository.close()
    assert row is not None
    # Every 429 counts; the 429s were for gpt-4o, so the account rests for that model (cooldown_scope: model). The
    # backoff steps once per replica that heard the news first (once if the other replica's rest reached it before
    # its own first 429 did).
    assert row.rate_limited_total == 100 and row.version >= 100 and row.cooldown_until == 0.0
    until, _reason, streak = row.scope_rests["gpt-4o"]
    assert streak in (1, 2) and 0 < until - time.time() <= 30.0
    for replica in replicas:  # each replica takes over the merged count: 100, not its own 50 nor 150
        assert await replica.until("p/only", lambda a: a.rate_limited_total == 100) < 1.0
        assert await replica.until("p/only", lambda a: [c.scope for c in a.model_cooldowns] == ["gpt-4o"]) < 1.0
        assert (await replica.account("p/only")).state == pb.ACCOUNT_STATE_HEALTHY  # for other models

    # The usage log is shared too: either replica reports every attempt.
    async def rate_limited_in_usage() -> int:
        usage = await replicas[0].stub.GetUsage(pb.GetUsageRequest(pool="p"), timeout=5)
        return sum(row.rate_limited for row in usage.rows)

    for _ in range(50):  # the other replica writes its usage records within a second or so
        if (count := await rate_limited_in_usage()) >= 100:
            break
        await asyncio.sleep(0.1)
    assert count == 100


async def test_changed_key_starts_clean_on_postgresql(postgres_database: str) -> None:
    repository = StateRepository.open(postgres_database)
    try:
        await repository.load([("p/a", "p", "a", "…0001", "old-fingerprint")])
        from selector_service.domain.state import StateChange

        await repository.apply([
            StateChange("p/a").add("auth_failures_total").set("disabled", True).set("disabled_reason", "401")])
        saved = await repository.load([("p/a", "p", "a", "…0001", "old-fingerprint")])
        assert saved["p/a"].disabled and saved["p/a"].version == 1
        saved = await repository.load([("p/a", "p", "a", "…0002", "new-fingerprint")])
        assert not saved["p/a"].disabled and saved["p/a"].credential_fingerprint == "new-fingerprint"
        assert saved["p/a"].version == 2  # the reset is a change other replicas see
        watermark, rows = await repository.changed_since(None)
        assert [r.account_id for r in rows] == ["p/a"] and watermark > time.time() - 60
        _, rows = await repository.changed_since(watermark + 60)  # past the look-back: nothing changed since
        assert rows == []
    finally:
        await repository.close()

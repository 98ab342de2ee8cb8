"""Clients' budgets on two selector replicas sharing one PostgreSQL database: spend reported on both adds up exactly,
and a budget spent through one replica is refused by the other within about a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest

from poolgate.v1 import selector_pb2 as pb
from tests.postgres.test_replicas import Replica, start_replicas  # noqa: F401  (the fixture)

PRICED = """
prices:
  m: {input: 10000, output: 0}
pools:
  p:
    accounts:
      - {name: a, key: sk-test-budget-a-0001, max_concurrency: 100}
      - {name: b, key: sk-test-budget-b-0002, max_concurrency: 100}
"""
"""One input token of model m costs one cent."""


def selection(budget: float) -> pb.SelectAccountRequest:
    return pb.SelectAccountRequest(pool="p", model="m", client=pb.ClientLimits(name="team", daily_budget_usd=budget))


async def spend_a_cent(replica: Replica, budget: float) -> None:
    lease = await replica.stub.SelectAccount(selection(budget), timeout=5)
    await replica.stub.ReportOutcome(pb.ReportOutcomeRequest(
        lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS, http_status=200, input_tokens=1), timeout=5)


async def test_spend_on_two_replicas_adds_up_and_a_spent_budget_is_refused_by_both(
    start_replicas: Callable[..., object],  # noqa: F811  (the fixture imported above)
) -> None:
    one, other = await start_replicas(PRICED)  # type: ignore[misc]
    await asyncio.gather(*(spend_a_cent(replica, 10.0) for _ in range(20) for replica in (one, other)))
    deadline = time.monotonic() + 5
    periods = one.handle.core.clients.periods("UTC", time.time())
    while True:
        spent = [replica.handle.core.clients.spent("team", periods.day) for replica in (one, other)]
        if all(abs(value - 0.40) < 1e-9 for value in spent) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    assert spent == pytest.approx([0.40, 0.40], abs=1e-9)

    await spend_a_cent(one, 0.41)  # reaches the budget of 0.41 through the first replica
    started = time.monotonic()
    while True:
        try:
            lease = await other.stub.SelectAccount(selection(0.41), timeout=5)
        except grpc.aio.AioRpcError as exc:
            assert exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
            trailers = dict(exc.trailing_metadata() or ())
            assert trailers["poolgate-cause"] == "client_budget"
            assert 0 < int(trailers["retry-after-ms"]) <= 86_400_000
            assert "'team' has spent its daily budget of $0.41" in (exc.details() or "")
            break
        await other.stub.ReportOutcome(pb.ReportOutcomeRequest(
            lease_id=lease.lease_id, outcome=pb.OUTCOME_CANCELLED), timeout=5)
        assert time.monotonic() - started < 2.0, "the other replica never saw the spent budget"
        await asyncio.sleep(0.01)
    seen_after = time.monotonic() - started
    assert seen_after < 1.5
    print(f"the other replica refused the spent budget after {seen_after:.3f} s")

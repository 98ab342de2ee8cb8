"""The Exchange stream has the unary calls' semantics: leases, errors, waiting, cancellation, reports."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from selector_service.app import SelectorHandle
from tests.support import eventually_async

CONFIG = """
pools:
  openai:
    accounts:
      - {name: a, key: sk-test-aaaaaaaa1111, max_concurrency: 1}
      - {name: b, key: sk-test-bbbbbbbb2222, max_concurrency: 1}
"""


@pytest.fixture
def selector_yaml() -> str:
    return CONFIG


def select(id: int, pool: str = "openai", timeout_ms: int = 0, exclude: tuple[str, ...] = ()) -> pb.StreamSelect:
    return pb.StreamSelect(id=id, timeout_ms=timeout_ms,
                           request=pb.SelectAccountRequest(pool=pool, exclude_account_ids=list(exclude)))


async def results(call: grpc.aio.StreamStreamCall, count: int) -> dict[int, pb.StreamResult]:
    found: dict[int, pb.StreamResult] = {}
    while len(found) < count:
        message = await asyncio.wait_for(call.read(), 5)
        assert message is not grpc.aio.EOF
        found.update({r.id: r for r in message.results})
    return found


async def in_flight(stub: selector_pb2_grpc.SelectorStub) -> int:
    listing = await stub.ListAccounts(pb.ListAccountsRequest(), timeout=2)
    return sum(a.in_flight for p in listing.pools for a in p.accounts)


async def _no_leases(stub: selector_pb2_grpc.SelectorStub) -> bool:
    return await in_flight(stub) == 0


async def waiting(stub: selector_pb2_grpc.SelectorStub, count: int) -> bool:
    listing = await stub.ListAccounts(pb.ListAccountsRequest(), timeout=2)
    return listing.pools[0].waiting == count


async def test_batched_selections_and_reports(stub: selector_pb2_grpc.SelectorStub) -> None:
    call = stub.Exchange()
    await call.write(pb.ExchangeRequest(selects=[select(1), select(2)]))
    got = await results(call, 2)
    names = sorted(got[i].lease.account_name for i in (1, 2))
    assert names == ["a", "b"]
    assert await in_flight(stub) == 2
    await call.write(pb.ExchangeRequest(reports=[
        pb.ReportOutcomeRequest(lease_id=got[i].lease.lease_id, outcome=pb.OUTCOME_SUCCESS) for i in (1, 2)]))
    await eventually_async(lambda: _no_leases(stub), what="every lease reported")
    await call.done_writing()
    assert await call.read() is grpc.aio.EOF


async def test_errors_carry_status_codes(stub: selector_pb2_grpc.SelectorStub) -> None:
    call = stub.Exchange()
    await call.write(pb.ExchangeRequest(selects=[select(1, pool="nope"), select(2, pool=""), select(3), select(4)]))
    got = await results(call, 4)
    assert got[1].error.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert got[2].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and got[2].error.message.startswith("pool")
    await call.write(pb.ExchangeRequest(selects=[select(6, timeout_ms=-1)]))
    negative = (await results(call, 1))[6]
    assert negative.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert negative.error.message.startswith("timeout_ms")
    await call.write(pb.ExchangeRequest(selects=[select(5)]))
    busy = (await results(call, 1))[5]
    assert busy.error.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0] and busy.error.cause == "busy"
    await call.done_writing()


async def test_waiting_selection_is_served_when_a_lease_returns(stub: selector_pb2_grpc.SelectorStub) -> None:
    call = stub.Exchange()
    await call.write(pb.ExchangeRequest(selects=[select(1), select(2)]))
    held = await results(call, 2)
    await call.write(pb.ExchangeRequest(selects=[select(3, timeout_ms=3000)]))
    await eventually_async(lambda: waiting(stub, 1), what="selection 3 queued")
    await call.write(pb.ExchangeRequest(reports=[
        pb.ReportOutcomeRequest(lease_id=held[1].lease.lease_id, outcome=pb.OUTCOME_SUCCESS)]))
    served = (await results(call, 1))[3]
    assert served.lease.account_name == held[1].lease.account_name
    await call.done_writing()


async def test_cancel_withdraws_a_waiting_selection(stub: selector_pb2_grpc.SelectorStub) -> None:
    call = stub.Exchange()
    await call.write(pb.ExchangeRequest(selects=[select(1), select(2)]))
    await results(call, 2)
    await call.write(pb.ExchangeRequest(selects=[select(3, timeout_ms=5000)]))
    await eventually_async(lambda: waiting(stub, 1), what="selection 3 queued")
    await call.write(pb.ExchangeRequest(cancels=[3]))
    await eventually_async(lambda: waiting(stub, 0), what="the withdrawn selection gone from the queue")
    await call.done_writing()
    assert await asyncio.wait_for(call.read(), 5) is grpc.aio.EOF  # nothing was sent for the withdrawn id


async def test_duplicate_id_in_flight_is_rejected(stub: selector_pb2_grpc.SelectorStub) -> None:
    call = stub.Exchange()
    await call.write(pb.ExchangeRequest(selects=[select(1), select(2)]))
    await results(call, 2)
    await call.write(pb.ExchangeRequest(selects=[select(7, timeout_ms=2000), select(7)]))
    duplicate = (await results(call, 1))[7]
    assert duplicate.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    call.cancel()


async def test_a_strategy_that_breaks_fails_its_selection_and_the_stream_goes_on(
    selector: SelectorHandle, stub: selector_pb2_grpc.SelectorStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    strategy = selector.core.pools["openai"].strategy

    def broken(*_args: object) -> object:
        raise ZeroDivisionError("a bug in the plugin")

    call = stub.Exchange()
    with monkeypatch.context() as patch:
        patch.setattr(strategy, "select", broken)
        await call.write(pb.ExchangeRequest(selects=[select(1)]))
        failed = (await results(call, 1))[1]
    assert failed.error.code == grpc.StatusCode.INTERNAL.value[0]
    assert "a bug in the plugin" in failed.error.message
    await call.write(pb.ExchangeRequest(selects=[select(2)]))
    assert (await results(call, 1))[2].lease.lease_id  # the same stream still answers
    await call.done_writing()

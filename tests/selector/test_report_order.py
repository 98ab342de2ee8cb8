"""Reports before selections: a report is applied before any selection the same client sends after it, so a retry
never gets the account whose 429 it is retrying (the Exchange stream: even within one message)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from selector_service.app import SelectorHandle
from tests.selector.conftest import open_accounts

# fill_first: `a` whenever it is available, so a selection decided before the 429 is applied would get it.
CONFIG = """
pools:
  openai:
    strategy: fill_first
    accounts:
      - {name: a, key: sk-test-aaaaaaaa1111}
      - {name: b, key: sk-test-bbbbbbbb2222}
"""


@pytest.fixture
def selector_yaml() -> str:
    return CONFIG


def rate_limited(lease: pb.Lease) -> pb.ReportOutcomeRequest:
    return pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=pb.OUTCOME_RATE_LIMITED, http_status=429,
                                   retry_after_ms=60_000)


async def test_a_429_and_the_retry_in_one_stream_message(selector: SelectorHandle) -> None:
    await open_accounts(selector.core)
    async with grpc.aio.insecure_channel(selector.address) as channel:
        call = selector_pb2_grpc.SelectorStub(channel).Exchange()
        request = pb.SelectAccountRequest(pool="openai")
        await call.write(pb.ExchangeRequest(selects=[pb.StreamSelect(id=1, request=request)]))
        first = (await asyncio.wait_for(call.read(), 5)).results[0].lease
        assert first.account_name == "a"
        # The retry travels with the 429 in one message, and does not exclude `a` itself.
        await call.write(pb.ExchangeRequest(reports=[rate_limited(first)],
                                            selects=[pb.StreamSelect(id=2, request=request)]))
        retry = (await asyncio.wait_for(call.read(), 5)).results[0]
        assert retry.id == 2 and retry.lease.account_name == "b"
        await call.done_writing()


async def test_a_429_reported_by_a_unary_call_counts_for_the_next_selection(selector: SelectorHandle) -> None:
    await open_accounts(selector.core)
    async with grpc.aio.insecure_channel(selector.address) as channel:
        stub = selector_pb2_grpc.SelectorStub(channel)
        first = await stub.SelectAccount(pb.SelectAccountRequest(pool="openai"), timeout=5)
        assert first.account_name == "a"
        answer = await stub.ReportOutcome(rate_limited(first), timeout=5)
        assert answer.recorded and answer.account_state == pb.ACCOUNT_STATE_COOLING
        again = await stub.SelectAccount(pb.SelectAccountRequest(pool="openai"), timeout=5)
        assert again.account_name == "b"


async def test_an_early_report_opens_a_probing_account_and_keeps_the_lease(selector: SelectorHandle) -> None:
    async with grpc.aio.insecure_channel(selector.address) as channel:
        stub = selector_pb2_grpc.SelectorStub(channel)
        probe = await stub.SelectAccount(pb.SelectAccountRequest(pool="openai"), timeout=5)
        assert probe.account_name == "a" and probe.probe
        listing = await stub.ListAccounts(pb.ListAccountsRequest(pool="openai"), timeout=5)
        a = listing.pools[0].accounts[0]
        assert a.state == pb.ACCOUNT_STATE_PROBING and a.probe_reason == pb.PROBE_REASON_NEW
        # Its probe is out: the next selection goes to `b`, a probe as well.
        assert (await stub.SelectAccount(pb.SelectAccountRequest(pool="openai"), timeout=5)).account_name == "b"
        early = await stub.ReportOutcome(pb.ReportOutcomeRequest(
            lease_id=probe.lease_id, outcome=pb.OUTCOME_SUCCESS, http_status=200, early=True), timeout=5)
        assert early.recorded and early.account_state == pb.ACCOUNT_STATE_HEALTHY
        after = await stub.SelectAccount(pb.SelectAccountRequest(pool="openai"), timeout=5)
        assert after.account_name == "a" and not after.probe
        accounts = selector.core.pools["openai"].accounts
        assert accounts["openai/a"].in_flight == 2  # the probe's lease is still held until its final report
        final = await stub.ReportOutcome(pb.ReportOutcomeRequest(lease_id=probe.lease_id,
                                                                 outcome=pb.OUTCOME_SUCCESS), timeout=5)
        assert final.recorded and accounts["openai/a"].in_flight == 1
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ReportOutcome(pb.ReportOutcomeRequest(
                lease_id=after.lease_id, outcome=pb.OUTCOME_RATE_LIMITED, early=True), timeout=5)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "early report carries OUTCOME_SUCCESS" in (caught.value.details() or "")

"""The Selector service over a real grpc.aio server on loopback, driven by a real client."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from selector_service.app import SelectorHandle

CONFIG = """
pools:
  openai:
    accounts:
      - {name: personal, key: sk-test-personal-9f3a}
      - {name: work, key: sk-test-work-77c1, max_concurrency: 1}
  claude:
    format: anthropic
    headers: {anthropic-version: "2023-06-01"}
    api_key: sk-ant-test-claude-5e5e
"""


@pytest.fixture
def selector_yaml() -> str:
    return CONFIG


async def test_lease_carries_what_the_client_needs(stub: selector_pb2_grpc.SelectorStub) -> None:
    lease = await stub.SelectAccount(pb.SelectAccountRequest(pool="claude", model="claude-x"), timeout=2)
    assert lease.lease_id and lease.account_id == "claude/key-1" and lease.account_name == "key-1"
    assert lease.base_url == "https://api.anthropic.com"
    assert (lease.credential.name, lease.credential.value) == ("x-api-key", "sk-ant-test-claude-5e5e")
    assert [(h.name, h.value) for h in lease.extra_headers] == [("anthropic-version", "2023-06-01")]
    assert lease.format == pb.API_FORMAT_ANTHROPIC
    assert lease.expires_at.seconds > 0
    openai = await stub.SelectAccount(pb.SelectAccountRequest(pool="openai"), timeout=2)
    assert openai.credential.name == "authorization" and openai.credential.value.startswith("Bearer sk-test-")


async def test_round_robin_and_exclusions(stub: selector_pb2_grpc.SelectorStub) -> None:
    seen = []
    for _ in range(4):
        lease = await stub.SelectAccount(pb.SelectAccountRequest(pool="openai"), timeout=2)
        seen.append(lease.account_name)
        await stub.ReportOutcome(pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS))
    assert sorted(seen) == ["personal", "personal", "work", "work"]
    for _ in range(3):
        lease = await stub.SelectAccount(
            pb.SelectAccountRequest(pool="openai", exclude_account_ids=["openai/work"]), timeout=2)
        assert lease.account_name == "personal"


async def test_unknown_pool_is_not_found(stub: selector_pb2_grpc.SelectorStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.SelectAccount(pb.SelectAccountRequest(pool="gemini"), timeout=2)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert "configured pools: claude, openai" in (exc.value.details() or "")


@pytest.mark.parametrize(("message", "field"), [
    (pb.SelectAccountRequest(pool=""), "pool"),
    (pb.SelectAccountRequest(pool="openai", estimated_input_tokens=-5), "estimated_input_tokens"),
])
async def test_bad_select_arguments(stub: selector_pb2_grpc.SelectorStub, message: object, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.SelectAccount(message, timeout=2)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (exc.value.details() or "").startswith(field)


async def test_bad_report_arguments(stub: selector_pb2_grpc.SelectorStub) -> None:
    for message, field in [
        (pb.ReportOutcomeRequest(lease_id="x"), "outcome"),
        (pb.ReportOutcomeRequest(outcome=pb.OUTCOME_SUCCESS), "lease_id"),
        (pb.ReportOutcomeRequest(lease_id="x", outcome=pb.OUTCOME_SUCCESS, latency_ms=-1), "latency_ms"),
        (pb.ReportOutcomeRequest(lease_id="x", outcome=99), "outcome"),  # type: ignore[arg-type]
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.ReportOutcome(message, timeout=2)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, field
        assert (exc.value.details() or "").startswith(field)


async def test_exhausted_pool_reports_retry_time(stub: selector_pb2_grpc.SelectorStub) -> None:
    lease = await stub.SelectAccount(pb.SelectAccountRequest(pool="claude"), timeout=2)
    response = await stub.ReportOutcome(pb.ReportOutcomeRequest(
        lease_id=lease.lease_id, outcome=pb.OUTCOME_RATE_LIMITED, http_status=429, retry_after_ms=42_000))
    assert response.recorded and response.account_state == pb.ACCOUNT_STATE_COOLING
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.SelectAccount(pb.SelectAccountRequest(pool="claude"), timeout=2)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailers = dict(exc.value.trailing_metadata() or ())
    assert 40_000 < int(trailers["retry-after-ms"]) <= 42_000
    assert trailers["poolgate-cause"] == "rate_limited"
    assert "earliest account frees up in 4" in (exc.value.details() or "")


async def test_busy_pool_answers_before_the_callers_deadline(stub: selector_pb2_grpc.SelectorStub) -> None:
    held = [await stub.SelectAccount(pb.SelectAccountRequest(pool="openai", exclude_account_ids=["openai/personal"]),
                                     timeout=2)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.SelectAccount(pb.SelectAccountRequest(pool="openai", exclude_account_ids=["openai/personal"]),
                                 timeout=0.5)
    assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # not DEADLINE_EXCEEDED: the client learns why
    assert loop.time() - started < 0.6
    assert held[0].account_name == "work"


async def test_list_accounts_never_shows_a_secret(stub: selector_pb2_grpc.SelectorStub) -> None:
    lease = await stub.SelectAccount(pb.SelectAccountRequest(pool="openai"), timeout=2)
    await stub.ReportOutcome(pb.ReportOutcomeRequest(
        lease_id=lease.lease_id, outcome=pb.OUTCOME_AUTH_FAILED, http_status=401, detail="bad key"))
    listing = await stub.ListAccounts(pb.ListAccountsRequest(), timeout=2)
    assert [p.name for p in listing.pools] == ["openai", "claude"]
    accounts = {a.name: a for a in listing.pools[0].accounts}
    disabled = accounts[lease.account_name]
    assert disabled.state == pb.ACCOUNT_STATE_DISABLED and "401" in disabled.reason
    assert accounts["personal"].credential_redacted == "…9f3a"
    text = str(listing)
    for secret in ("sk-test-personal-9f3a", "sk-test-work-77c1", "sk-ant-test-claude-5e5e"):
        assert secret not in text
    only = await stub.ListAccounts(pb.ListAccountsRequest(pool="claude"), timeout=2)
    assert [p.name for p in only.pools] == ["claude"]
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.ListAccounts(pb.ListAccountsRequest(pool="nope"), timeout=2)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_and_reflection_are_served(selector: SelectorHandle) -> None:
    async with grpc.aio.insecure_channel(selector.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "poolgate.v1.Selector"):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = [s.name async for r in responses for s in r.list_services_response.service]
        assert "poolgate.v1.Selector" in names and "grpc.health.v1.Health" in names


async def test_a_report_with_an_absurd_count_is_refused_and_the_lease_stays_open(
    stub: selector_pb2_grpc.SelectorStub,
) -> None:
    """Counts beyond any real request are a caller's bug; accepted, they would overflow the 64-bit totals and usage
    sums. The lease stays open, so a corrected report is still recorded."""
    lease = await stub.SelectAccount(pb.SelectAccountRequest(pool="openai"), timeout=2)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.ReportOutcome(pb.ReportOutcomeRequest(
            lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS, input_tokens=2**63 - 1), timeout=2)
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (exc.value.details() or "").startswith("input_tokens: must be at most 1,000,000,000,000")
    answer = await stub.ReportOutcome(pb.ReportOutcomeRequest(
        lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS, input_tokens=12), timeout=2)
    assert answer.recorded


def test_usage_sums_beyond_64_bits_are_capped_not_an_error() -> None:
    """A usage log written before reports were bounded may sum past 2^63; the row still goes out."""
    from selector_service.api.mapping import INT64_MAX, usage_row
    from selector_service.domain.usage import UsageRollup

    rollup = UsageRollup(0.0, "openai", "openai/a", "a", requests=2, input_tokens=2**63 + 7793, output_tokens=5,
                         latencies=[10, 20])
    row = usage_row(rollup)
    assert (row.input_tokens, row.output_tokens, row.requests) == (INT64_MAX, 5, 2)

"""Random field values in every request message of the Selector service: each call succeeds or fails with a status
a client can act on (INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, FAILED_PRECONDITION), never UNKNOWN or
INTERNAL, and the selector keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from tests.fuzz.conftest import FUZZ, BackgroundStack

ACTIONABLE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.RESOURCE_EXHAUSTED,
              grpc.StatusCode.FAILED_PRECONDITION}
STREAM_CODES = {code.value[0] for code in ACTIONABLE}
ACCOUNT_IDS = ["openai/one", "openai/two", "anthropic/one"]
HEADER_NAMES = ["retry-after", "retry-after-ms", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests",
                "x-ratelimit-limit-tokens", "anthropic-ratelimit-requests-remaining",
                "anthropic-ratelimit-input-tokens-reset", "anthropic-ratelimit-output-tokens-limit"]

text = st.text(max_size=30)
int32 = st.integers(-(2**31), 2**31 - 1)
int64 = st.integers(-(2**63), 2**63 - 1)
small_or_any = st.integers(-5, 100_000) | int64
pools = st.sampled_from(["openai", "anthropic"]) | text
header_values = (st.integers(-(10**12), 10**12).map(str) | st.floats(allow_nan=True).map(str)
                 | st.sampled_from(["1s", "6m0s", "20ms", "2026-01-01T00:00:00Z", "Wed, 21 Oct 2015 07:28:00 GMT"])
                 | text)


@st.composite
def select_requests(draw: st.DrawFn) -> pb.SelectAccountRequest:
    request = pb.SelectAccountRequest(
        pool=draw(pools), model=draw(text), session_key=draw(text),
        exclude_account_ids=draw(st.lists(st.sampled_from(ACCOUNT_IDS) | text, max_size=4)))
    if draw(st.booleans()):
        request.estimated_input_tokens = draw(small_or_any)
    return request


@st.composite
def report_requests(draw: st.DrawFn, leases: list[str]) -> pb.ReportOutcomeRequest:
    # The same draws whatever ``leases`` holds (hypothesis replays draws): a flag, an index and a random id.
    real, index, made_up = draw(st.booleans()), draw(st.integers(0, 1000)), draw(text)
    lease_id = leases[-1 - index % len(leases)] if real and leases else made_up
    return pb.ReportOutcomeRequest(
        lease_id=lease_id, outcome=draw(st.integers(-2, 12)), http_status=draw(st.integers(-5, 1200) | int32),
        retry_after_ms=draw(small_or_any), latency_ms=draw(small_or_any), time_to_first_token_ms=draw(small_or_any),
        input_tokens=draw(small_or_any), output_tokens=draw(small_or_any),
        rate_limit_headers=draw(st.dictionaries(st.sampled_from(HEADER_NAMES) | text, header_values, max_size=4)),
        detail=draw(st.text(max_size=300)))


def timestamp(seconds: int, nanos: int) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


@st.composite
def usage_requests(draw: st.DrawFn) -> pb.GetUsageRequest:
    request = pb.GetUsageRequest(pool=draw(st.sampled_from(["", "openai"]) | text),
                                 account=draw(st.sampled_from(["", "one", "openai/two"]) | text),
                                 bucket=draw(st.integers(-1, 6)))
    # Whole valid Timestamp range (years 1 to 9999), and around now.
    seconds = st.integers(-62_135_596_800, 253_402_300_799) | st.integers(1_700_000_000, 1_900_000_000)
    for name in ("since", "until"):
        if draw(st.booleans()):
            getattr(request, name).CopyFrom(timestamp(draw(seconds), draw(st.integers(0, 999_999_999))))
    return request


@pytest.fixture(scope="module")
def channel(background_stack: BackgroundStack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(background_stack.selector.address) as opened:
        yield opened


def call(method: Any, request: Any) -> Any:
    """The answer, or None after a status a client can act on; anything else fails the test."""
    try:
        return method(request, timeout=5)
    except grpc.RpcError as exc:
        assert exc.code() in ACTIONABLE, (exc.code(), exc.details(), request)
        assert exc.details(), "an error must say what is wrong"
        return None


def test_random_select_and_report_messages(channel: grpc.Channel) -> None:
    stub = selector_pb2_grpc.SelectorStub(channel)
    leases: list[str] = []

    @FUZZ
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        lease = call(stub.SelectAccount, data.draw(select_requests()))
        if lease is not None:
            assert lease.lease_id and lease.account_id in ACCOUNT_IDS
            leases.append(lease.lease_id)
        answer = call(stub.ReportOutcome, data.draw(report_requests(leases)))
        if answer is not None and not answer.recorded:
            assert answer.detail.startswith("not recorded")

    check()
    assert leases, "no selection succeeded: the fuzzing never reached a lease"
    assert stub.ListAccounts(pb.ListAccountsRequest(), timeout=5).pools


def test_random_usage_queries(channel: grpc.Channel) -> None:
    stub = selector_pb2_grpc.SelectorStub(channel)

    @FUZZ
    @given(request=usage_requests())
    def check(request: pb.GetUsageRequest) -> None:
        answer = call(stub.GetUsage, request)
        if answer is not None:
            assert all(row.requests >= 0 for row in answer.rows)

    check()


def test_random_exchange_streams(channel: grpc.Channel) -> None:
    stub = selector_pb2_grpc.SelectorStub(channel)
    leases: list[str] = []

    @st.composite
    def exchange_messages(draw: st.DrawFn) -> list[pb.ExchangeRequest]:
        messages = []
        for _ in range(draw(st.integers(0, 4))):
            selects = [pb.StreamSelect(id=draw(st.integers(0, 5) | st.integers(0, 2**64 - 1)),
                                       request=draw(select_requests()),
                                       timeout_ms=draw(st.integers(-10, 200) | st.just(-(2**63))))
                       for _ in range(draw(st.integers(0, 3)))]
            reports = [draw(report_requests(leases)) for _ in range(draw(st.integers(0, 3)))]
            cancels = draw(st.lists(st.integers(0, 5) | st.integers(0, 2**64 - 1), max_size=3))
            messages.append(pb.ExchangeRequest(selects=selects, reports=reports, cancels=cancels))
        return messages

    @FUZZ
    @given(messages=exchange_messages())
    def check(messages: list[pb.ExchangeRequest]) -> None:
        asked = sum(len(m.selects) for m in messages)
        answered = 0
        try:
            for response in stub.Exchange(iter(messages), timeout=10):
                for result in response.results:
                    answered += 1
                    if result.HasField("lease"):
                        leases.append(result.lease.lease_id)
                    else:
                        assert result.error.code in STREAM_CODES and result.error.message, result
        except grpc.RpcError as exc:
            pytest.fail(f"the stream failed: {exc.code()} {exc.details()}")
        assert answered <= asked  # every selection is answered once at most (cancelled ones may not be)

    check()

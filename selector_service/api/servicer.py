"""The Selector gRPC service: maps requests to the domain and domain errors to status codes a client can act on."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from selector_service.api.exchange import ExchangeSession
from selector_service.api.mapping import (
    OUTCOMES,
    STATES,
    client_limits,
    lease_message,
    outcome_report,
    pool_status,
    selection_request,
    usage_row,
)
from selector_service.api.statuses import abort
from selector_service.api.topology import TopologyFeed
from selector_service.domain.errors import SelectorError
from selector_service.domain.selector import SelectorCore

if TYPE_CHECKING:
    from selector_service.api.metrics import SelectorMetrics

log = logging.getLogger("poolgate.selector.api")

# Answer RESOURCE_EXHAUSTED this long before the caller's deadline, so the answer (with its retry time) arrives.
DEADLINE_MARGIN = 0.05
BUCKETS = {pb.USAGE_BUCKET_UNSPECIFIED: "hour", pb.USAGE_BUCKET_MINUTE: "minute", pb.USAGE_BUCKET_HOUR: "hour",
           pb.USAGE_BUCKET_DAY: "day"}
MAX_MINUTE_RANGE = 86400.0


class SelectorServicer(selector_pb2_grpc.SelectorServicer):
    def __init__(self, core: SelectorCore, metrics: SelectorMetrics | None = None) -> None:
        self.core = core
        self.metrics = metrics
        self.topology = TopologyFeed(core)

    async def SelectAccount(
        self, request: pb.SelectAccountRequest, context: grpc.aio.ServicerContext[pb.SelectAccountRequest, pb.Lease]
    ) -> pb.Lease:
        remaining = context.time_remaining()
        timeout = None if remaining is None else max(0.0, remaining - DEADLINE_MARGIN)
        started = time.perf_counter()
        try:
            grant = await self.core.select(selection_request(request), request.exclude_account_ids, timeout,
                                           client_limits(request))
        except SelectorError as exc:
            await abort(context, exc)
        if self.metrics is not None:
            self.metrics.observe_selection(request.pool, time.perf_counter() - started, grant.waited)
        return lease_message(grant)

    async def ReportOutcome(
        self,
        request: pb.ReportOutcomeRequest,
        context: grpc.aio.ServicerContext[pb.ReportOutcomeRequest, pb.ReportOutcomeResponse],
    ) -> pb.ReportOutcomeResponse:
        outcome = OUTCOMES.get(request.outcome)
        if outcome is None:
            names = ", ".join(pb.Outcome.Name(v) for v in OUTCOMES)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"outcome: required, one of {names}")
        assert outcome is not None  # abort raised
        try:
            result = await self.core.report(outcome_report(request, outcome))
        except SelectorError as exc:
            await abort(context, exc)
        state = STATES[result.state] if result.state is not None else pb.ACCOUNT_STATE_UNSPECIFIED
        return pb.ReportOutcomeResponse(recorded=result.recorded, detail=result.detail, account_state=state)

    async def ListAccounts(
        self,
        request: pb.ListAccountsRequest,
        context: grpc.aio.ServicerContext[pb.ListAccountsRequest, pb.ListAccountsResponse],
    ) -> pb.ListAccountsResponse:
        try:
            snapshots = self.core.snapshots(request.pool)
        except SelectorError as exc:
            await abort(context, exc)
        return pb.ListAccountsResponse(pools=[pool_status(s) for s in snapshots])

    async def GetUsage(
        self, request: pb.GetUsageRequest, context: grpc.aio.ServicerContext[pb.GetUsageRequest, pb.GetUsageResponse]
    ) -> pb.GetUsageResponse:
        usage = self.core.usage
        if usage is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                "the usage log is off (selector.usage_log: false); turn it on to record usage")
        until = request.until.ToNanoseconds() / 1e9 if request.HasField("until") else time.time()
        since = request.since.ToNanoseconds() / 1e9 if request.HasField("since") else until - 86400.0
        if since >= until:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "since: must be before until")
        bucket = BUCKETS.get(request.bucket)
        if bucket is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bucket: must be MINUTE, HOUR or DAY")
        account_id = ""
        try:
            if request.pool:
                self.core.pool(request.pool)
            if request.account:
                if not request.pool:
                    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "account: give the pool too")
                account_id = request.account if "/" in request.account else f"{request.pool}/{request.account}"
        except SelectorError as exc:
            await abort(context, exc)
        if bucket == "minute" and until - since > MAX_MINUTE_RANGE:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "since: minute buckets cover at most 24 hours; narrow the range or use HOUR")
        assert usage is not None and bucket is not None  # abort raised otherwise
        rollups = await usage.rollup(since, until, bucket, request.pool, account_id, request.client,
                                     request.by_client)
        return pb.GetUsageResponse(rows=[usage_row(r) for r in rollups])

    async def Exchange(
        self,
        request_iterator: AsyncIterator[pb.ExchangeRequest],
        context: grpc.aio.ServicerContext[pb.ExchangeRequest, pb.ExchangeResponse],
    ) -> AsyncIterator[pb.ExchangeResponse]:
        async for response in ExchangeSession(self.core, self.metrics).run(request_iterator):
            yield response

    async def WatchTopology(
        self,
        request: pb.WatchTopologyRequest,
        context: grpc.aio.ServicerContext[pb.WatchTopologyRequest, pb.Topology],
    ) -> AsyncIterator[pb.Topology]:
        async for message in self.topology.watch(request.known_version):
            yield message

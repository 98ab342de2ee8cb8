"""The Selector gRPC service: maps requests to the domain and domain errors to status codes a client can act on."""

from __future__ import annotations

import logging

import grpc

from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from selector_service.api.mapping import OUTCOMES, STATES, lease_message, outcome_report, pool_status, selection_request
from selector_service.domain.errors import InvalidRequestError, NoAccountAvailableError, UnknownPoolError
from selector_service.domain.selector import SelectorCore

log = logging.getLogger("poolgate.selector.api")

# Answer RESOURCE_EXHAUSTED this long before the caller's deadline, so the answer (with its retry time) arrives.
DEADLINE_MARGIN = 0.05


class SelectorServicer(selector_pb2_grpc.SelectorServicer):
    def __init__(self, core: SelectorCore) -> None:
        self.core = core

    async def SelectAccount(  # noqa: N802 (gRPC method name)
        self, request: pb.SelectAccountRequest, context: grpc.aio.ServicerContext[pb.SelectAccountRequest, pb.Lease]
    ) -> pb.Lease:
        remaining = context.time_remaining()
        timeout = None if remaining is None else max(0.0, remaining - DEADLINE_MARGIN)
        try:
            grant = await self.core.select(selection_request(request), request.exclude_account_ids, timeout)
        except UnknownPoolError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        except InvalidRequestError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except NoAccountAvailableError as exc:
            metadata: list[tuple[str, str]] = [("poolgate-cause", exc.cause)]
            if exc.retry_after is not None:
                metadata.append(("retry-after-ms", str(max(1, int(exc.retry_after * 1000)))))
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc), trailing_metadata=tuple(metadata))
        return lease_message(grant)

    async def ReportOutcome(  # noqa: N802
        self,
        request: pb.ReportOutcomeRequest,
        context: grpc.aio.ServicerContext[pb.ReportOutcomeRequest, pb.ReportOutcomeResponse],
    ) -> pb.ReportOutcomeResponse:
        outcome = OUTCOMES.get(request.outcome)
        if outcome is None:
            names = ", ".join(pb.Outcome.Name(v) for v in OUTCOMES)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"outcome: required, one of {names}")
        try:
            result = await self.core.report(outcome_report(request, outcome))
        except InvalidRequestError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        state = STATES[result.state] if result.state is not None else pb.ACCOUNT_STATE_UNSPECIFIED
        return pb.ReportOutcomeResponse(recorded=result.recorded, detail=result.detail, account_state=state)

    async def ListAccounts(  # noqa: N802
        self,
        request: pb.ListAccountsRequest,
        context: grpc.aio.ServicerContext[pb.ListAccountsRequest, pb.ListAccountsResponse],
    ) -> pb.ListAccountsResponse:
        try:
            snapshots = self.core.snapshots(request.pool)
        except UnknownPoolError as exc:
            await context.abort(grpc.StatusCode.NOT_FOUND, str(exc))
        return pb.ListAccountsResponse(pools=[pool_status(s) for s in snapshots])

"""The edge's side of the selector contract: one long-lived grpc.aio channel, calls with deadlines, and gRPC
errors turned into what the client should see.

Calls use ``wait_for_ready=False``: while the selector is down they fail at once (UNAVAILABLE) instead of queueing,
and the channel reconnects by itself (short reconnect backoff) when the selector is back.
"""

from __future__ import annotations

import asyncio
import logging
import re

import grpc

from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc as pb_grpc

log = logging.getLogger("poolgate.edge")

# Reconnect soon after the selector comes back (gRPC's default backoff grows to 120 s). The minimum is also the
# connect timeout (time to the server's SETTINGS frame), so it stays at a generous 1 s.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 1000),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]
_RATE_LIMITED = re.compile(r"rate[- _]?limit|cooling|429", re.IGNORECASE)
_MAX_PENDING_REPORTS = 10_000


class SelectorError(Exception):
    """The selector gave no lease; ``status``/``code``/``message`` are what the client gets."""

    def __init__(self, status: int, code: str, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms


class SelectorClient:
    """Leases, outcome reports and account listings over one channel to the selector."""

    def __init__(self, address: str, timeout: float, token: str = "") -> None:
        self.address = address
        self.timeout = timeout
        # Sent with every call when the selector requires a bearer token (selector.auth.tokens).
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._channel = grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)
        self._stub = pb_grpc.SelectorStub(self._channel)  # type: ignore[no-untyped-call]
        self._pending: set[asyncio.Task[None]] = set()

    async def flush_reports(self) -> None:
        """Wait (up to the call timeout) for the background outcome reports sent so far."""
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self.timeout)

    async def close(self) -> None:
        """Wait briefly for reports still in flight, then close the channel."""
        await self.flush_reports()
        for task in list(self._pending):
            task.cancel()
        await self._channel.close()

    async def select(
        self, pool: str, model: str, session_key: str, exclude: list[str], estimated_input_tokens: int = 0
    ) -> pb.Lease:
        """A lease on one account of ``pool``; raises :class:`SelectorError` when there is none.

        If the caller is cancelled (the client went away) while the selector is granting a lease, the lease is
        handed back as CANCELLED instead of staying in flight until it expires.
        """
        request = pb.SelectAccountRequest(pool=pool, model=model, session_key=session_key, exclude_account_ids=exclude,
                                          estimated_input_tokens=estimated_input_tokens)
        task = asyncio.get_running_loop().create_task(self._select(request, pool))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._release_abandoned)
            raise

    async def _select(self, request: pb.SelectAccountRequest, pool: str) -> pb.Lease:
        try:
            lease: pb.Lease = await self._stub.SelectAccount(
                request, timeout=self.timeout, metadata=self._metadata, wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            raise self._translate(exc, pool) from None
        return lease

    def _release_abandoned(self, task: asyncio.Task[pb.Lease]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        self.report_later(pb.ReportOutcomeRequest(
            lease_id=task.result().lease_id, outcome=pb.OUTCOME_CANCELLED, detail="the client went away"))

    async def report(self, request: pb.ReportOutcomeRequest) -> pb.ReportOutcomeResponse | None:
        """Report an outcome and wait for the answer; failures are logged, never raised (the call is done)."""
        try:
            response: pb.ReportOutcomeResponse = await self._stub.ReportOutcome(
                request, timeout=self.timeout, metadata=self._metadata, wait_for_ready=False
            )
        except grpc.aio.AioRpcError as exc:
            log.warning("could not report an outcome to the selector at %s: %s %s",
                        self.address, exc.code().name, exc.details())
            return None
        return response

    def report_later(self, request: pb.ReportOutcomeRequest) -> asyncio.Task[None] | None:
        """Report in the background (the client's response does not wait for it; it survives cancellation)."""
        if len(self._pending) >= _MAX_PENDING_REPORTS:
            log.warning("selector at %s is not keeping up with outcome reports; dropping one", self.address)
            return None
        task = asyncio.get_running_loop().create_task(self._report_quietly(request))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def report_shielded(self, request: pb.ReportOutcomeRequest) -> None:
        """Report and wait for it; the report still goes out if the waiting caller is cancelled."""
        task = self.report_later(request)
        if task is not None:
            await asyncio.shield(task)

    async def _report_quietly(self, request: pb.ReportOutcomeRequest) -> None:
        await self.report(request)

    async def list_accounts(self, pool: str = "") -> pb.ListAccountsResponse:
        """Every account's state, per pool; raises :class:`SelectorError` when the selector cannot answer."""
        try:
            response: pb.ListAccountsResponse = await self._stub.ListAccounts(
                pb.ListAccountsRequest(pool=pool), timeout=self.timeout, metadata=self._metadata, wait_for_ready=False
            )
        except grpc.aio.AioRpcError as exc:
            raise self._translate(exc, pool) from None
        return response

    def _translate(self, exc: grpc.aio.AioRpcError, pool: str) -> SelectorError:
        code, details = exc.code(), exc.details() or ""
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
            retry_ms: int | None = None
            cause = ""
            for key, value in exc.trailing_metadata() or ():
                text = value.decode() if isinstance(value, bytes) else str(value)
                if key == "retry-after-ms":
                    try:
                        retry_ms = max(0, int(float(text)))
                    except ValueError:
                        pass
                elif key == "poolgate-cause":
                    cause = text
            rate_limited = cause == "rate_limited" if cause else bool(_RATE_LIMITED.search(details))
            message = details or f"no account of pool {pool!r} can serve now"
            return SelectorError(429 if rate_limited else 503, "no_account_available", message, retry_ms)
        if code is grpc.StatusCode.DEADLINE_EXCEEDED:
            return SelectorError(503, "selector_timeout", (
                f"no lease for pool {pool!r} within {self.timeout:g} s: every account is busy, or the selector at "
                f"{self.address} is overloaded; retry later"))
        if code is grpc.StatusCode.UNAVAILABLE:
            return SelectorError(503, "selector_unavailable", (
                f"the selector at {self.address} is unreachable ({details or 'unavailable'}); "
                "check that `poolgate selector` is running; the edge reconnects by itself"))
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return SelectorError(503, "selector_auth", (
                f"the selector at {self.address} refused the edge ({details}): the edge sends the first of "
                "selector.auth.tokens from its config; give the edge the same config as the selector"))
        if code is grpc.StatusCode.NOT_FOUND:
            return SelectorError(503, "pool_not_found", (
                f"the selector does not know pool {pool!r}: run the selector and the edge with the same config"))
        return SelectorError(503, "selector_error", f"the selector failed: {code.name} {details}")

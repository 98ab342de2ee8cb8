"""The edge's side of the selector contract: one long-lived grpc.aio channel, calls with deadlines, and gRPC
errors turned into what the client should see.

With the ``stream`` transport (the default) selections and reports travel over one Exchange stream, batched; with
``unary`` each is its own call. Either way, while the selector is unreachable a selection waits at most
``unavailable`` seconds (``edge.timeouts.selector_unavailable``) for the channel to reconnect (it retries every
quarter second) and is then answered 503 with Retry-After; a selector that comes back within that time serves it.
"""

from __future__ import annotations

import asyncio
import logging
import re

import grpc

from poolgate import selector_channel
from poolgate.config import ClientTLS
from poolgate.exchange_client import ExchangeClient
from poolgate.exchange_client import SelectError as StreamSelectError
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc as pb_grpc

log = logging.getLogger("poolgate.edge")

_RATE_LIMITED = re.compile(r"rate[- _]?limit|cooling|429", re.IGNORECASE)
_MAX_PENDING_REPORTS = 10_000
_READY_RETRY_PAUSE = 0.02
UNAVAILABLE_RETRY_AFTER_MS = 1000
"""What the client is told to wait (Retry-After) while the selector is unreachable: about one reconnect attempt."""
CLOSE_FLUSH_LIMIT = 2.0
"""Seconds a stopping edge waits at most for the selector to confirm the last outcome reports."""


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

    def __init__(
        self, address: str, timeout: float, token: str = "", tls: ClientTLS | None = None, transport: str = "stream",
        unavailable: float = 0.8,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.unavailable = unavailable
        self._ready: asyncio.Future[None] | None = None  # one wait for the channel to reconnect, shared by callers
        # Sent with every call when the selector requires a bearer token (selector.auth.tokens).
        self._metadata = selector_channel.metadata(token)
        # A stream stays on one replica, so streams may be spread; unary reports must reach the replica that granted
        # the lease, so unary calls all go to the first live replica.
        self._channel = selector_channel.open_aio_channel(address, tls or ClientTLS(), balance=transport == "stream")
        self._stub = pb_grpc.SelectorStub(self._channel)
        self._exchange = ExchangeClient(self._channel, self._metadata) if transport == "stream" else None
        self._pending: set[asyncio.Task[None]] = set()

    @property
    def channel(self) -> grpc.aio.Channel:
        """The channel to the selector, for the contract's other services (the dashboard's Admin calls)."""
        return self._channel

    async def flush_reports(self, limit: float | None = None) -> None:
        """Wait (up to ``limit``, default the call timeout) until the selector has the outcome reports sent so far."""
        limit = self.timeout if limit is None else limit
        if self._exchange is not None:
            try:
                await self._exchange.sync(limit)
            except StreamSelectError as exc:
                log.warning("could not confirm outcome reports with the selector at %s: %s", self.address, exc)
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=limit)

    async def close(self) -> None:
        """Wait briefly for reports still in flight, then close the channel."""
        await self.flush_reports(min(self.timeout, CLOSE_FLUSH_LIMIT))
        for task in list(self._pending):
            task.cancel()
        if self._ready is not None:
            self._ready.cancel()
        if self._exchange is not None:
            await self._exchange.close()
        await self._channel.close()

    async def select(
        self, pool: str, model: str, session_key: str, exclude: list[str], estimated_input_tokens: int = 0,
        light: bool = False, conversation: bool = False,
    ) -> pb.Lease:
        """A lease on one account of ``pool``; raises :class:`SelectorError` when there is none.

        If the caller is cancelled (the client went away) while the selector is granting a lease, the lease is
        handed back as CANCELLED instead of staying in flight until it expires.
        """
        request = pb.SelectAccountRequest(pool=pool, model=model, session_key=session_key, exclude_account_ids=exclude,
                                          estimated_input_tokens=estimated_input_tokens, light=light,
                                          conversation=conversation)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        give_up = loop.time() + min(self.unavailable, self.timeout)
        if self._exchange is not None:  # the stream client hands back a lease granted to a cancelled caller itself
            while True:
                try:
                    return await self._exchange.select(request, max(0.05, deadline - loop.time()))
                except StreamSelectError as exc:
                    # A broken stream (selector restarted, or one replica of several gone) is retried on a new
                    # stream once the channel is connected again: with several selectors, it picks a live one.
                    if exc.code is grpc.StatusCode.UNAVAILABLE and await self._reconnected(give_up):
                        continue
                    raise self._error(exc.code, exc.message, exc.retry_after_ms or None, exc.cause, pool) from None
        task = loop.create_task(self._select(request, pool, deadline, give_up))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._release_abandoned)
            raise

    async def _select(self, request: pb.SelectAccountRequest, pool: str, deadline: float, give_up: float) -> pb.Lease:
        loop = asyncio.get_running_loop()
        while True:
            try:
                lease: pb.Lease = await self._stub.SelectAccount(
                    request, timeout=max(0.05, deadline - loop.time()), metadata=self._metadata,
                    wait_for_ready=False)
            except grpc.aio.AioRpcError as exc:
                if exc.code() is grpc.StatusCode.UNAVAILABLE and await self._reconnected(give_up):
                    continue
                raise self._translate(exc, pool) from None
            return lease

    async def _reconnected(self, until: float) -> bool:
        """After an UNAVAILABLE: wait (up to loop time ``until``) for the channel to connect; False if it does not.

        Callers share one wait. A channel that is connected already (the stream broke, but another replica, or the
        restarted selector, answers) is retried after a short pause, so a failing selector is not called in a loop.
        """
        loop = asyncio.get_running_loop()
        remaining = until - loop.time()
        if remaining <= 0:
            return False
        if self._channel.get_state(try_to_connect=True) is grpc.ChannelConnectivity.READY:
            await asyncio.sleep(min(_READY_RETRY_PAUSE, remaining))
            return loop.time() < until
        ready = self._ready
        if ready is None or ready.done():
            ready = self._ready = asyncio.ensure_future(self._channel.channel_ready())
        done, _ = await asyncio.wait((ready,), timeout=remaining)
        return bool(done) and not ready.cancelled() and ready.exception() is None

    def _release_abandoned(self, task: asyncio.Task[pb.Lease]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        self.report_later(pb.ReportOutcomeRequest(
            lease_id=task.result().lease_id, outcome=pb.OUTCOME_CANCELLED, detail="the client went away"))

    async def _report_unary(self, request: pb.ReportOutcomeRequest) -> None:
        """One ReportOutcome call; failures are logged, never raised (the client's call is done)."""
        try:
            await self._stub.ReportOutcome(request, timeout=self.timeout, metadata=self._metadata,
                                           wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            log.warning("could not report an outcome to the selector at %s: %s %s",
                        self.address, exc.code().name, exc.details())

    def report_later(self, request: pb.ReportOutcomeRequest) -> asyncio.Task[None] | None:
        """Report in the background (the client's response does not wait for it; it survives cancellation)."""
        if self._exchange is not None:
            self._exchange.report(request)
            return None
        if len(self._pending) >= _MAX_PENDING_REPORTS:
            log.warning("selector at %s is not keeping up with outcome reports; dropping one", self.address)
            return None
        task = asyncio.get_running_loop().create_task(self._report_unary(request))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def report_shielded(self, request: pb.ReportOutcomeRequest) -> None:
        """Report and wait for it; the report still goes out if the waiting caller is cancelled."""
        task = self.report_later(request)
        if task is not None:
            await asyncio.shield(task)

    async def list_accounts(self, pool: str = "") -> pb.ListAccountsResponse:
        """Every account's state, per pool; raises :class:`SelectorError` when the selector cannot answer (404
        ``pool_not_found`` for a pool it does not have)."""
        try:
            response: pb.ListAccountsResponse = await self._stub.ListAccounts(
                pb.ListAccountsRequest(pool=pool), timeout=self.timeout, metadata=self._metadata, wait_for_ready=False
            )
        except grpc.aio.AioRpcError as exc:
            raise self._query_error(exc, pool) from None
        return response

    async def get_usage(self, request: pb.GetUsageRequest) -> pb.GetUsageResponse:
        """Usage rollups from the selector's usage log; bad arguments (the message starts with the field) are 400s,
        an unknown pool 404, the usage log turned off 503 ``usage_log_off``."""
        try:
            response: pb.GetUsageResponse = await self._stub.GetUsage(
                request, timeout=self.timeout, metadata=self._metadata, wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            raise self._query_error(exc, request.pool) from None
        return response

    def _query_error(self, exc: grpc.aio.AioRpcError, pool: str) -> SelectorError:
        """A query's (ListAccounts, GetUsage) failure: the caller's mistakes as 4xx, the rest as for selections."""
        code, details = exc.code(), exc.details() or ""
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            return SelectorError(400, "invalid_parameter", details)
        if code is grpc.StatusCode.NOT_FOUND:
            return SelectorError(404, "pool_not_found", details or f"unknown pool {pool!r}")
        if code is grpc.StatusCode.FAILED_PRECONDITION:
            return SelectorError(503, "usage_log_off", details)
        return self._translate(exc, pool)

    def _translate(self, exc: grpc.aio.AioRpcError, pool: str) -> SelectorError:
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
        return self._error(exc.code(), exc.details() or "", retry_ms, cause, pool)

    def _error(
        self, code: grpc.StatusCode, details: str, retry_ms: int | None, cause: str, pool: str
    ) -> SelectorError:
        if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
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
                "check that `poolgate selector` is running; the edge reconnects by itself"),
                UNAVAILABLE_RETRY_AFTER_MS)
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            return SelectorError(503, "selector_auth", (
                f"the selector at {self.address} refused the edge ({details}): the edge sends the first of "
                "selector.auth.tokens from its config; give the edge the same config as the selector"))
        if code is grpc.StatusCode.NOT_FOUND:
            return SelectorError(503, "pool_not_found", (
                f"the selector does not know pool {pool!r}: run the selector and the edge with the same config"))
        return SelectorError(503, "selector_error", f"the selector failed: {code.name} {details}")

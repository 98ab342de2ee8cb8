"""The two ways the edge talks to one selector replica, behind one :class:`SelectorLink` interface.

``edge.selector_transport`` picks one when the edge starts: :class:`StreamLink` (the default) multiplexes selections
and reports over one Exchange stream (:mod:`poolgate.exchange_client`); :class:`UnaryLink` makes each its own call.
Either raises :class:`~poolgate.exchange_client.SelectError` for a selection that failed, carrying the gRPC status
code, the selector's message and its ``retry-after-ms`` and ``poolgate-cause`` (read from the unary call's trailers
by :func:`call_error`, the one place they are parsed). Either hands back a lease granted to a caller who was
cancelled meanwhile, so no account stays leased for nobody.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import grpc

from poolgate.exchange_client import ExchangeClient, SelectError
from poolgate.selector_channel import Metadata
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc as pb_grpc

__all__ = ["SelectorLink", "StreamLink", "UnaryLink", "call_error", "open_link"]

log = logging.getLogger("poolgate.edge")

MAX_PENDING_REPORTS = 10_000
"""Unary reports in flight at most; beyond that one is dropped (and logged): the selector is not keeping up."""


class SelectorLink(Protocol):
    """Selections and outcome reports to one selector replica."""

    async def select(self, request: pb.SelectAccountRequest, timeout: float) -> pb.Lease:
        """A lease, or :class:`SelectError`; never waits much longer than ``timeout``."""

    def report(self, report: pb.ReportOutcomeRequest) -> None:
        """Send ``report`` in the background (nobody waits for it; it survives the caller's cancellation)."""

    async def report_before_next(self, report: pb.ReportOutcomeRequest) -> None:
        """Send ``report`` so that the replica applies it before any selection this edge sends it afterwards (a failed
        attempt's account state must count for the retry's lease)."""

    async def flush(self, timeout: float) -> None:
        """Wait (up to ``timeout``) until the replica has the reports sent so far; raises SelectError."""

    async def close(self) -> None:
        """Stop; reports not yet sent are dropped (call :meth:`flush` first)."""


def call_error(exc: grpc.aio.AioRpcError) -> SelectError:
    """A failed unary call as the stream would have failed it: its code, details and trailers."""
    retry_ms, cause = 0, ""
    for key, value in exc.trailing_metadata() or ():
        text = value.decode() if isinstance(value, bytes) else str(value)
        if key == "retry-after-ms":
            try:
                retry_ms = max(0, int(float(text)))
            except ValueError:
                pass
        elif key == "poolgate-cause":
            cause = text
    return SelectError(exc.code(), exc.details() or "", retry_ms, cause)


class StreamLink:
    """Selections and reports batched over one Exchange stream (reopened by the next call after it breaks)."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Metadata | None) -> None:
        self.exchange = ExchangeClient(channel, metadata)

    async def select(self, request: pb.SelectAccountRequest, timeout: float) -> pb.Lease:
        return await self.exchange.select(request, timeout)

    def report(self, report: pb.ReportOutcomeRequest) -> None:
        self.exchange.report(report)

    async def report_before_next(self, report: pb.ReportOutcomeRequest) -> None:
        # Queued ahead of the retry's selection: the selector applies a stream's reports before the selections sent
        # after them, so nothing is awaited.
        self.exchange.report(report)

    async def flush(self, timeout: float) -> None:
        await self.exchange.sync(timeout)

    async def close(self) -> None:
        await self.exchange.close()


class UnaryLink:
    """One SelectAccount or ReportOutcome call each; ``timeout`` bounds each report."""

    def __init__(self, channel: grpc.aio.Channel, metadata: Metadata | None, timeout: float, address: str) -> None:
        self._stub = pb_grpc.SelectorStub(channel)
        self._metadata = metadata
        self._timeout = timeout
        self._address = address
        self._pending: set[asyncio.Task[None]] = set()

    async def select(self, request: pb.SelectAccountRequest, timeout: float) -> pb.Lease:
        # The call runs in a task of its own so that a lease granted after the caller was cancelled is still seen,
        # and handed back.
        task = asyncio.get_running_loop().create_task(self._select(request, timeout))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._hand_back)
            raise

    async def _select(self, request: pb.SelectAccountRequest, timeout: float) -> pb.Lease:
        try:
            lease: pb.Lease = await self._stub.SelectAccount(request, timeout=timeout, metadata=self._metadata,
                                                             wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            raise call_error(exc) from None
        return lease

    def _hand_back(self, task: asyncio.Task[pb.Lease]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        self.report(pb.ReportOutcomeRequest(lease_id=task.result().lease_id, outcome=pb.OUTCOME_CANCELLED,
                                            detail="the client went away"))

    def report(self, report: pb.ReportOutcomeRequest) -> None:
        self._start(report)

    async def report_before_next(self, report: pb.ReportOutcomeRequest) -> None:
        task = self._start(report)
        if task is not None:
            await asyncio.shield(task)  # still sent if the waiting caller is cancelled

    def _start(self, report: pb.ReportOutcomeRequest) -> asyncio.Task[None] | None:
        if len(self._pending) >= MAX_PENDING_REPORTS:
            log.warning("the selector at %s is not keeping up with outcome reports; dropping one", self._address)
            return None
        task = asyncio.get_running_loop().create_task(self._report(report))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    async def _report(self, report: pb.ReportOutcomeRequest) -> None:
        """One ReportOutcome call; failures are logged, never raised (the client's call is done)."""
        try:
            await self._stub.ReportOutcome(report, timeout=self._timeout, metadata=self._metadata,
                                           wait_for_ready=False)
        except grpc.aio.AioRpcError as exc:
            log.warning("could not report an outcome to the selector at %s: %s %s",
                        self._address, exc.code().name, exc.details())

    async def flush(self, timeout: float) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=timeout)

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()


def open_link(transport: str, channel: grpc.aio.Channel, metadata: Metadata | None, timeout: float,
              address: str) -> SelectorLink:
    """The link of ``edge.selector_transport`` (``stream`` or ``unary``) over ``channel`` to the replica at
    ``address``."""
    if transport == "stream":
        return StreamLink(channel, metadata)
    return UnaryLink(channel, metadata, timeout, address)

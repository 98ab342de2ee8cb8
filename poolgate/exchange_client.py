"""A client for the selector's Exchange stream: SelectAccount and ReportOutcome over one long-lived stream.

Callers use it like the unary calls (``await select(...)``, ``report(...)``); underneath, everything queued while a
message is being sent goes out together in the next one, and answers are matched back by id. When the stream breaks
(selector restarted), waiting selections fail with UNAVAILABLE and the next call opens a new stream.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import grpc

from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc

log = logging.getLogger("poolgate.exchange")

MAX_BATCH = 256
REPORT_LINGER = 0.002  # seconds a report-only message waits for company
CLOSE_WAIT = 2.0


class SelectError(Exception):
    """A selection failed; ``code`` is the gRPC status code, as the unary call would have raised it."""

    def __init__(self, code: grpc.StatusCode, message: str, retry_after_ms: int = 0, cause: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.cause = cause


_CODES = {code.value[0]: code for code in grpc.StatusCode}


class _Outbox:
    """What waits to be sent on one stream: a deque and at most one waiting reader. Cheaper than asyncio.Queue, and
    waiting with a timeout needs no task per call (``asyncio.wait_for`` would create one)."""

    def __init__(self) -> None:
        self.items: deque[tuple[str, object]] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, kind: str, item: object) -> None:
        self.items.append((kind, item))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Return once something is queued."""
        if not self.items:
            await self.next_put(None)

    async def next_put(self, timeout: float | None) -> None:
        """Return at the next ``put``, or when ``timeout`` seconds have passed."""
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = None if timeout is None else loop.call_later(timeout, _wake, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _time_out(future: asyncio.Future[Any], message: str) -> None:
    if not future.done():
        future.set_exception(SelectError(grpc.StatusCode.DEADLINE_EXCEEDED, message))


class ExchangeClient:
    """Multiplexes selections and reports over one Exchange stream on ``channel`` (which the caller owns)."""

    def __init__(self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] | None = None) -> None:
        self._stub = selector_pb2_grpc.SelectorStub(channel)
        self._metadata = metadata
        self._syncs: dict[int, asyncio.Future[None]] = {}
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[pb.Lease]] = {}
        self._outbox = _Outbox()
        self._stream: asyncio.Task[None] | None = None
        self._call: grpc.aio.StreamStreamCall[pb.ExchangeRequest, pb.ExchangeResponse] | None = None
        self._closed = False
        self._reports_queued = 0  # reports queued since the client started
        self._reports_confirmed = 0  # of those, how many the selector has confirmed applying (by a sync)

    async def select(self, request: pb.SelectAccountRequest, timeout: float) -> pb.Lease:
        """A lease, or SelectError; never waits much longer than ``timeout`` (the selector answers before it)."""
        self._ensure_stream()
        loop = asyncio.get_running_loop()
        selection_id = next(self._ids)
        future: asyncio.Future[pb.Lease] = loop.create_future()
        self._pending[selection_id] = future
        # The selector gets a little less than our own limit, so its answer (with its reason) arrives in time.
        wait_ms = max(0, int(timeout * 1000) - 50)
        self._outbox.put("select", pb.StreamSelect(id=selection_id, request=request, timeout_ms=wait_ms))
        # A timer instead of asyncio.wait_for: one loop iteration less on every selection.
        timer = loop.call_later(timeout + 0.5, _time_out, future, "the selector did not answer in time")
        try:
            return await future
        except asyncio.CancelledError:
            self._outbox.put("cancel", selection_id)
            if future.done() and not future.cancelled() and future.exception() is None:
                self.report(pb.ReportOutcomeRequest(lease_id=future.result().lease_id,
                                                    outcome=pb.OUTCOME_CANCELLED))
            raise
        finally:
            timer.cancel()
            self._pending.pop(selection_id, None)

    def report(self, request: pb.ReportOutcomeRequest) -> None:
        """Queue an outcome report; it is sent with the next message (no answer is awaited). An early report (a
        probe's answer, which other requests wait for) goes out at once instead of lingering for company."""
        self._ensure_stream()
        self._queue_report(request)

    def _queue_report(self, request: pb.ReportOutcomeRequest) -> None:
        self._outbox.put("early" if request.early else "report", request)
        self._reports_queued += 1

    async def sync(self, timeout: float) -> None:
        """Wait until the selector has applied every report queued so far (raises SelectError on failure). Returns at
        once when every report is confirmed already: an idle client opens no stream for it."""
        queued = self._reports_queued
        if queued <= self._reports_confirmed:
            return
        self._ensure_stream()
        sync_id = next(self._ids)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._syncs[sync_id] = future
        self._outbox.put("sync", sync_id)
        timer = asyncio.get_running_loop().call_later(timeout, _time_out, future,
                                                      "the selector did not confirm the reports")
        try:
            await future
        finally:
            timer.cancel()
            self._syncs.pop(sync_id, None)
        self._reports_confirmed = max(self._reports_confirmed, queued)

    async def close(self) -> None:
        """End the stream: its call is cancelled, and its task awaited at most ``CLOSE_WAIT`` seconds (a task blocked
        in the call's read does not always see its cancellation at once; closing must not hang on it)."""
        self._closed = True
        if self._call is not None:
            self._call.cancel()
        if self._stream is not None:
            self._stream.cancel()
            done, _ = await asyncio.wait({self._stream}, timeout=CLOSE_WAIT)
            if not done:
                log.warning("the selector stream did not end within %g s of closing; left to the channel's close",
                            CLOSE_WAIT)

    def _ensure_stream(self) -> None:
        if self._closed:
            raise SelectError(grpc.StatusCode.UNAVAILABLE, "the selector client is closed")
        if self._stream is None or self._stream.done():
            # Each stream reads its own queue: a dead stream's reader must not take messages meant for the new one.
            # Reports not sent yet move over; selections queued for the dead stream have been failed already.
            old, self._outbox = self._outbox, _Outbox()
            self._outbox.items.extend(entry for entry in old.items if entry[0] in ("report", "early"))
            self._stream = asyncio.create_task(self._run(self._outbox), name="poolgate-exchange")

    async def _requests(self, outbox: _Outbox) -> AsyncIterator[pb.ExchangeRequest]:
        queued = outbox.items
        while True:
            await outbox.wait()
            if len(queued) < MAX_BATCH and all(kind == "report" for kind, _ in queued):
                # Nobody waits for a report: give it a moment to ride along with the next selection, which halves
                # the messages per request under load (each message costs about as much as a small HTTP request).
                await outbox.next_put(REPORT_LINGER)
            items = [queued.popleft() for _ in range(min(len(queued), MAX_BATCH))]
            message = pb.ExchangeRequest()
            for kind, item in items:
                if isinstance(item, pb.StreamSelect):
                    message.selects.append(item)
                elif isinstance(item, pb.ReportOutcomeRequest):
                    message.reports.append(item)
                elif isinstance(item, int) and kind == "sync":
                    message.sync = max(message.sync, item)
                elif isinstance(item, int):
                    message.cancels.append(item)
            yield message

    async def _run(self, outbox: _Outbox) -> None:
        call = self._call = self._stub.Exchange(self._requests(outbox), metadata=self._metadata)
        try:
            async for response in call:
                if response.synced:
                    for sync_id, waiting in list(self._syncs.items()):
                        if sync_id <= response.synced and not waiting.done():
                            waiting.set_result(None)
                for result in response.results:
                    future = self._pending.get(result.id)
                    if future is None or future.done():
                        if result.HasField("lease"):  # its caller gave up: give the lease back
                            self._queue_report(pb.ReportOutcomeRequest(
                                lease_id=result.lease.lease_id, outcome=pb.OUTCOME_CANCELLED))
                        continue
                    if result.HasField("lease"):
                        future.set_result(result.lease)
                    else:
                        error = result.error
                        future.set_exception(SelectError(_CODES.get(error.code, grpc.StatusCode.UNKNOWN),
                                                         error.message, error.retry_after_ms, error.cause))
            failure = SelectError(grpc.StatusCode.UNAVAILABLE, "the selector closed the stream")
        except grpc.aio.AioRpcError as exc:
            failure = SelectError(exc.code(), f"selector unreachable: {exc.details()}")
        except asyncio.CancelledError:
            call.cancel()
            failure = SelectError(grpc.StatusCode.UNAVAILABLE, "the selector client is closed")
            self._fail_pending(failure)
            raise
        self._fail_pending(failure)

    def _fail_pending(self, failure: SelectError) -> None:
        futures: list[asyncio.Future[Any]] = [*self._pending.values(), *self._syncs.values()]
        for future in futures:
            if not future.done():
                future.set_exception(failure)

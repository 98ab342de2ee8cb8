"""The Exchange stream: many selections and reports multiplexed over one long-lived bidirectional stream.

One message costs about as much as one unary call, so the stream batches: every message the client sends may carry
several selections and reports, and answers that are ready together go out in one message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

import grpc

from poolgate.v1 import selector_pb2 as pb
from selector_service.api.mapping import OUTCOMES, client_limits, fill_lease, outcome_report, selection_request
from selector_service.api.statuses import status_of
from selector_service.domain.clients import ClientLimits
from selector_service.domain.errors import (
    InvalidRequestError,
    NoAccountAvailableError,
    SelectorError,
)
from selector_service.domain.leases import Grant
from selector_service.domain.selector import SelectorCore
from selector_service.plugin.types import SelectionRequest

if TYPE_CHECKING:
    from selector_service.api.metrics import SelectorMetrics

log = logging.getLogger("poolgate.selector.exchange")

MAX_BATCH = 256
_DONE = object()


class _Granted:
    """A selection's lease, written into the answer being built (one copy of the lease, not three)."""

    __slots__ = ("grant", "id")

    def __init__(self, selection_id: int, grant: Grant) -> None:
        self.id = selection_id
        self.grant = grant


def _error(exc: SelectorError) -> pb.StreamError:
    error = pb.StreamError(code=status_of(exc).value[0], message=str(exc))
    if isinstance(exc, NoAccountAvailableError):
        error.retry_after_ms, error.cause = exc.retry_after_ms or 0, exc.cause
    return error


def _internal_error(select: pb.StreamSelect, exc: Exception) -> pb.StreamResult:
    """The answer to a selection that failed on a bug (such as a strategy plugin breaking its contract): INTERNAL
    for this selection, as a unary call would end with UNKNOWN, instead of the stream's reader dying with it."""
    log.error("selection in pool %r failed: %s", select.request.pool, exc, exc_info=exc)
    return pb.StreamResult(id=select.id, error=pb.StreamError(
        code=grpc.StatusCode.INTERNAL.value[0], message=f"the selection failed inside the selector: {exc}"))


class ExchangeSession:
    """One client's stream: reads requests, runs selections concurrently, writes answers in batches."""

    def __init__(self, core: SelectorCore, metrics: SelectorMetrics | None = None) -> None:
        self.core = core
        self._metrics = metrics
        self._out: asyncio.Queue[Any] = asyncio.Queue()
        self._selections: dict[int, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, requests: AsyncIterator[pb.ExchangeRequest]) -> AsyncIterator[pb.ExchangeResponse]:
        reader = asyncio.create_task(self._read(requests))
        try:
            while True:
                items = [await self._out.get()]
                while len(items) < MAX_BATCH and not self._out.empty():
                    items.append(self._out.get_nowait())
                response = pb.ExchangeResponse()
                done = False
                for item in items:
                    if type(item) is _Granted:
                        fill_lease(response.results.add(id=item.id).lease, item.grant)
                    elif item is _DONE:
                        done = True
                    elif isinstance(item, pb.ExchangeResponse):
                        response.synced = item.synced
                    else:
                        response.results.append(item)
                if response.results or response.synced:
                    yield response
                if done:
                    return
        finally:
            reader.cancel()
            for task in [*self._selections.values(), *self._tasks]:
                task.cancel()
            await asyncio.gather(reader, *self._selections.values(), *self._tasks, return_exceptions=True)

    async def _read(self, requests: AsyncIterator[pb.ExchangeRequest]) -> None:
        async for message in requests:
            for cancel in message.cancels:
                task = self._selections.get(cancel)
                if task is not None:
                    task.cancel()
            # Reports first, in memory and at once: no selection of this message is decided on news it carries.
            if message.reports:
                durable = self._record(message.reports)
                if durable:
                    task = asyncio.create_task(self._saved(durable))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            for select in message.selects:
                if select.id in self._selections:
                    self._out.put_nowait(pb.StreamResult(id=select.id, error=pb.StreamError(
                        code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                        message=f"id: {select.id} is already in flight on this stream")))
                    continue
                # Built once: a selection that has to wait is tried again by core.select.
                request = selection_request(select.request)
                excluded = frozenset(select.request.exclude_account_ids)
                client = client_limits(select.request)
                answer = self._select_now(select, request, excluded, client)
                if answer is not None:
                    self._out.put_nowait(answer)
                else:  # it may have to wait: a task of its own, so later messages are read meanwhile
                    self._selections[select.id] = asyncio.create_task(self._select(select, request, excluded,
                                                                                   client))
            if message.sync:
                task = asyncio.create_task(self._sync(message.sync, list(self._tasks)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        # The client half-closed: answer what is still waiting, then end the stream.
        await asyncio.gather(*self._selections.values(), *self._tasks, return_exceptions=True)
        self._out.put_nowait(_DONE)

    def _select_now(
        self, select: pb.StreamSelect, request: SelectionRequest, excluded: frozenset[str],
        client: ClientLimits | None,
    ) -> pb.StreamResult | _Granted | None:
        """The answer when it needs no waiting (a free account, or a bad request), else None."""
        started = time.perf_counter()
        try:
            if select.timeout_ms < 0:
                raise InvalidRequestError("timeout_ms", "must not be negative")
            grant = self.core.try_select(request, excluded, client)
        except SelectorError as exc:
            return pb.StreamResult(id=select.id, error=_error(exc))
        except Exception as exc:  # a broken strategy plugin: this selection fails, the stream goes on
            return _internal_error(select, exc)
        return None if grant is None else self._leased(select, grant, started)

    async def _select(self, select: pb.StreamSelect, request: SelectionRequest, excluded: frozenset[str],
                      client: ClientLimits | None) -> None:
        """A selection that may wait (:meth:`_select_now` has checked the request and found no free account)."""
        started = time.perf_counter()
        try:
            grant = await self.core.select(request, excluded, select.timeout_ms / 1000.0, client)
            self._out.put_nowait(self._leased(select, grant, started))
        except SelectorError as exc:
            self._out.put_nowait(pb.StreamResult(id=select.id, error=_error(exc)))
        except Exception as exc:
            self._out.put_nowait(_internal_error(select, exc))
        finally:
            self._selections.pop(select.id, None)

    def _leased(self, select: pb.StreamSelect, grant: Grant, started: float) -> _Granted:
        if self._metrics is not None:
            self._metrics.observe_selection(select.request.pool, time.perf_counter() - started, grant.waited)
        return _Granted(select.id, grant)

    async def _sync(self, sync: int, before: list[asyncio.Task[None]]) -> None:
        await asyncio.gather(*before, return_exceptions=True)
        self._out.put_nowait(pb.ExchangeResponse(synced=sync))

    def _record(self, reports: Iterable[pb.ReportOutcomeRequest]) -> list[asyncio.Future[None]]:
        """Apply reports to the accounts in memory; returns the database writes that a later sync must wait for."""
        durable = []
        for report in reports:
            outcome = OUTCOMES.get(report.outcome)
            if outcome is None:
                log.warning("stream report for lease %s ignored: outcome is unset or unknown", report.lease_id[:8])
                continue
            try:
                _, write = self.core.record(outcome_report(report, outcome))
            except InvalidRequestError as exc:
                log.warning("stream report ignored: %s", exc)
                continue
            if write is not None:
                durable.append(write)
        return durable

    @staticmethod
    async def _saved(writes: list[asyncio.Future[None]]) -> None:
        """Wait for reports' health changes to be durable (a sync after them answers only then)."""
        await asyncio.gather(*(asyncio.shield(write) for write in writes), return_exceptions=True)

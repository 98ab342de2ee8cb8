"""The forwarded requests in flight: a deadline on reading their bodies, and ending them when the edge stops.

Every forwarded endpoint's handler is wrapped by :meth:`InFlight.guard`. A body that does not arrive within
``edge.client_timeouts.body`` ends the request with a 408 in the client's API shape. When the edge stops,
:meth:`InFlight.drain` lets requests finish within the shutdown budget, then ends the rest: a request not yet answered
gets a 503, a stream already started an error event and its end (in their API's shape). Their attempts are cancelled,
which reports them to the selector as cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from proxy_edge.errors import ApiShape, error_response, sse_error_event
from proxy_edge.handlers import Handler

log = logging.getLogger("poolgate.edge")

CUT_GRACE = 2.0
"""Seconds the requests ended at the end of the budget get to send their error and report (they need no upstream)."""
SHUTTING_DOWN = "edge_shutting_down"


class BodyTimeout(Exception):
    """The client did not send its request body in time."""


class _Entry:
    __slots__ = ("response", "responses", "shape")

    def __init__(self, shape: ApiShape, responses: bool) -> None:
        self.shape = shape
        self.responses = responses
        self.response: web.StreamResponse | None = None


_ENTRY = web.RequestKey("poolgate_inflight", _Entry)


class InFlight:
    """The forwarded requests being served by one edge."""

    def __init__(self, body_timeout: float) -> None:
        self.body_timeout = body_timeout
        self._tasks: dict[asyncio.Task[Any], _Entry] = {}
        self._cutting = False

    def __len__(self) -> int:
        return len(self._tasks)

    def guard(self, handler: Handler, shape: ApiShape, responses: bool = False) -> Handler:
        """``handler`` with its body deadline, and known to :meth:`drain`."""
        tasks = self._tasks

        async def guarded(request: web.Request) -> web.StreamResponse:
            task = asyncio.current_task()
            assert task is not None
            entry = _Entry(shape, responses)
            tasks[task] = entry
            request[_ENTRY] = entry
            timer = None
            if not request.content.is_eof():  # the body is still arriving (a small one comes with the headers)
                timer = asyncio.get_running_loop().call_later(self.body_timeout, _body_late, request)
            try:
                return await handler(request)
            except BodyTimeout:
                return error_response(shape, 408, (
                    f"the request body did not arrive within {self.body_timeout:g} s "
                    "(edge.client_timeouts.body); send it at once, or raise the limit"), "request_timeout",
                    {"Connection": "close"})
            except asyncio.CancelledError:
                if not self._cutting or task.uncancel() > 0:
                    raise  # the client went away (or the server itself is being cancelled)
                return await _ended(entry)
            finally:
                if timer is not None:
                    timer.cancel()
                del tasks[task]

        return guarded

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """Remember a forwarded request's response once its headers go out (a stream has started)."""
        entry = request.get(_ENTRY)
        if entry is not None:
            entry.response = response

    async def drain(self, budget: float) -> int:
        """Wait up to ``budget`` seconds for the requests in flight; end those still running. Returns how many were
        ended."""
        if self._tasks:
            log.info("waiting up to %g s for %d request(s) in flight", budget, len(self._tasks))
            await asyncio.wait(set(self._tasks), timeout=budget)
        remaining = set(self._tasks)
        if not remaining:
            return 0
        log.warning("ending %d request(s) still in flight after the shutdown budget of %g s", len(remaining), budget)
        self._cutting = True
        for task in remaining:
            task.cancel()
        await asyncio.wait(remaining, timeout=CUT_GRACE)
        return len(remaining)


def _body_late(request: web.Request) -> None:
    if not request.content.is_eof():
        request.content.set_exception(BodyTimeout())


async def _ended(entry: _Entry) -> web.StreamResponse:
    """What a request ended by the shutdown gets: a 503, or, on a stream already started, an error event and the end."""
    message = "the edge is shutting down and could not finish this request in time; retry it"
    response = entry.response
    if response is None:
        return error_response(entry.shape, 503, message, SHUTTING_DOWN, {"Retry-After": "1", "Connection": "close"})
    try:
        await response.write(sse_error_event(entry.shape, 503, message, SHUTTING_DOWN, entry.responses))
        await response.write_eof()
    except (ConnectionError, RuntimeError):
        pass
    return response

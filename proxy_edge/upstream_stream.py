"""Relaying an upstream's event stream to the client.

Nothing is sent until the first whole event: an upstream that fails before it (an error event first included) fails
the attempt, which can go to another account. After that the stream is the client's: a failure ends it with an error
event in the client's API shape, and the outcome is reported when it ends.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
from aiohttp import web

from poolgate.config.schema import EdgeTimeouts
from proxy_edge import outcomes as oc
from proxy_edge.attempt_report import AttemptReport, Failure
from proxy_edge.endpoints import Job
from proxy_edge.errors import error_body, sse_error_event
from proxy_edge.metrics import TOKEN_USAGE
from proxy_edge.streaming import StreamInspector, StreamKind, error_kind, error_message, error_status
from proxy_edge.upstream_answers import client_headers, network_detail, upstream_shape

__all__ = ["bad_answer", "relay_stream"]


async def bad_answer(report: AttemptReport, job: Job, limits: dict[str, str], detail: str, code: str) -> Failure:
    """A 2xx answer the edge cannot pass on: a server error of the account (it can fail over), a 502 for the client
    if no other account serves."""
    failure = await report.fail(oc.SERVER_ERROR, 502, limits, detail)
    failure.body = json.dumps(error_body(upstream_shape(job), 502, f"{detail}; retry the request", code)).encode()
    return failure


async def relay_stream(
    request: web.Request, job: Job, report: AttemptReport, upstream: aiohttp.ClientResponse, limits: dict[str, str],
    timeouts: EdgeTimeouts, max_event: int,
) -> web.StreamResponse | Failure:
    """Pass ``upstream``'s events on to the client (translated when ``job`` is); a :class:`Failure` when the stream
    fails before its first whole event. ``max_event``: the largest event held (``edge.upstream_limits.sse_event``)."""
    assert job.upstream.stream_kind is not None
    outcome, started = report.outcome, report.started
    inspector = StreamInspector(job.upstream.stream_kind, job.strip_usage, max_event, report.scrub)
    # A translated stream: each whole upstream event becomes the client's events as it passes.
    translate = job.translation.stream().feed if job.translation is not None else None
    status = upstream.status
    content = upstream.content
    first = b""
    too_large = f"an upstream stream event is larger than edge.upstream_limits.sse_event ({max_event} bytes)"
    try:
        async with asyncio.timeout_at(started + timeouts.first_token):
            while not first and inspector.error is None and not inspector.too_large:
                chunk = await content.readany()
                if not chunk:
                    first = inspector.flush()
                    break
                first = inspector.feed(chunk)
    except TimeoutError:
        return await report.fail(oc.TIMEOUT, status, limits, "no stream event in time")
    except aiohttp.ClientError as exc:
        return await report.fail(oc.NETWORK_ERROR, status, limits, network_detail(exc))
    if inspector.error is not None:
        return await _error_event_failure(job, report, inspector, limits)
    if inspector.too_large and not first:
        upstream.close()
        return await bad_answer(report, job, limits, too_large, "upstream_event_too_large")
    if not first:
        return await report.fail(oc.NETWORK_ERROR, status, limits, "empty stream")
    outcome.time_to_first_token_ms = report.ms()
    report.early(status, limits)  # a first event that is not an error (an overloaded_error would come as one)

    response = web.StreamResponse(status=status, headers=client_headers(upstream, job, report.lease.account_id))
    upstream_failure: tuple[int, int, str] | None = None
    try:
        await response.prepare(request)
        await response.write(translate(first) if translate else first)
        async with asyncio.timeout(None) as guard:
            watch = IdleWatch(guard, timeouts.stream_idle)
            try:
                while not inspector.too_large:
                    watch.waiting()
                    try:
                        chunk = await content.readany()
                    except aiohttp.ClientError as exc:
                        upstream_failure = (oc.NETWORK_ERROR, status, network_detail(exc))
                        break
                    watch.waited()
                    if not chunk:
                        rest = inspector.flush()
                        if rest and translate:
                            rest = translate(rest + b"\n\n")
                        if rest:
                            await response.write(rest)
                        break
                    out = inspector.feed(chunk)
                    if out and translate:
                        out = translate(out)
                    if out:
                        await response.write(out)
            finally:
                watch.close()
    except TimeoutError:
        upstream_failure = (oc.TIMEOUT, status, "the stream stalled")
    except ConnectionError:
        upstream.close()
        report.later(oc.CANCELLED, status, limits, "the client disconnected mid-stream")
        return response
    outcome.input_tokens = inspector.input_tokens
    outcome.output_tokens = inspector.output_tokens
    request[TOKEN_USAGE] = (outcome.input_tokens, outcome.output_tokens)
    if inspector.too_large:
        upstream_failure = (oc.SERVER_ERROR, 502, too_large)
    elif upstream_failure is None and inspector.error is None and not inspector.finished:
        upstream_failure = (oc.NETWORK_ERROR, status, "the stream ended before its last event")
    if upstream_failure is not None:
        kind, failed_status, detail = upstream_failure
        upstream.close()
        report.later(kind, failed_status, limits, detail)
        await _write_quietly(response, sse_error_event(
            job.endpoint.shape, 502, f"the upstream stream failed after it started ({detail}); retry the request",
            "upstream_stream_error", responses=job.endpoint.stream_kind is StreamKind.RESPONSES))
    elif inspector.error is not None:
        # The error event itself was passed on to the client (scrubbed); it ends the stream.
        err_status = error_status(inspector.error)
        outcome.error_type, outcome.error_code = error_kind(inspector.error)
        report.later(oc.outcome_for_status(err_status), err_status, limits, error_message(inspector.error))
    else:
        report.later(oc.SUCCESS, status, limits, "")
    await _write_quietly(response, None)
    return response


class IdleWatch:
    """Ends a wait for the upstream's next chunk once it has lasted ``idle`` seconds (``timeouts.stream_idle``), by
    firing ``guard``, an ``asyncio.timeout(None)`` around the relay: a TimeoutError out of its block.

    One timer per ``idle`` period rather than an ``asyncio.timeout`` per chunk, which cost about a tenth of the
    edge's CPU on long streams. Only waits on the upstream count: a write to a slow client does not.
    """

    __slots__ = ("_guard", "_idle", "_loop", "_since", "_timer")

    def __init__(self, guard: asyncio.Timeout, idle: float) -> None:
        self._guard = guard
        self._idle = idle
        self._loop = loop = asyncio.get_running_loop()
        self._since = 0.0
        """When the current wait began; 0.0 while not waiting."""
        self._timer = loop.call_at(loop.time() + idle, self._check)

    def waiting(self) -> None:
        self._since = self._loop.time()

    def waited(self) -> None:
        self._since = 0.0

    def _check(self) -> None:
        now, since = self._loop.time(), self._since
        if since and now - since >= self._idle:
            self._guard.reschedule(now)
        else:
            self._timer = self._loop.call_at((since or now) + self._idle, self._check)

    def close(self) -> None:
        self._timer.cancel()


async def _error_event_failure(
    job: Job, report: AttemptReport, inspector: StreamInspector, limits: dict[str, str],
) -> Failure:
    err_status = error_status(inspector.error)
    message = report.scrubber().text(error_message(inspector.error))
    report.outcome.error_type, report.outcome.error_code = error_kind(inspector.error)
    failure = await report.fail(oc.outcome_for_status(err_status), err_status, limits, f"error event: {message}")
    failure.body = json.dumps(error_body(job.endpoint.shape, err_status, message)).encode()
    return failure


async def _write_quietly(response: web.StreamResponse, data: bytes | None) -> None:
    try:
        if data is None:
            await response.write_eof()
        else:
            await response.write(data)
    except ConnectionError:
        pass

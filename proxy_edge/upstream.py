"""One attempt: the upstream call with a leased account, its response passed on, and its outcome reported.

An attempt either answers the client (returns the response) or fails before anything was sent to the client
(returns a :class:`Failure`), so the caller can try another account. Streams are held back until their first whole
event (:mod:`proxy_edge.upstream_stream`), so an upstream that fails before that (including an error event as the
first event) can still fail over.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from poolgate.config.schema import EdgeTimeouts, UpstreamLimits
from proxy_edge import outcomes as oc
from proxy_edge.attempt_report import AttemptReport, Failure
from proxy_edge.egress import Egress
from proxy_edge.endpoints import Job
from proxy_edge.errors import error_body
from proxy_edge.headers import client_response_headers, rate_limit_headers, upstream_request_headers
from proxy_edge.leases import Lease
from proxy_edge.metrics import TOKEN_USAGE
from proxy_edge.selector_client import SelectorClient
from proxy_edge.streaming import body_error, body_usage, error_kind, json_or_none
from proxy_edge.upstream_answers import (
    ACCOUNT_HEADER,
    client_headers,
    is_json,
    network_detail,
    read_body,
    read_capped,
    upstream_message,
    upstream_shape,
)
from proxy_edge.upstream_stream import bad_answer, relay_stream

__all__ = ["ACCOUNT_HEADER", "Failure", "Upstream"]

_EVENT_STREAM = "text/event-stream"


class Upstream:
    """Makes attempts over the process's one pooled ClientSession and reports each to the selector.

    Timeouts (``edge.timeouts``) are set per request: a non-stream request gets ``first_byte`` as aiohttp's
    ``sock_read`` (until the headers, and any pause in the body); a stream request gets one deadline,
    ``first_token`` after the request, for its headers and first whole event, then ``stream_idle`` for each pause
    between chunks. Limits (``edge.upstream_limits``) bound what is held of each answer. ``egress`` says which
    calls go through a proxy (None: none does).
    """

    def __init__(self, session: aiohttp.ClientSession, selector: SelectorClient,
                 timeouts: EdgeTimeouts | None = None, limits: UpstreamLimits | None = None,
                 egress: Egress | None = None) -> None:
        self._session = session
        self._selector = selector
        self._egress = egress
        self._urls: dict[tuple[str, str], URL] = {}
        self._loop = asyncio.get_running_loop()
        self.retime(timeouts or EdgeTimeouts(), limits or UpstreamLimits())

    def retime(self, timeouts: EdgeTimeouts, limits: UpstreamLimits) -> None:
        """Use ``timeouts`` and ``limits`` for the attempts that start from now on (a reload's)."""
        self._timeouts = timeouts
        self._limits = limits
        self._plain_timeout = aiohttp.ClientTimeout(
            total=timeouts.total, connect=timeouts.connect, sock_connect=timeouts.connect,
            sock_read=timeouts.first_byte)
        self._stream_timeout = aiohttp.ClientTimeout(
            total=timeouts.total, connect=timeouts.connect, sock_connect=timeouts.connect)

    def _url(self, base_url: str, path: str) -> URL:
        key = (base_url, path)
        url = self._urls.get(key)
        if url is None:
            if len(self._urls) > 1024:
                self._urls.clear()
            url = self._urls[key] = URL(base_url.rstrip("/") + path)
        return url

    async def attempt(
        self, request: web.Request, job: Job, lease: Lease, from_client: Iterable[tuple[str, str]]
    ) -> web.StreamResponse | Failure:
        """Forward ``job`` with ``lease``'s account; answer the client, or fail before the first byte.

        A ``stream: true`` request answered without an event stream (``content-type`` other than
        ``text/event-stream``) is treated as the non-stream answer it is: passed on as it is when it is valid JSON,
        else a failed attempt (a server error, which can fail over), like any 2xx answer that is not JSON.
        """
        headers = upstream_request_headers(from_client, lease.credential, lease.extra_headers,
                                           anthropic=job.upstream.pool_format == "anthropic")
        started = self._loop.time()
        report = AttemptReport(self._selector, lease, started)
        outcome = report.outcome
        timeouts, caps = self._timeouts, self._limits  # the settings of the attempt's start (a reload may swap them)
        # Stream reads after the headers are timed by the edge (first_token, then stream_idle), not by aiohttp.
        idle = timeouts.stream_idle if job.stream else None
        upstream: aiohttp.ClientResponse | None = None
        try:
            try:
                url = self._url(lease.base_url, job.upstream.upstream_path)
                if job.stream:
                    async with asyncio.timeout_at(started + timeouts.first_token):
                        upstream = await self._post(url, job.body, headers, self._stream_timeout, lease.proxy)
                else:
                    upstream = await self._post(url, job.body, headers, self._plain_timeout, lease.proxy)
            except TimeoutError:
                return await report.fail(oc.TIMEOUT, 0, {}, "no answer in time")
            except aiohttp.ClientError as exc:
                return await report.fail(oc.NETWORK_ERROR, 0, {}, network_detail(exc))
            outcome.time_to_first_token_ms = report.ms()
            status = upstream.status
            limits = rate_limit_headers(upstream.headers.items())
            if not 200 <= status < 300:
                return await self._error_status(report, job, upstream, limits, idle, caps.error_body)
            if job.stream and upstream.content_type == _EVENT_STREAM:
                return await relay_stream(request, job, report, upstream, limits, timeouts,
                                          caps.sse_event)
            report.early(status, limits)
            try:
                body = await read_body(upstream, caps.response_body, idle)
            except TimeoutError:
                return await report.fail(oc.TIMEOUT, status, limits, "timed out reading the body")
            except aiohttp.ClientError as exc:
                return await report.fail(oc.NETWORK_ERROR, status, limits, network_detail(exc))
            if body is None:
                upstream.close()
                upstream = None
                return await bad_answer(report, job, limits, (
                    f"the upstream's answer is larger than edge.upstream_limits.response_body "
                    f"({caps.response_body} bytes)"), "upstream_response_too_large")
            if not is_json(body):
                return await bad_answer(report, job, limits, (
                    f"the upstream answered {status} with a body that is not valid JSON "
                    f"({upstream.content_type or 'no content-type'})"), "upstream_invalid_response")
            outcome.input_tokens, outcome.output_tokens = body_usage(body)
            request[TOKEN_USAGE] = (outcome.input_tokens, outcome.output_tokens)
            report.later(oc.SUCCESS, status, limits, "")
            out_headers = client_headers(upstream, job, lease.account_id)
            if job.translation is not None:
                status, body = job.translation.response(status, body)
            return web.Response(status=status, body=body, headers=out_headers)
        except asyncio.CancelledError:
            # The client went away (the handler is cancelled): the upstream request is dropped with it.
            if not report.reported:  # a failure report may already be on its way
                report.later(oc.CANCELLED, 0, {}, "the client disconnected")
            if upstream is not None:
                upstream.close()
                upstream = None
            raise
        finally:
            if upstream is not None:
                upstream.release()

    async def _post(self, url: URL, body: bytes, headers: CIMultiDict[str],
                    timeout: aiohttp.ClientTimeout, proxy_setting: str) -> aiohttp.ClientResponse:
        route = self._egress.route(proxy_setting, url) if self._egress is not None else None
        proxy = route.url if route is not None else None
        try:
            try:
                response = await self._session.post(url, data=body, headers=headers, timeout=timeout, proxy=proxy)
            except aiohttp.ServerDisconnectedError:
                # Most often a pooled keep-alive connection the upstream had just closed: not the account's fault,
                # and the upstream never saw the request. Once more on a fresh connection before it counts as a
                # failure.
                response = await self._session.post(url, data=body, headers=headers, timeout=timeout, proxy=proxy)
        except aiohttp.ClientError as exc:
            if route is None:
                raise
            # The proxy named, without its credentials: a proxy that is down reads differently from an upstream.
            raise route.error(network_detail(exc)) from None
        if route is not None and response.status == 407:  # a plain-HTTP upstream behind a proxy that refused
            response.release()
            raise route.error("the proxy asks for credentials (407 Proxy Authentication Required): set them in "
                              "the proxy URL, http://user:password@host:port")
        return response

    async def _error_status(
        self, report: AttemptReport, job: Job, upstream: aiohttp.ClientResponse, limits: dict[str, str],
        idle: float | None, cap: int,
    ) -> Failure:
        status = upstream.status
        try:
            body, cut = await read_capped(upstream, cap, idle)
        except (TimeoutError, aiohttp.ClientError):
            body, cut = b"", False
        if cut:
            upstream.close()  # the rest is not read
        body = report.scrub(body)
        message = upstream_message(body, status)
        report.outcome.error_type, report.outcome.error_code = error_kind(body_error(json_or_none(body)))
        failure = await report.fail(oc.outcome_for_status(status), status, limits, message)
        failure.headers = client_response_headers(upstream.headers.items())
        if cut:
            # What was read is not a whole body: the client gets the edge's own error, in the upstream's API shape
            # (a translated request has it translated as any upstream error).
            failure.body = json.dumps(error_body(upstream_shape(job), status, (
                f"{message} (the upstream's error body was longer than {cap} bytes and was cut)"),
                "upstream_error")).encode()
            failure.headers["Content-Type"] = "application/json"
        else:
            failure.body = body
        return failure

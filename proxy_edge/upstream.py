"""One attempt: the upstream call with a leased account, its response passed on, and its outcome reported.

An attempt either answers the client (returns the response) or fails before anything was sent to the client
(returns a :class:`Failure`), so the caller can try another account. Streams are held back until their first whole
event, so an upstream that fails before that (including an error event as the first event) can still fail over.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from poolgate.config.schema import EdgeTimeouts, UpstreamLimits
from poolgate.secrets import Scrubber
from poolgate.v1 import selector_pb2 as pb
from proxy_edge import outcomes as oc
from proxy_edge.egress import Egress
from proxy_edge.endpoints import Job
from proxy_edge.errors import ApiShape, error_body, error_body_message, sse_error_event
from proxy_edge.headers import client_response_headers, rate_limit_headers, retry_after_ms, upstream_request_headers
from proxy_edge.metrics import TOKEN_USAGE
from proxy_edge.selector_client import SelectorClient
from proxy_edge.streaming import (
    StreamInspector,
    StreamKind,
    body_error,
    body_usage,
    error_kind,
    error_message,
    error_status,
    json_or_none,
)

_EVENT_STREAM = "text/event-stream"
ACCOUNT_HEADER = "x-poolgate-account"
"""Response header naming the account that served (``pool/name``; never a credential)."""


@dataclass(slots=True)
class Failure:
    """An attempt that ended before the client got anything."""

    outcome: int
    status: int
    """The upstream's HTTP status (or what an error event stands for); 0 when there was no answer."""
    retry_after_ms: int
    detail: str
    """Why, in a few words, without credentials."""
    body: bytes | None = None
    """The upstream's error body, scrubbed: what the client gets if this stays the last attempt."""
    headers: CIMultiDict[str] | None = None


@dataclass(slots=True)
class _Call:
    """One attempt's report in the making, and what is needed to fill it."""

    report: pb.ReportOutcomeRequest
    started: float
    credential: str
    _scrubber: Scrubber | None = None

    def scrubber(self) -> Scrubber:
        """Scrubs the account's credential (and masked key echoes) out of upstream text; built when first needed."""
        if self._scrubber is None:
            self._scrubber = Scrubber(self.credential)
        return self._scrubber

    def scrub(self, data: bytes) -> bytes:
        return self.scrubber().bytes(data)


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
        self._egress = egress if egress is not None and egress.active else None
        self._urls: dict[tuple[str, str], URL] = {}
        self._loop = asyncio.get_running_loop()
        timeouts = timeouts or EdgeTimeouts()
        self._timeouts = timeouts
        self._limits = limits or UpstreamLimits()
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
        self, request: web.Request, job: Job, lease: pb.Lease, client_headers: Iterable[tuple[str, str]]
    ) -> web.StreamResponse | Failure:
        """Forward ``job`` with ``lease``'s account; answer the client, or fail before the first byte.

        A ``stream: true`` request answered without an event stream (``content-type`` other than
        ``text/event-stream``) is treated as the non-stream answer it is: passed on as it is when it is valid JSON,
        else a failed attempt (a server error, which can fail over), like any 2xx answer that is not JSON.
        """
        credential = lease.credential
        headers = upstream_request_headers(
            client_headers,
            (credential.name, credential.value),
            ((h.name, h.value) for h in lease.extra_headers),
            anthropic=job.upstream.pool_format == "anthropic",
        )
        started = self._loop.time()
        call = _Call(pb.ReportOutcomeRequest(lease_id=lease.lease_id), started, credential.value)
        report = call.report
        # Stream reads after the headers are timed by the edge (first_token, then stream_idle), not by aiohttp.
        idle = self._timeouts.stream_idle if job.stream else None
        upstream: aiohttp.ClientResponse | None = None
        try:
            try:
                url = self._url(lease.base_url, job.upstream.upstream_path)
                if job.stream:
                    async with asyncio.timeout_at(started + self._timeouts.first_token):
                        upstream = await self._post(url, job.body, headers, self._stream_timeout, lease.account_id)
                else:
                    upstream = await self._post(url, job.body, headers, self._plain_timeout, lease.account_id)
            except TimeoutError:
                return await self._fail(call, oc.TIMEOUT, 0, {}, "no answer in time")
            except aiohttp.ClientError as exc:
                return await self._fail(call, oc.NETWORK_ERROR, 0, {}, _network_detail(exc))
            report.time_to_first_token_ms = self._ms(started)
            status = upstream.status
            limits = rate_limit_headers(upstream.headers.items())
            if not 200 <= status < 300:
                return await self._error_status(call, job, upstream, limits, idle)
            if job.stream and upstream.content_type == _EVENT_STREAM:
                return await self._stream(request, job, call, upstream, limits, lease)
            if lease.probe:
                # The account's health was unknown and other requests wait for this answer: tell the selector now,
                # not at the end of a generation that may take minutes.
                self._selector.report_later(_early_report(lease.lease_id, status, limits))
            try:
                body = await read_body(upstream, self._limits.response_body, idle)
            except TimeoutError:
                return await self._fail(call, oc.TIMEOUT, status, limits, "timed out reading the body")
            except aiohttp.ClientError as exc:
                return await self._fail(call, oc.NETWORK_ERROR, status, limits, _network_detail(exc))
            if body is None:
                upstream.close()
                upstream = None
                return await self._bad_answer(call, job, limits, (
                    f"the upstream's answer is larger than edge.upstream_limits.response_body "
                    f"({self._limits.response_body} bytes)"), "upstream_response_too_large")
            if not is_json(body):
                return await self._bad_answer(call, job, limits, (
                    f"the upstream answered {status} with a body that is not valid JSON "
                    f"({upstream.content_type or 'no content-type'})"), "upstream_invalid_response")
            report.input_tokens, report.output_tokens = body_usage(body)
            request[TOKEN_USAGE] = (report.input_tokens, report.output_tokens)
            self._report_later(call, oc.SUCCESS, status, limits, "")
            out_headers = _client_headers(upstream, job, lease.account_id)
            if job.translation is not None:
                status, body = job.translation.response(status, body)
            return web.Response(status=status, body=body, headers=out_headers)
        except asyncio.CancelledError:
            # The client went away (the handler is cancelled): the upstream request is dropped with it.
            if not report.outcome:  # not yet reported (a failure report may already be on its way)
                self._report_later(call, oc.CANCELLED, 0, {}, "the client disconnected")
            if upstream is not None:
                upstream.close()
                upstream = None
            raise
        finally:
            if upstream is not None:
                upstream.release()

    async def _post(self, url: URL, body: bytes, headers: CIMultiDict[str],
                    timeout: aiohttp.ClientTimeout, account_id: str) -> aiohttp.ClientResponse:
        route = self._egress.route(account_id, url) if self._egress is not None else None
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
            raise route.error(_network_detail(exc)) from None
        if route is not None and response.status == 407:  # a plain-HTTP upstream behind a proxy that refused
            response.release()
            raise route.error("the proxy asks for credentials (407 Proxy Authentication Required): set them in "
                              "the proxy URL, http://user:password@host:port")
        return response

    async def _error_status(
        self, call: _Call, job: Job, upstream: aiohttp.ClientResponse, limits: dict[str, str], idle: float | None,
    ) -> Failure:
        status = upstream.status
        cap = self._limits.error_body
        try:
            body, cut = await read_capped(upstream, cap, idle)
        except (TimeoutError, aiohttp.ClientError):
            body, cut = b"", False
        if cut:
            upstream.close()  # the rest is not read
        body = call.scrub(body)
        outcome = oc.outcome_for_status(status)
        message = upstream_message(body, status)
        call.report.error_type, call.report.error_code = error_kind(body_error(json_or_none(body)))
        failure = await self._fail(call, outcome, status, limits, message)
        failure.headers = client_response_headers(upstream.headers.items())
        if cut:
            # What was read is not a whole body: the client gets the edge's own error, in the upstream's API shape
            # (a translated request has it translated as any upstream error).
            failure.body = json.dumps(error_body(_upstream_shape(job), status, (
                f"{message} (the upstream's error body was longer than {cap} bytes and was cut)"),
                "upstream_error")).encode()
            failure.headers["Content-Type"] = "application/json"
        else:
            failure.body = body
        return failure

    async def _bad_answer(self, call: _Call, job: Job, limits: dict[str, str], detail: str, code: str) -> Failure:
        """A 2xx answer the edge cannot pass on: a server error of the account (it can fail over), a 502 for the
        client if no other account serves."""
        failure = await self._fail(call, oc.SERVER_ERROR, 502, limits, detail)
        failure.body = json.dumps(error_body(_upstream_shape(job), 502, f"{detail}; retry the request",
                                             code)).encode()
        return failure

    async def _stream(
        self, request: web.Request, job: Job, call: _Call, upstream: aiohttp.ClientResponse,
        limits: dict[str, str], lease: pb.Lease,
    ) -> web.StreamResponse | Failure:
        assert job.upstream.stream_kind is not None
        report, started = call.report, call.started
        max_event = self._limits.sse_event
        inspector = StreamInspector(job.upstream.stream_kind, job.strip_usage, max_event, call.scrub)
        # A translated stream: each whole upstream event becomes the client's events as it passes.
        translate = job.translation.stream().feed if job.translation is not None else None
        status = upstream.status
        content = upstream.content
        first = b""
        too_large = (f"an upstream stream event is larger than edge.upstream_limits.sse_event ({max_event} bytes)")
        # Until the first whole event nothing is sent: a failure here can still go to another account.
        try:
            async with asyncio.timeout_at(started + self._timeouts.first_token):
                while not first and inspector.error is None and not inspector.too_large:
                    chunk = await content.readany()
                    if not chunk:
                        first = inspector.flush()
                        break
                    first = inspector.feed(chunk)
        except TimeoutError:
            return await self._fail(call, oc.TIMEOUT, status, limits, "no stream event in time")
        except aiohttp.ClientError as exc:
            return await self._fail(call, oc.NETWORK_ERROR, status, limits, _network_detail(exc))
        if inspector.error is not None:
            return await self._stream_error_failure(job, call, inspector, limits)
        if inspector.too_large and not first:
            upstream.close()
            return await self._bad_answer(call, job, limits, too_large, "upstream_event_too_large")
        if not first:
            return await self._fail(call, oc.NETWORK_ERROR, status, limits, "empty stream")
        report.time_to_first_token_ms = self._ms(started)
        if lease.probe:  # a first event that is not an error (an overloaded_error would come as one): the answer
            self._selector.report_later(_early_report(lease.lease_id, status, limits))

        out_headers = _client_headers(upstream, job, lease.account_id)
        response = web.StreamResponse(status=status, headers=out_headers)
        upstream_failure: tuple[int, int, str] | None = None
        idle = self._timeouts.stream_idle
        try:
            await response.prepare(request)
            await response.write(translate(first) if translate else first)
            while not inspector.too_large:
                try:
                    async with asyncio.timeout(idle):
                        chunk = await content.readany()
                except TimeoutError:
                    upstream_failure = (oc.TIMEOUT, status, "the stream stalled")
                    break
                except aiohttp.ClientError as exc:
                    upstream_failure = (oc.NETWORK_ERROR, status, _network_detail(exc))
                    break
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
        except ConnectionError:
            upstream.close()
            self._report_later(call, oc.CANCELLED, status, limits, "the client disconnected mid-stream")
            return response
        report.input_tokens = inspector.input_tokens
        report.output_tokens = inspector.output_tokens
        request[TOKEN_USAGE] = (report.input_tokens, report.output_tokens)
        if inspector.too_large:
            upstream_failure = (oc.SERVER_ERROR, 502, too_large)
        elif upstream_failure is None and inspector.error is None and not inspector.finished:
            upstream_failure = (oc.NETWORK_ERROR, status, "the stream ended before its last event")
        if upstream_failure is not None:
            outcome, failed_status, detail = upstream_failure
            upstream.close()
            self._report_later(call, outcome, failed_status, limits, detail)
            await _write_quietly(response, sse_error_event(
                job.endpoint.shape, 502, f"the upstream stream failed after it started ({detail}); retry the request",
                "upstream_stream_error", responses=job.endpoint.stream_kind is StreamKind.RESPONSES))
        elif inspector.error is not None:
            # The error event itself was passed on to the client (scrubbed); it ends the stream.
            err_status = error_status(inspector.error)
            report.error_type, report.error_code = error_kind(inspector.error)
            self._report_later(call, oc.outcome_for_status(err_status), err_status, limits,
                               error_message(inspector.error))
        else:
            self._report_later(call, oc.SUCCESS, status, limits, "")
        await _write_quietly(response, None)
        return response

    async def _stream_error_failure(
        self, job: Job, call: _Call, inspector: StreamInspector, limits: dict[str, str],
    ) -> Failure:
        err_status = error_status(inspector.error)
        message = call.scrubber().text(error_message(inspector.error))
        call.report.error_type, call.report.error_code = error_kind(inspector.error)
        failure = await self._fail(call, oc.outcome_for_status(err_status), err_status, limits,
                                   f"error event: {message}")
        failure.body = json.dumps(error_body(job.endpoint.shape, err_status, message)).encode()
        return failure

    def _ms(self, started: float) -> int:
        return int((self._loop.time() - started) * 1000)

    def _fill(self, call: _Call, outcome: int, status: int, limits: dict[str, str], detail: str) -> None:
        report = call.report
        report.outcome = outcome  # type: ignore[assignment]
        report.http_status = status
        report.latency_ms = self._ms(call.started)
        # What the upstream asks to wait only matters for a failure (the selector ignores it on a success).
        report.retry_after_ms = retry_after_ms(limits) if limits and outcome != oc.SUCCESS else 0
        if limits:
            report.rate_limit_headers.update(limits)
        if detail:
            # The detail becomes the selector's disabled_reason, a log line, a client's error message: no secrets.
            report.detail = call.scrubber().text(detail)

    def _report_later(self, call: _Call, outcome: int, status: int, limits: dict[str, str], detail: str) -> None:
        self._fill(call, outcome, status, limits, detail)
        self._selector.report_later(call.report)

    async def _fail(self, call: _Call, outcome: int, status: int, limits: dict[str, str], detail: str) -> Failure:
        # The account's new state must count for the next lease: on the unary transport the report is awaited (and
        # shielded from the client going away); on the stream it is queued before the retry's selection, and the
        # selector applies a stream's reports before the selections sent after them.
        self._fill(call, outcome, status, limits, detail)
        await self._selector.report_shielded(call.report)
        return Failure(outcome, status, call.report.retry_after_ms, call.report.detail)


def _early_report(lease_id: str, status: int, limits: dict[str, str]) -> pb.ReportOutcomeRequest:
    report = pb.ReportOutcomeRequest(lease_id=lease_id, outcome=pb.OUTCOME_SUCCESS, http_status=status, early=True)
    if limits:
        report.rate_limit_headers.update(limits)
    return report


async def _write_quietly(response: web.StreamResponse, data: bytes | None) -> None:
    try:
        if data is None:
            await response.write_eof()
        else:
            await response.write(data)
    except ConnectionError:
        pass


def _network_detail(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def _client_headers(upstream: aiohttp.ClientResponse, job: Job, account_id: str) -> CIMultiDict[str]:
    """The headers of the client's response: the upstream's that pass on, the serving account, the job's own."""
    headers = client_response_headers(upstream.headers.items())
    headers[ACCOUNT_HEADER] = account_id
    headers.update(job.response_headers)
    return headers


async def read_body(upstream: aiohttp.ClientResponse, limit: int, idle: float | None = None) -> bytes | None:
    """The whole body, or None as soon as it proves longer than ``limit`` bytes (the rest is not read);
    ``idle``: the longest pause between chunks (None: the request's own ``sock_read``)."""
    length = upstream.content_length
    if length is not None and length > limit and not upstream.headers.get("Content-Encoding"):
        return None
    body, cut = await read_capped(upstream, limit, idle, keep_cut=False)
    return None if cut else body


async def read_capped(upstream: aiohttp.ClientResponse, cap: int, idle: float | None = None,
                      keep_cut: bool = True) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of the body, and whether there was more (then the rest is not read; with
    ``keep_cut=False`` nothing is returned of a body that was cut, so it is never joined in memory)."""
    content = upstream.content
    parts: list[bytes] = []
    size = 0
    while True:
        if idle is None:
            chunk = await content.readany()
        else:
            async with asyncio.timeout(idle):
                chunk = await content.readany()
        if not chunk:
            return b"".join(parts), False
        size += len(chunk)
        if size > cap:
            if not keep_cut:
                return b"", True
            parts.append(chunk[:len(chunk) - (size - cap)])
            return b"".join(parts), True
        parts.append(chunk)


FULL_JSON_CHECK = 1024 * 1024
"""Bodies up to this size are parsed to check they are JSON; larger ones (embeddings) only for their frame."""


def is_json(body: bytes) -> bool:
    """Whether ``body`` is a JSON answer: parsed in full up to :data:`FULL_JSON_CHECK` bytes; beyond that, valid
    UTF-8 that holds one object or array from its first byte to its last (a cut or foreign body fails this too)."""
    if len(body) <= FULL_JSON_CHECK:
        try:
            json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return False
        return True
    framed = body.strip()
    if (framed[:1], framed[-1:]) not in ((b"{", b"}"), (b"[", b"]")):
        return False
    try:
        framed.decode()
    except UnicodeDecodeError:
        return False
    return True


def _upstream_shape(job: Job) -> ApiShape:
    """The API shape of the pool's upstream (a translated request's errors are translated for the client)."""
    return ApiShape.ANTHROPIC if job.upstream.pool_format == "anthropic" else ApiShape.OPENAI


def upstream_message(body: bytes, status: int) -> str:
    """The upstream's error message from an OpenAI-, Anthropic- or Gemini-shaped body (for logs and the selector)."""
    data = json_or_none(body)
    if isinstance(data, list) and data:
        data = data[0]
    message = error_body_message(data)
    if message is not None:
        return f"{status} {message}"[:300]
    text = body[:200].decode(errors="replace").strip()
    return f"{status} {text}" if text else f"HTTP {status}"

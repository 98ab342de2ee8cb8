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

from poolgate.config.schema import redact
from poolgate.v1 import selector_pb2 as pb
from proxy_edge import outcomes as oc
from proxy_edge.endpoints import Job
from proxy_edge.errors import error_body, error_body_message, sse_error_event
from proxy_edge.headers import client_response_headers, rate_limit_headers, retry_after_ms, upstream_request_headers
from proxy_edge.selector_client import SelectorClient
from proxy_edge.streaming import StreamInspector, body_usage, error_message, error_status

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


class Upstream:
    """Makes attempts over the process's one pooled ClientSession and reports each to the selector."""

    def __init__(self, session: aiohttp.ClientSession, selector: SelectorClient) -> None:
        self._session = session
        self._selector = selector
        self._urls: dict[tuple[str, str], URL] = {}
        self._loop = asyncio.get_running_loop()

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
        """Forward ``job`` with ``lease``'s account; answer the client, or fail before the first byte."""
        credential = lease.credential
        headers = upstream_request_headers(
            client_headers,
            (credential.name, credential.value),
            ((h.name, h.value) for h in lease.extra_headers),
            anthropic=job.upstream.pool_format == "anthropic",
        )
        started = self._loop.time()
        report = pb.ReportOutcomeRequest(lease_id=lease.lease_id)
        upstream: aiohttp.ClientResponse | None = None
        try:
            try:
                upstream = await self._post(self._url(lease.base_url, job.upstream.upstream_path), job.body, headers)
            except TimeoutError:
                return await self._fail(report, started, oc.TIMEOUT, 0, {}, "no answer in time")
            except aiohttp.ClientError as exc:
                return await self._fail(report, started, oc.NETWORK_ERROR, 0, {}, _network_detail(exc))
            report.time_to_first_token_ms = self._ms(started)
            status = upstream.status
            limits = rate_limit_headers(upstream.headers.items())
            if not 200 <= status < 300:
                return await self._error_status(report, started, upstream, limits, credential.value)
            if job.stream and upstream.content_type == _EVENT_STREAM:
                return await self._stream(request, job, report, started, upstream, limits, lease)
            if lease.probe:
                # The account's health was unknown and other requests wait for this answer: tell the selector now,
                # not at the end of a generation that may take minutes.
                self._selector.report_later(_early_report(lease.lease_id, status, limits))
            try:
                body = await upstream.read()
            except TimeoutError:
                return await self._fail(report, started, oc.TIMEOUT, status, limits, "timed out reading the body")
            except aiohttp.ClientError as exc:
                return await self._fail(report, started, oc.NETWORK_ERROR, status, limits, _network_detail(exc))
            report.input_tokens, report.output_tokens = body_usage(body)
            self._report_later(report, started, oc.SUCCESS, status, limits, "")
            out_headers = _client_headers(upstream, job, lease.account_id)
            if job.translation is not None:
                status, body = job.translation.response(status, body)
            return web.Response(status=status, body=body, headers=out_headers)
        except asyncio.CancelledError:
            # The client went away (the handler is cancelled): the upstream request is dropped with it.
            if not report.outcome:  # not yet reported (a failure report may already be on its way)
                self._report_later(report, started, oc.CANCELLED, 0, {}, "the client disconnected")
            if upstream is not None:
                upstream.close()
                upstream = None
            raise
        finally:
            if upstream is not None:
                upstream.release()

    async def _post(self, url: URL, body: bytes, headers: CIMultiDict[str]) -> aiohttp.ClientResponse:
        try:
            return await self._session.post(url, data=body, headers=headers)
        except aiohttp.ServerDisconnectedError:
            # Most often a pooled keep-alive connection the upstream had just closed: not the account's fault, and
            # the upstream never saw the request. Once more on a fresh connection before it counts as a failure.
            return await self._session.post(url, data=body, headers=headers)

    async def _error_status(
        self, report: pb.ReportOutcomeRequest, started: float, upstream: aiohttp.ClientResponse,
        limits: dict[str, str], secret: str,
    ) -> Failure:
        status = upstream.status
        try:
            body = await upstream.read()
        except (TimeoutError, aiohttp.ClientError):
            body = b""
        body = scrub(body, secret)
        outcome = oc.outcome_for_status(status)
        failure = await self._fail(report, started, outcome, status, limits, upstream_message(body, status))
        failure.body = body
        failure.headers = client_response_headers(upstream.headers.items())
        return failure

    async def _stream(
        self, request: web.Request, job: Job, report: pb.ReportOutcomeRequest, started: float,
        upstream: aiohttp.ClientResponse, limits: dict[str, str], lease: pb.Lease,
    ) -> web.StreamResponse | Failure:
        assert job.upstream.stream_kind is not None
        inspector = StreamInspector(job.upstream.stream_kind, job.strip_usage)
        # A translated stream: each whole upstream event becomes the client's events as it passes.
        translate = job.translation.stream().feed if job.translation is not None else None
        status = upstream.status
        content = upstream.content
        first = b""
        # Until the first whole event nothing is sent: a failure here can still go to another account.
        try:
            while not first and inspector.error is None:
                chunk = await content.readany()
                if not chunk:
                    first = inspector.flush()
                    break
                first = inspector.feed(chunk)
        except TimeoutError:
            return await self._fail(report, started, oc.TIMEOUT, status, limits, "no stream event in time")
        except aiohttp.ClientError as exc:
            return await self._fail(report, started, oc.NETWORK_ERROR, status, limits, _network_detail(exc))
        if inspector.error is not None:
            return await self._stream_error_failure(job, report, started, inspector, limits)
        if not first:
            return await self._fail(report, started, oc.NETWORK_ERROR, status, limits, "empty stream")
        report.time_to_first_token_ms = self._ms(started)
        if lease.probe:  # a first event that is not an error (an overloaded_error would come as one): the answer
            self._selector.report_later(_early_report(lease.lease_id, status, limits))

        out_headers = _client_headers(upstream, job, lease.account_id)
        response = web.StreamResponse(status=status, headers=out_headers)
        upstream_failure: tuple[int, str] | None = None
        try:
            await response.prepare(request)
            await response.write(translate(first) if translate else first)
            while True:
                try:
                    chunk = await content.readany()
                except TimeoutError:
                    upstream_failure = (oc.TIMEOUT, "the stream stalled")
                    break
                except aiohttp.ClientError as exc:
                    upstream_failure = (oc.NETWORK_ERROR, _network_detail(exc))
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
            self._report_later(report, started, oc.CANCELLED, status, limits, "the client disconnected mid-stream")
            return response
        report.input_tokens = inspector.input_tokens
        report.output_tokens = inspector.output_tokens
        if upstream_failure is None and inspector.error is None and not inspector.finished:
            upstream_failure = (oc.NETWORK_ERROR, "the stream ended before its last event")
        if upstream_failure is not None:
            outcome, detail = upstream_failure
            upstream.close()
            self._report_later(report, started, outcome, status, limits, detail)
            await _write_quietly(response, sse_error_event(
                job.endpoint.shape, 502, f"the upstream stream failed after it started ({detail}); retry the request",
                "upstream_stream_error"))
        elif inspector.error is not None:
            # The error event itself was passed on to the client; it ends the stream.
            err_status = error_status(inspector.error)
            self._report_later(report, started, oc.outcome_for_status(err_status), err_status, limits,
                               error_message(inspector.error))
        else:
            self._report_later(report, started, oc.SUCCESS, status, limits, "")
        await _write_quietly(response, None)
        return response

    async def _stream_error_failure(
        self, job: Job, report: pb.ReportOutcomeRequest, started: float, inspector: StreamInspector,
        limits: dict[str, str],
    ) -> Failure:
        err_status = error_status(inspector.error)
        message = error_message(inspector.error)
        failure = await self._fail(report, started, oc.outcome_for_status(err_status), err_status, limits,
                                   f"error event: {message}")
        failure.body = json.dumps(error_body(job.endpoint.shape, err_status, message)).encode()
        return failure

    def _ms(self, started: float) -> int:
        return int((self._loop.time() - started) * 1000)

    def _fill(self, report: pb.ReportOutcomeRequest, started: float, outcome: int, status: int,
              limits: dict[str, str], detail: str) -> None:
        report.outcome = outcome  # type: ignore[assignment]
        report.http_status = status
        report.latency_ms = self._ms(started)
        # What the upstream asks to wait only matters for a failure (the selector ignores it on a success).
        report.retry_after_ms = retry_after_ms(limits) if limits and outcome != oc.SUCCESS else 0
        if limits:
            report.rate_limit_headers.update(limits)
        if detail:
            report.detail = detail

    def _report_later(self, report: pb.ReportOutcomeRequest, started: float, outcome: int, status: int,
                      limits: dict[str, str], detail: str) -> None:
        self._fill(report, started, outcome, status, limits, detail)
        self._selector.report_later(report)

    async def _fail(self, report: pb.ReportOutcomeRequest, started: float, outcome: int, status: int,
                    limits: dict[str, str], detail: str) -> Failure:
        # The account's new state must count for the next lease: on the unary transport the report is awaited (and
        # shielded from the client going away); on the stream it is queued before the retry's selection, and the
        # selector applies a stream's reports before the selections sent after them.
        self._fill(report, started, outcome, status, limits, detail)
        await self._selector.report_shielded(report)
        return Failure(outcome, status, report.retry_after_ms, detail)


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


def scrub(body: bytes, secret: str) -> bytes:
    """``body`` with the account's credential, should the upstream echo it, replaced by its redacted form."""
    token = secret.removeprefix("Bearer ").strip()
    if len(token) >= 8:
        raw = token.encode()
        if raw in body:
            body = body.replace(raw, redact(token).encode())
    return body


def upstream_message(body: bytes, status: int) -> str:
    """The upstream's error message from an OpenAI- or Anthropic-shaped body (for logs and the selector)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    message = error_body_message(data)
    if message is not None:
        return f"{status} {message}"[:300]
    text = body[:200].decode(errors="replace").strip()
    return f"{status} {text}" if text else f"HTTP {status}"

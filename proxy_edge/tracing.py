"""Per request: its id (``x-request-id``), its log line and its metrics.

A middleware gives every request an id — the client's ``x-request-id`` when it is sane (at most 128 characters of
``[A-Za-z0-9._-]``), else a new one — returns it in the ``x-request-id`` response header and sets it as the logging
context (:data:`poolgate.logging_setup.REQUEST_ID`), so that every line logged while serving the request carries it.
An upstream's own ``x-request-id`` is passed on as ``x-upstream-request-id``. The forwarder notes the pool, model
and attempts on the request's :class:`RequestTrace`; the request line and the metrics are written when it ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass
from time import monotonic, time

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from poolgate.logging_setup import REQUEST_ID
from proxy_edge.leases import Lease
from proxy_edge.metrics import GENAI_OPERATIONS, OTHER_CLIENT, TOKEN_USAGE, EdgeMetrics
from proxy_edge.otel.records import AttemptRecord, Headers, SpanSink, TraceContext
from proxy_edge.outcomes import Outcome
from proxy_edge.request_log import RequestLog
from proxy_edge.routing import OTHER_MODEL
from proxy_edge.topology import ROUTING
from proxy_edge.upstream import Failure

log = logging.getLogger("poolgate.edge")

REQUEST_ID_HEADER = "x-request-id"
UPSTREAM_REQUEST_ID_HEADER = "x-upstream-request-id"
CLIENT_CLOSED = 499
"""Status recorded for requests whose client went away before the answer (nginx's convention)."""
SPANS: SpanSink | None = None
"""Where requests' spans go (set by :func:`proxy_edge.otel.install`); None: nowhere, and nothing is kept for them."""
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_OUTCOME_NAMES = {kind.value: kind.name.lower() for kind in Outcome}


def new_request_id() -> str:
    """16 random hex characters."""
    return os.urandom(8).hex()


def request_id_for(header: str | None) -> str:
    """The client's id when it is sane, else a new one."""
    if header is not None and _SANE_ID.fullmatch(header) is not None:
        return header
    return new_request_id()


@dataclass(slots=True)
class RequestTrace:
    """What the edge learns about one request while serving it."""

    request_id: str
    started: float
    metrics: EdgeMetrics
    pool: str = ""
    model: str = ""
    model_label: str = OTHER_MODEL
    """The metrics label for ``model``: a name the config gives, else ``other`` (see :meth:`Router.metric_model`)."""
    client_label: str = OTHER_CLIENT
    """The metrics label of the request's client: its name in ``edge.clients``, else ``other``."""
    account: str = ""
    """Account id (``pool/name``) of the latest attempt; never a credential."""
    attempts: int = 0
    ttft: float | None = None
    """Seconds to the first streamed byte; None for responses that are not streamed."""
    method: str = ""
    path: str = ""
    status: int = 0
    seconds: float = 0.0
    ended: float = 0.0
    """Epoch seconds when the response was done."""
    response: web.StreamResponse | None = None
    """The response once it has begun (its status and headers are on their way to the client)."""
    trace_context: TraceContext | None = None
    """The W3C trace the request's spans belong to (only while spans are exported, from the first attempt on)."""
    attempt_log: list[AttemptRecord] | None = None
    """Each upstream attempt (only while spans are exported)."""
    _failed: tuple[str, str] | None = None

    def routed(self, pool: str, model: str, model_label: str = OTHER_MODEL) -> None:
        """The request goes to ``pool`` (called once, before the first attempt)."""
        if self.pool:
            return
        self.pool, self.model, self.model_label = pool, model, model_label
        self.metrics.request_started(pool)

    def attempt_headers(self, lease: Lease, model: str, provider: str, headers: Headers) -> Headers:
        """An attempt with ``lease`` for ``model`` (as the upstream is asked for it) begins: the client's ``headers``
        for it, as they are unless spans are exported (then with the attempt span's ``traceparent``)."""
        if SPANS is None:
            return headers
        attempt = AttemptRecord(monotonic(), lease.pool, lease.account_id, model, provider, lease.base_url)
        return SPANS.attempt_began(self, attempt, headers)

    def attempted(self, lease: Lease, result: web.StreamResponse | Failure) -> None:
        """One upstream attempt with ``lease`` ended in ``result`` (an answer, or a failure before the first byte)."""
        self.attempts += 1
        self.account = lease.account_id
        outcome = _OUTCOME_NAMES.get(result.outcome, "unknown") if isinstance(result, Failure) else "success"
        self.metrics.attempt(lease.pool, lease.account_name, outcome)
        if self._failed is not None:
            self.metrics.failover(self._failed[0], lease.pool, self._failed[1])
        self._failed = (lease.pool, outcome) if isinstance(result, Failure) else None
        if self.attempt_log:
            attempt = self.attempt_log[-1]
            attempt.ended, attempt.outcome, attempt.status = monotonic(), outcome, result.status

    def finish(self, request: web.Request, status: int, request_log: RequestLog, idle: bool) -> None:
        """Metrics, and the request line (to ``request_log``), when the response is done; ``idle``: no other
        request is in flight."""
        self.seconds = seconds = monotonic() - self.started
        self.status = status
        if self.pool:
            operation = GENAI_OPERATIONS.get(request.path, "")
            self.metrics.request_finished(self.pool, self.model_label, status, seconds, self.ttft, operation,
                                          self.client_label)
            usage = request.get(TOKEN_USAGE)
            if usage is not None and operation and any(usage):
                self.metrics.token_usage(operation, self.pool, self.model_label, *usage)
            level = logging.INFO
        else:
            resource = request.match_info.route.resource
            self.metrics.request_unrouted(resource.canonical if resource is not None else "unmatched", status)
            # API calls are logged at INFO; probes, scrapes and the dashboard's polling only at DEBUG.
            level = logging.INFO if request.path.startswith("/v1/") else logging.DEBUG
        if log.isEnabledFor(level):
            self.ended = time()
            self.method, self.path = request.method, request.rel_url.raw_path
            request_log.add(level, self, idle)
        if SPANS is not None:
            SPANS.export(self, request)

    def line(self) -> tuple[str, tuple[object, ...]]:
        """The request line's message and arguments."""
        if self.pool:
            return "%s pool=%s account=%s model=%s status=%d attempts=%d latency=%dms", (
                self.path, self.pool, self.account or "-", self.model, self.status, self.attempts,
                self.seconds * 1000)
        return "%s %s status=%d latency=%dms", (self.method, self.path, self.status, self.seconds * 1000)

    def log_fields(self) -> dict[str, object]:
        """The request line's fields for JSON lines (built only when a JSON line is written)."""
        fields: dict[str, object] = {"method": self.method, "path": self.path, "status": self.status,
                                     "latency_ms": round(self.seconds * 1000, 1)}
        if self.pool:
            fields.update(pool=self.pool, account=self.account or None, model=self.model, attempts=self.attempts)
            if self.ttft is not None:
                fields["ttft_ms"] = round(self.ttft * 1000, 1)
        return fields


TRACE = web.RequestKey("poolgate_trace", RequestTrace)


def trace_for(request: web.Request, pool: str, model: str) -> RequestTrace:
    """The request's trace (made by :func:`make_middleware`), marked as routed to ``pool``."""
    trace = request[TRACE]
    routing = request.app[ROUTING].current
    trace.routed(pool, model, OTHER_MODEL if routing is None else routing.router.metric_model(model))
    return trace


def make_middleware(metrics: EdgeMetrics, request_log: RequestLog) -> Middleware:
    """The middleware that traces every request of an application (request lines in batches to ``request_log``)."""

    active = 0

    @web.middleware
    async def trace_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal active
        trace = RequestTrace(request_id_for(request.headers.get(REQUEST_ID_HEADER)), monotonic(), metrics)
        request[TRACE] = trace
        token = REQUEST_ID.set(trace.request_id)
        status = 500
        active += 1
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        finally:
            active -= 1
            trace.finish(request, status, request_log, active == 0)
            REQUEST_ID.reset(token)

    return trace_requests


async def stamp_response(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the request id header; for streams, the time to the first byte."""
    trace = request.get(TRACE)
    if trace is None:
        return
    trace.response = response
    headers = response.headers
    upstream_id = headers.get(REQUEST_ID_HEADER)
    if upstream_id is not None and upstream_id != trace.request_id:
        headers[UPSTREAM_REQUEST_ID_HEADER] = upstream_id
    headers[REQUEST_ID_HEADER] = trace.request_id
    if trace.pool and trace.ttft is None and not isinstance(response, web.Response):
        trace.ttft = monotonic() - trace.started

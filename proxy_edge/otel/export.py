"""The OpenTelemetry SDK's side: requests' spans built after the fact and sent over OTLP/HTTP.

Imported only when tracing is on (see :mod:`proxy_edge.otel`). A request's trace context is settled at its first
attempt (the upstream call must carry the attempt span's ``traceparent``) or, for a request without attempts, when
it ends; its spans are made when it has ended, with the times and ids it recorded, and queued to the SDK's batch
processor, whose thread sends them.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass
from time import monotonic, time
from urllib.parse import urlsplit

from aiohttp import web
from opentelemetry import trace as trace_api
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from poolgate import __version__
from poolgate.secrets import redact_url
from proxy_edge.metrics import GENAI_OPERATIONS, TOKEN_USAGE
from proxy_edge.otel import ENDPOINT_VARIABLES
from proxy_edge.otel.records import AttemptRecord, Headers, TraceContext
from proxy_edge.tracing import RequestTrace

log = logging.getLogger("poolgate.edge")

DEFAULT_SERVICE_NAME = "poolgate-edge"
TRACE_HEADERS = frozenset({"traceparent", "tracestate"})
_CLIENT_INPUT_LOGGERS = ("opentelemetry.trace.propagation.tracecontext", "opentelemetry.trace.span")
"""Where the SDK warns of each malformed ``traceparent`` or ``tracestate`` it ignores: client input, not logged."""
_PROPAGATOR = TraceContextTextMapPropagator()
_SAMPLED = int(TraceFlags.SAMPLED)
_RANDOM_TRACE_ID = 0x02
"""W3C trace flag: the trace id is random (the SDK's ids are)."""


class PlannedIds(IdGenerator):
    """Random ids, but for the ids planned for the next span: a request's spans are made once it has ended, with the
    trace and span ids its upstream calls already carried."""

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self._trace_id = 0
        self._span_id = 0

    def plan(self, trace_id: int = 0, span_id: int = 0) -> None:
        """The ids the next span started gets (0: a random one); ``plan()`` forgets what was planned."""
        self._trace_id, self._span_id = trace_id, span_id

    def random_span_id(self) -> int:
        """A new random span id, whatever is planned."""
        return self._random.generate_span_id()

    def random_trace_id(self) -> int:
        """A new random trace id, whatever is planned."""
        return self._random.generate_trace_id()

    def generate_trace_id(self) -> int:
        planned, self._trace_id = self._trace_id, 0
        return planned or self._random.generate_trace_id()

    def generate_span_id(self) -> int:
        planned, self._span_id = self._span_id, 0
        return planned or self._random.generate_span_id()

    def is_trace_id_random(self) -> bool:
        return True


def resource_from_environment() -> Resource:
    """The SDK's resource (``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``), named ``poolgate-edge`` and given
    poolgate's version where the environment says nothing of them."""
    resource = Resource.create()
    defaults: dict[str, AttributeValue] = {SERVICE_VERSION: __version__}
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        defaults[SERVICE_NAME] = DEFAULT_SERVICE_NAME
    return resource.merge(Resource({k: v for k, v in defaults.items()
                                    if k == SERVICE_NAME or k not in resource.attributes}))


class SpanExport:
    """Builds each request's spans when it ends and hands them to the SDK (the
    :class:`~proxy_edge.otel.records.SpanSink` of a process that exports traces)."""

    def __init__(self, provider: TracerProvider, ids: PlannedIds) -> None:
        self._provider = provider
        self._ids = ids
        self._tracer = provider.get_tracer("poolgate.edge", __version__)
        self._sampler = provider.sampler

    @classmethod
    def from_environment(cls) -> SpanExport:
        """An exporter to the OTLP/HTTP endpoint the environment names, configured as the SDK reads ``OTEL_*``."""
        ids = PlannedIds()
        provider = TracerProvider(resource=resource_from_environment(), id_generator=ids)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        for name in _CLIENT_INPUT_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        endpoint = next(os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name, "").strip())
        log.info("traces: spans of the requests go to %s (OTLP/HTTP) as service %s", redact_url(endpoint.strip()),
                 provider.resource.attributes.get(SERVICE_NAME))
        return cls(provider, ids)

    def attempt_began(self, trace: RequestTrace, attempt: AttemptRecord, headers: Headers) -> Headers:
        context = trace.trace_context
        if context is None:
            context = trace.trace_context = self._context(_values(headers, "traceparent"),
                                                          _values(headers, "tracestate"))
        attempt.span_id = self._ids.random_span_id()
        if trace.attempt_log is None:
            trace.attempt_log = []
        trace.attempt_log.append(attempt)
        carrier: dict[str, str] = {}
        span = SpanContext(context.trace_id, attempt.span_id, False, TraceFlags(context.flags), _state(context))
        _PROPAGATOR.inject(carrier, trace_api.set_span_in_context(NonRecordingSpan(span)))
        return (*((k, v) for k, v in headers if k.lower() not in TRACE_HEADERS), *carrier.items())

    def export(self, trace: RequestTrace, request: web.Request) -> None:
        if not trace.pool and not request.path.startswith("/v1/"):
            return  # probes, scrapes and the dashboard's polling are no spans (nor request lines at INFO)
        context = trace.trace_context
        if context is None:
            context = self._context(request.headers.getall("traceparent", []),
                                    request.headers.getall("tracestate", []))
        if not context.sampled:
            return
        resource = request.match_info.route.resource
        ended = _Ended(request.method, request.path, resource.canonical if resource is not None else "",
                       request.get(TOKEN_USAGE), monotonic())
        # Built a moment later, off the response's way (a plain answer is written after this returns).
        asyncio.get_running_loop().call_soon(self._emit, trace, context, ended)

    def flush(self, timeout_ms: int) -> None:
        self._provider.force_flush(timeout_ms)

    def _context(self, traceparents: list[str], tracestates: list[str]) -> TraceContext:
        """The client's trace when its ``traceparent`` is valid (one header, W3C format), else a new trace."""
        if len(traceparents) == 1:
            carrier = {"traceparent": traceparents, "tracestate": tracestates}
            parent = trace_api.get_current_span(_PROPAGATOR.extract(carrier)).get_span_context()
            if parent.is_valid:
                sampled = self._sampled(parent.trace_id, trace_api.set_span_in_context(NonRecordingSpan(parent)))
                flags = (_SAMPLED if sampled else 0) | (parent.trace_flags & _RANDOM_TRACE_ID)
                return TraceContext(parent.trace_id, parent.span_id, flags, parent.trace_state.to_header())
        trace_id = self._ids.random_trace_id()
        return TraceContext(trace_id, 0, (_SAMPLED if self._sampled(trace_id, None) else 0) | _RANDOM_TRACE_ID)

    def _sampled(self, trace_id: int, parent: Context | None) -> bool:
        decision = self._sampler.should_sample(parent, trace_id, "", SpanKind.SERVER).decision
        return decision is Decision.RECORD_AND_SAMPLE

    def _emit(self, trace: RequestTrace, context: TraceContext, ended: _Ended) -> None:
        clock = _EpochNs(time() - monotonic())
        operation = GENAI_OPERATIONS.get(ended.path, "")
        attempts = trace.attempt_log or []
        attributes: dict[str, AttributeValue] = {
            "http.request.method": ended.method, "url.path": ended.path,
            "http.response.status_code": trace.status, "poolgate.request_id": trace.request_id}
        if ended.route:
            attributes["http.route"] = ended.route
        if trace.pool:
            attributes.update({"poolgate.pool": trace.pool, "poolgate.attempts": trace.attempts,
                               "gen_ai.request.model": trace.model})
            if trace.account:
                attributes["poolgate.account"] = trace.account
        if operation:
            attributes["gen_ai.operation.name"] = operation
        if attempts:
            attributes["gen_ai.provider.name"] = attempts[-1].provider
        if ended.usage is not None:
            attributes.update(_usage(ended.usage))
        if trace.ttft is not None:
            attributes["poolgate.time_to_first_token_ms"] = round(trace.ttft * 1000, 1)
        if trace.status >= 500:
            attributes["error.type"] = str(trace.status)
        parent = None
        if context.parent_span_id:
            parent = trace_api.set_span_in_context(NonRecordingSpan(SpanContext(
                context.trace_id, context.parent_span_id, True, TraceFlags(context.flags), _state(context))))
        name = f"{ended.method} {ended.route}" if ended.route else ended.method
        span = self._start(name, parent, SpanKind.SERVER, attributes, clock(trace.started),
                           trace_id=0 if parent else context.trace_id)
        if trace.status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        in_request = trace_api.set_span_in_context(span)
        for number, attempt in enumerate(attempts, 1):
            served = attempt is attempts[-1] and attempt.outcome == "success"
            attempt_span = self._attempt_span(attempt, number, operation, ended.usage if served else None,
                                              in_request, clock(attempt.started))
            attempt_span.end(end_time=clock(attempt.ended or ended.at))  # still running: the client went away
        span.end(end_time=clock(ended.at))

    def _attempt_span(self, attempt: AttemptRecord, number: int, operation: str, usage: tuple[int, int] | None,
                      parent: Context, started_ns: int) -> trace_api.Span:
        outcome = attempt.outcome or "cancelled"
        attributes: dict[str, AttributeValue] = {
            "gen_ai.request.model": attempt.model, "gen_ai.provider.name": attempt.provider,
            "poolgate.pool": attempt.pool, "poolgate.account": attempt.account, "poolgate.attempt": number,
            "poolgate.outcome": outcome}
        if operation:
            attributes["gen_ai.operation.name"] = operation
        if attempt.status:
            attributes["http.response.status_code"] = attempt.status
        attributes.update(_server(attempt.base_url))
        if usage is not None:
            attributes.update(_usage(usage))
        if outcome != "success":
            attributes["error.type"] = outcome
        span = self._start(f"{operation or 'upstream'} {attempt.model}", parent, SpanKind.CLIENT, attributes,
                           started_ns, span_id=attempt.span_id)
        if outcome != "success":
            span.set_status(Status(StatusCode.ERROR))
        return span

    def _start(self, name: str, parent: Context | None, kind: SpanKind, attributes: dict[str, AttributeValue],
               start_ns: int, trace_id: int = 0, span_id: int = 0) -> trace_api.Span:
        """A span started with the ids the request recorded (0: a new one)."""
        self._ids.plan(trace_id, span_id)
        try:
            return self._tracer.start_span(name, parent, kind, attributes, start_time=start_ns)
        finally:
            self._ids.plan()


@dataclass(frozen=True, slots=True)
class _Ended:
    """What a request's spans need of it beyond its trace, taken as it ends."""

    method: str
    path: str
    route: str
    """The route's pattern (``/v1/models/{model}``); empty for a path no route matched."""
    usage: tuple[int, int] | None
    at: float
    """``time.monotonic()`` when it ended."""


@dataclass(frozen=True, slots=True)
class _EpochNs:
    """Turns ``time.monotonic()`` readings into the epoch nanoseconds spans carry."""

    offset: float

    def __call__(self, when: float) -> int:
        return int((when + self.offset) * 1e9)

def _values(headers: Headers, name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name]


def _state(context: TraceContext) -> TraceState | None:
    return TraceState.from_header([context.tracestate]) if context.tracestate else None


def _usage(usage: tuple[int, int]) -> dict[str, AttributeValue]:
    return {"gen_ai.usage.input_tokens": usage[0], "gen_ai.usage.output_tokens": usage[1]}


def _server(base_url: str) -> dict[str, AttributeValue]:
    """``server.address`` and ``server.port`` of the upstream (never the URL's user or password)."""
    try:
        parts = urlsplit(base_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return {}
    return {"server.address": parts.hostname, "server.port": port} if parts.hostname else {}

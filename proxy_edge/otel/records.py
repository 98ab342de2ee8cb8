"""What a request's spans are built from, beyond its :class:`~proxy_edge.tracing.RequestTrace`: the trace context it
belongs to and each of its upstream attempts. Plain data, recorded only while spans are exported
(:data:`proxy_edge.tracing.SPANS`); nothing here imports OpenTelemetry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from aiohttp import web

    from proxy_edge.tracing import RequestTrace

Headers = tuple[tuple[str, str], ...]
"""A request's headers as (name, value) pairs, in their order."""


@dataclass(frozen=True, slots=True)
class TraceContext:
    """The W3C trace a request's spans belong to: the client's (its ``traceparent``), else a new one."""

    trace_id: int
    parent_span_id: int
    """The client's span the request continues; 0 when the request span is a trace's root."""
    flags: int
    """The W3C trace flags the request's own spans carry (bit 0: sampled)."""
    tracestate: str = ""
    """The client's ``tracestate``, passed on unchanged."""

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 1)


@dataclass(slots=True)
class AttemptRecord:
    """One upstream attempt: when it ran, with which account, and how it ended. Never a credential."""

    started: float
    """``time.monotonic()`` when the attempt began."""
    pool: str
    account: str
    """The account's id, ``pool/name``."""
    model: str
    """The model as the upstream was asked for it."""
    provider: str
    """The pool's API format (``openai``, ``anthropic``)."""
    base_url: str
    span_id: int = 0
    """The attempt span's id, which the upstream call's ``traceparent`` carries."""
    ended: float = 0.0
    """``time.monotonic()`` when the attempt ended; 0 while it runs (or if the client went away during it)."""
    outcome: str = ""
    """``success``, ``rate_limited``, ... as in the attempts metric; empty while it runs."""
    status: int = 0
    """The upstream's HTTP status; 0 when there was no answer."""


class SpanSink(Protocol):
    """Where requests' spans go: :class:`proxy_edge.otel.export.SpanExport` when traces are exported."""

    def attempt_began(self, trace: RequestTrace, attempt: AttemptRecord, headers: Headers) -> Headers:
        """Record ``attempt`` on ``trace``; the client's ``headers`` as the attempt sends them upstream (with the
        attempt span's ``traceparent`` instead of the client's)."""

    def export(self, trace: RequestTrace, request: web.Request) -> None:
        """Build and queue the spans of ``request``, which has ended."""

    def flush(self, timeout_ms: int) -> None:
        """Send the spans queued so far (blocks up to ``timeout_ms``)."""

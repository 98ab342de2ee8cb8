"""A small OTLP/HTTP trace receiver on loopback: ``POST /v1/traces`` bodies decoded as the collector would, and kept."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from poolgate.http_site import start_site


def plain(value: AnyValue) -> object:
    """An attribute's value as Python (strings, ints, floats, booleans)."""
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind is not None else None


@dataclass
class ReceivedSpan:
    """One span as received, with its resource's and its own attributes as plain dictionaries."""

    span: Span
    resource: dict[str, object]
    attributes: dict[str, object]

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_span_id(self) -> str:
        return self.span.parent_span_id.hex()


@dataclass
class OtlpReceiver:
    """Keeps every span posted to it, and every raw body (to search for what must never be sent)."""

    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    spans: list[ReceivedSpan] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.content_type != "application/x-protobuf":
            return web.Response(status=415, text="OTLP/HTTP protobuf expected")
        export = ExportTraceServiceRequest()
        export.ParseFromString(body)
        self.bodies.append(body)
        for resource_spans in export.resource_spans:
            resource = {a.key: plain(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(ReceivedSpan(span, resource, {a.key: plain(a.value) for a in span.attributes}))
        self.arrived.set()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(),
                            content_type="application/x-protobuf")

    async def wait_for(self, count: int, within: float = 15.0) -> list[ReceivedSpan]:
        """Once at least ``count`` spans have arrived: all of them (fails after ``within`` seconds)."""
        async with asyncio.timeout(within):
            while len(self.spans) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return list(self.spans)

    def in_trace(self, trace_id: str) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.trace_id == trace_id]


async def start_receiver() -> tuple[OtlpReceiver, web.AppRunner]:
    """A receiver on 127.0.0.1 and a free port; its runner, to clean up."""
    receiver = OtlpReceiver()
    app = web.Application()
    app.router.add_post("/v1/traces", receiver.handle)
    runner, port = await start_site(app, "127.0.0.1", 0)
    receiver.url = f"http://127.0.0.1:{port}"
    return receiver, runner

"""OpenTelemetry traces of the edge's requests: on when the ``otel`` extra is installed and an OTLP endpoint is set.

Each request the edge serves becomes a span (kind SERVER), each of its upstream attempts a child span (CLIENT). They
are built when the request has ended, from its :class:`~proxy_edge.tracing.RequestTrace`, with the times it
recorded; while tracing is off nothing is recorded for them and nothing of OpenTelemetry is imported (this module
reads the environment only). The spans go to the endpoint over OTLP/HTTP; the standard ``OTEL_*`` variables are
read as the SDK reads them (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_HEADERS`` ...), and ``OTEL_SDK_DISABLED=true`` turns it off.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping

from aiohttp import web

log = logging.getLogger("poolgate.edge")

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
"""The standard variables naming where traces go (the first for traces only); either turns tracing on."""
DISABLED_VARIABLE = "OTEL_SDK_DISABLED"
FLUSH_TIMEOUT_MS = 5000
"""How long the edge's cleanup waits for the spans still pending to be sent."""


def endpoint_variable(environ: Mapping[str, str]) -> str | None:
    """The variable that turns tracing on (None: tracing is off)."""
    if environ.get(DISABLED_VARIABLE, "").strip().lower() == "true":
        return None
    return next((name for name in ENDPOINT_VARIABLES if environ.get(name, "").strip()), None)


def install(app: web.Application, environ: Mapping[str, str] | None = None) -> None:
    """Export ``app``'s requests as spans when the environment asks for it (before the app starts); pending spans
    are sent when the app is cleaned up. Without the SDK, one warning says what to install."""
    env = os.environ if environ is None else environ
    variable = endpoint_variable(env)
    if variable is None:
        return
    from proxy_edge import tracing  # not at the top: tracing imports this package's records

    if tracing.SPANS is None:  # one exporter per process, shared by its applications
        try:
            from proxy_edge.otel.export import SpanExport
        except ImportError as exc:
            if not (exc.name or "").startswith("opentelemetry"):
                raise
            log.warning("%s is set but OpenTelemetry is not installed, so no traces are exported: "
                        "pip install 'poolgate[otel]'", variable)
            return
        tracing.SPANS = SpanExport.from_environment()
    app.on_cleanup.append(_flush)


async def _flush(app: web.Application) -> None:
    from proxy_edge import tracing

    spans = tracing.SPANS
    if spans is not None:
        await asyncio.to_thread(spans.flush, FLUSH_TIMEOUT_MS)

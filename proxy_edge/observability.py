"""Everything that lets an operator see the edge at work, added to the application in one call: request ids and
the request log line, Prometheus metrics (``GET /metrics``), usage (``GET /v1/accounts/usage``) and the dashboard
(``GET /dashboard``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web

from proxy_edge import dashboard
from proxy_edge.metrics import METRICS, EdgeMetrics, metrics_handler
from proxy_edge.request_log import RequestLog
from proxy_edge.tracing import make_middleware, stamp_response
from proxy_edge.usage import usage_handler

REQUEST_LOG = web.AppKey("request_log", RequestLog)


def install(app: web.Application, formats: Mapping[str, str]) -> None:
    """Add the middleware, the response hook and the routes to ``app`` (before it starts); ``formats``: each pool's
    API format, as the routing of the moment says."""
    metrics = EdgeMetrics((), formats)
    app[METRICS] = metrics
    request_log = app[REQUEST_LOG] = RequestLog(logging.getLogger("poolgate.edge"))
    app.middlewares.append(make_middleware(metrics, request_log))
    app.on_cleanup.append(_flush_request_log)
    app.on_response_prepare.append(stamp_response)
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/v1/accounts/usage", usage_handler)
    dashboard.install(app)


async def _flush_request_log(app: web.Application) -> None:
    app[REQUEST_LOG].flush()

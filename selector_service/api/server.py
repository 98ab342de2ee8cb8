"""The gRPC server: the Selector service plus standard health checking and reflection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from poolgate import selector_channel
from poolgate.config import SelectorSection
from poolgate.v1 import selector_pb2, selector_pb2_grpc
from selector_service.api.admin import AdminServicer
from selector_service.api.security import TokenInterceptor, server_credentials
from selector_service.api.servicer import SelectorServicer
from selector_service.domain.selector import SelectorCore
from selector_service.overlay import ConfigSource

if TYPE_CHECKING:
    from selector_service.api.metrics import SelectorMetrics

SERVICE_NAME = selector_pb2.DESCRIPTOR.services_by_name["Selector"].full_name
ADMIN_SERVICE_NAME = selector_pb2.DESCRIPTOR.services_by_name["Admin"].full_name


def ping_policy() -> list[tuple[str, int]]:
    """What pings the server accepts from its clients: as often as half their keepalive interval
    (``selector_channel.KEEPALIVE_TIME_MS``), with or without calls open. gRPC's default (one ping per 5 minutes
    without data, two strikes) answers the edge's 30-second pings with GOAWAY ``too_many_pings`` after about
    2.5 minutes idle."""
    return [
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", selector_channel.KEEPALIVE_TIME_MS // 2),
        ("grpc.http2.max_ping_strikes", 2),
    ]


class ListenError(RuntimeError):
    """The server could not bind its address."""


async def start_server(
    core: SelectorCore,
    listen: str,
    source: ConfigSource | None = None,
    metrics: SelectorMetrics | None = None,
    security: SelectorSection | None = None,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Start serving on ``listen`` (``host:port`` or ``unix:/path``); returns the server and the bound port.

    With ``security`` carrying tokens, every call but health and reflection must present one; with a certificate,
    the server speaks TLS (and asks for client certificates when a client CA is set).
    """
    interceptors = []
    if security is not None and (security.auth.tokens or security.auth.admin_tokens):
        interceptors.append(TokenInterceptor(security.auth.tokens, security.auth.admin_tokens))
    credentials = server_credentials(security) if security is not None else None
    server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 0), *ping_policy()])
    selector_pb2_grpc.add_SelectorServicer_to_server(SelectorServicer(core, metrics), server)
    selector_pb2_grpc.add_AdminServicer_to_server(AdminServicer(core, source), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, ADMIN_SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME),
        server,
    )
    try:
        port = server.add_secure_port(listen, credentials) if credentials else server.add_insecure_port(listen)
    except RuntimeError as exc:
        raise ListenError(
            f"cannot listen on {listen}: {exc}; is another process using it? (--listen to change)"
        ) from exc
    if port == 0 and not listen.startswith("unix:"):
        raise ListenError(f"cannot listen on {listen}: the address is in use or invalid (--listen to change)")
    await server.start()
    for service in ("", SERVICE_NAME):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer

"""Opening a channel to the selector, the same way for the edge and the ``poolgate`` commands.

Several addresses in one channel are spread with gRPC's client-side ``round_robin`` load balancing (a broken replica
is skipped), for the commands; the edge opens one channel per replica instead (:mod:`proxy_edge.replicas`). TLS is
used when a CA is configured; the bearer token travels as call metadata.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from poolgate.addresses import loopback_for_wildcard
from poolgate.config import ClientTLS

Metadata = tuple[tuple[str, str], ...]

KEEPALIVE_TIME_MS = 30_000
"""How often a client pings the selector while a call is open (the edge's Exchange stream always is), so a selector
that vanished without closing the connection is noticed; the selector accepts pings this often
(selector_service/api/server.py)."""
KEEPALIVE_TIMEOUT_MS = 10_000
"""How long a ping may go unanswered before the connection counts as dead."""
RECONNECT_BACKOFF_MS = 250
"""The longest wait between reconnect attempts, so a selector that comes back serves at once (gRPC's default
backoff grows to 120 s)."""


def channel_options() -> list[tuple[str, int | str]]:
    """The options every selector channel is opened with (reconnect backoff and keepalive)."""
    return [
        ("grpc.initial_reconnect_backoff_ms", min(100, RECONNECT_BACKOFF_MS)),
        ("grpc.min_reconnect_backoff_ms", 1000),  # the time one connection attempt may take
        ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
        ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
        ("grpc.http2.max_pings_without_data", 0),  # keep pinging on an idle stream (gRPC's default stops after 2)
        # Never through an http_proxy of the environment (gRPC reads it and does not spare loopback): the link to
        # the selector carries leased credentials, and an HTTP proxy is for upstream calls.
        ("grpc.enable_http_proxy", 0),
    ]


def split_addresses(addresses: str) -> list[str]:
    """The addresses of a comma-separated list, as a client reaches them (a wildcard host becomes loopback)."""
    return [loopback_for_wildcard(a.strip()) for a in addresses.split(",") if a.strip()]


def target(addresses: str) -> str:
    """A gRPC target for one address or a comma-separated list (IPs, for client-side load balancing)."""
    parts = split_addresses(addresses)
    if len(parts) <= 1:
        return parts[0] if parts else addresses
    scheme = "ipv6" if all(p.startswith("[") for p in parts) else "ipv4"
    return f"{scheme}:{','.join(parts)}"


def options(addresses: str, tls: ClientTLS, balance: bool = True) -> list[tuple[str, int | str]]:
    """Channel options. With several addresses, ``balance`` spreads calls (``round_robin``); without it every call
    goes to the first live replica (``pick_first``), for clients whose calls must stay on one replica."""
    result = channel_options()
    if "," in addresses:
        result.append(("grpc.lb_policy_name", "round_robin" if balance else "pick_first"))
    if tls.server_name:
        result.append(("grpc.ssl_target_name_override", tls.server_name))
    return result


def channel_credentials(tls: ClientTLS) -> grpc.ChannelCredentials | None:
    if not tls.ca:
        return None
    try:
        return grpc.ssl_channel_credentials(
            root_certificates=Path(tls.ca).read_bytes(),
            private_key=Path(tls.key).read_bytes() if tls.key else None,
            certificate_chain=Path(tls.cert).read_bytes() if tls.cert else None,
        )
    except OSError as exc:
        raise ValueError(f"cannot read the selector TLS files (edge.selector_tls): {exc}") from None


def metadata(token: str) -> Metadata | None:
    return (("authorization", f"Bearer {token}"),) if token else None


def open_aio_channel(addresses: str, tls: ClientTLS, balance: bool = True) -> grpc.aio.Channel:
    credentials = channel_credentials(tls)
    if credentials is None:
        return grpc.aio.insecure_channel(target(addresses), options=options(addresses, tls, balance))
    return grpc.aio.secure_channel(target(addresses), credentials, options=options(addresses, tls, balance))


def open_channel(addresses: str, tls: ClientTLS) -> grpc.Channel:
    """A blocking channel (for the command-line tools)."""
    credentials = channel_credentials(tls)
    if credentials is None:
        return grpc.insecure_channel(target(addresses), options=options(addresses, tls))
    return grpc.secure_channel(target(addresses), credentials, options=options(addresses, tls))

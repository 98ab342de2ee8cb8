"""Who may call the selector: bearer tokens checked on every call, TLS, and the rule for non-loopback listening.

Leases carry credentials, so whoever can call SelectAccount can collect every key of a pool. On loopback (or a Unix
socket) only local processes can; anywhere else the selector requires tokens and TLS, unless the operator says
``--insecure-listen`` on purpose.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc

from poolgate.config import SelectorSection

log = logging.getLogger("poolgate.selector.security")

ADMIN_PREFIX = "/poolgate.v1.Admin/"
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
INSECURE_WARNING_INTERVAL = 3600.0


class ExposureError(RuntimeError):
    """The selector would listen beyond this machine without authentication and TLS."""


def is_loopback(listen: str) -> bool:
    """Whether ``listen`` (host:port, [v6]:port or unix:path) is reachable from this machine only."""
    if listen.startswith("unix:"):
        return True
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: may resolve anywhere


def check_exposure(listen: str, section: SelectorSection, insecure: bool) -> None:
    """Refuse to listen beyond loopback without tokens and TLS, unless ``insecure`` (then warn)."""
    if is_loopback(listen):
        return
    missing = []
    if not section.auth.tokens and not section.auth.admin_tokens:
        missing.append("selector.auth.tokens (bearer tokens clients must present)")
    if not section.tls.cert:
        missing.append("selector.tls.cert and selector.tls.key (a server certificate)")
    if not missing:
        return
    if insecure:
        log.warning("INSECURE: listening on %s without %s; anyone who can reach it can read every account's key",
                    listen, " and ".join(missing))
        return
    raise ExposureError(
        f"refusing to listen on {listen}: it is not loopback, and leases carry credentials. Configure "
        + " and ".join(missing) + ", or listen on 127.0.0.1 / a unix: socket, or pass --insecure-listen if you "
        "really mean it"
    )


def server_credentials(section: SelectorSection) -> grpc.ServerCredentials | None:
    tls = section.tls
    if not tls.cert:
        return None
    try:
        chain = Path(tls.cert).read_bytes()
        key = Path(tls.key).read_bytes()
        client_ca = Path(tls.client_ca).read_bytes() if tls.client_ca else None
    except OSError as exc:
        raise ExposureError(f"cannot read the selector's TLS files: {exc}") from None
    return grpc.ssl_server_credentials([(key, chain)], root_certificates=client_ca,
                                       require_client_auth=client_ca is not None)


class TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Checks ``authorization: Bearer <token>`` on every call (constant-time); health and reflection stay open."""

    def __init__(self, tokens: Sequence[str], admin_tokens: Sequence[str]) -> None:
        self._tokens = [t.encode() for t in tokens]
        self._admin = [t.encode() for t in admin_tokens]
        self._any = [*self._tokens, *self._admin]  # a lease call may present either kind

    def _allowed(self, presented: bytes, admin: bool) -> bool:
        ok = False
        for token in self._admin if admin else self._any:
            ok |= hmac.compare_digest(presented, token)  # no early exit: time does not tell which matched
        return ok

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method or ""
        handler = await continuation(details)
        if method.startswith(OPEN_PREFIXES) or handler is None:
            return handler
        presented = b""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                text = value.decode() if isinstance(value, bytes) else value
                if text.lower().startswith("bearer "):
                    presented = text[7:].strip().encode()
        admin = method.startswith(ADMIN_PREFIX)
        if presented and self._allowed(presented, admin):
            return handler
        if not presented:
            return _deny(handler, grpc.StatusCode.UNAUTHENTICATED,
                         "missing credentials: send 'authorization: Bearer <token>' (selector.auth.tokens)")
        if admin and self._allowed(presented, admin=False):
            return _deny(handler, grpc.StatusCode.PERMISSION_DENIED,
                         "this token may lease accounts but not administer them: use an admin token")
        return _deny(handler, grpc.StatusCode.UNAUTHENTICATED, "invalid token")


def _deny(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    async def abort(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(code, message)

    async def abort_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(code, message)
        yield  # pragma: no cover - makes this an async generator, as streaming handlers are

    kwargs = {"request_deserializer": handler.request_deserializer,
              "response_serializer": handler.response_serializer}
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort_stream, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort_stream, **kwargs)
    return grpc.unary_unary_rpc_method_handler(abort, **kwargs)

"""Starting an aiohttp application on a TCP address: the edge, the fake upstream and the selector's metrics.

:func:`start_site` can bound how long clients may take (:class:`ClientLimits`): aiohttp closes a keep-alive
connection that stays idle, and a small protocol guard closes one whose request headers do not arrive in time (a
client that sends half a request line and waits, as slowloris does). The guard costs nothing while a request is being
handled; it looks at a connection only when bytes arrive between requests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

log = logging.getLogger("poolgate.http")

DEFAULT_BACKLOG = 128
"""aiohttp's own default listen backlog."""
SOMAXCONN_FILE = Path("/proc/sys/net/core/somaxconn")


@dataclass(frozen=True)
class ClientLimits:
    """How long a client may take: ``header`` from a request's first byte until its headers are complete, ``idle``
    for a connection without a request (a new one before its first byte, a keep-alive one between requests)."""

    header: float
    idle: float


@dataclass
class Site:
    """A running application: ``url`` is its base URL (the real port when started on port 0)."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def stop(self) -> None:
        await self.runner.cleanup()

    async def stop_accepting(self) -> None:
        """Close the listening sockets and the idle keep-alive connections; requests in flight go on (and their
        connections close after their response)."""
        for site in list(self.runner.sites):
            await site.stop()
        server = self.runner.server
        if server is not None:
            server.pre_shutdown()


def listen_backlog(wanted: int) -> int:
    """``wanted``, capped by the system's ``net.core.somaxconn`` (the kernel caps it silently; this says so)."""
    try:
        system = int(SOMAXCONN_FILE.read_text().strip())
    except (OSError, ValueError):
        return wanted
    if wanted > system > 0:
        log.warning("listen backlog %d is above the system's net.core.somaxconn (%d); the kernel uses %d",
                    wanted, system, system)
        return system
    return wanted


async def start_site(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float = 60.0, handler_cancellation: bool = False,
    backlog: int = DEFAULT_BACKLOG, limits: ClientLimits | None = None, reuse_port: bool = False,
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port`` (port 0 picks a free port); returns the runner (to clean up) and the bound
    port. When the address cannot be bound, the runner is cleaned up before the error propagates. ``reuse_port``
    binds with SO_REUSEPORT, so that several processes listen on one address and the kernel spreads the connections
    over them (the edge's workers)."""
    options: dict[str, Any] = {}
    if limits is not None:
        options["keepalive_timeout"] = limits.idle
    runner = _Runner(app, limits=limits, handler_cancellation=handler_cancellation, access_log=None,
                     shutdown_timeout=shutdown_timeout, **options)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, backlog=backlog, reuse_port=reuse_port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])


class _Runner(web.AppRunner):
    """An AppRunner whose connections enforce :class:`ClientLimits` (when given)."""

    __slots__ = ("_limits",)

    def __init__(self, app: web.Application, *, limits: ClientLimits | None, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._limits = limits

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        if self._limits is None:
            return server
        return _GuardedServer(server, self._limits.header)


class _GuardedServer(web.Server):
    """The application's server, making :class:`_HeaderGuard` connections."""

    def __init__(self, made: web.Server, header_timeout: float) -> None:
        super().__init__(made.request_handler, request_factory=made.request_factory,
                         handler_cancellation=made.handler_cancellation, loop=made._loop, **made._kwargs)
        self._header_timeout = header_timeout

    def __call__(self) -> RequestHandler:
        handler = _HeaderGuard(self, loop=self._loop, **self._kwargs)
        handler.header_timeout = self._header_timeout
        return handler


class _HeaderGuard(RequestHandler):
    """A connection that must complete a request's headers within ``header_timeout`` of the request's first byte.

    Between requests aiohttp's keep-alive timer runs (``idle``) and closes the connection when it fires while the
    connection still waits for a request; a request whose first bytes arrive brings that timer forward to the header
    deadline. Once the headers are complete the timer no longer applies, so only a stalled request is cut.
    """

    __slots__ = ("header_timeout",)

    header_timeout: float

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._request_in_progress or self._messages or self._force_close or self._close:
            return  # a request being handled, or its headers complete: nothing to watch
        # Bytes of a request whose headers are still incomplete.
        loop = self._loop
        deadline = loop.time() + self.header_timeout
        if self._keepalive_handle is not None and deadline >= self._next_keepalive_close_time:
            return  # due sooner already (the request's first bytes set it, or the idle timer is shorter)
        self._next_keepalive_close_time = deadline
        if self._keepalive_handle is not None:
            self._keepalive_handle.cancel()
        self._keepalive_handle = loop.call_at(deadline, self._process_keepalive)

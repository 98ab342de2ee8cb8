"""A small forward HTTP proxy on 127.0.0.1 port 0, for tests of egress proxies.

It serves ``CONNECT host:port`` (a tunnel: bytes piped both ways) and absolute-URI requests for plain HTTP
(``POST http://host:port/path``: forwarded in origin form, one request per connection), and counts what went through
it: requests per upstream ``host:port`` and the ``Proxy-Authorization`` each carried. With ``credentials`` set, a
request without them gets a 407.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections import Counter
from dataclasses import dataclass, field

_HOP_BY_HOP = (b"proxy-authorization", b"proxy-connection", b"connection", b"keep-alive")


@dataclass
class ForwardProxy:
    credentials: tuple[str, str] | None = None
    """(user, password) the proxy asks for (Basic); None: it asks for none."""
    upstreams: Counter[str] = field(default_factory=Counter)
    """``host:port`` -> requests (tunnels) that went to it."""
    authorizations: list[str | None] = field(default_factory=list)
    """The ``Proxy-Authorization`` of each request, in order (None when it had none)."""
    refused: int = 0
    hosts: dict[str, str] = field(default_factory=dict)
    """Names the proxy resolves itself (``upstream.invalid`` -> ``127.0.0.1``), as a proxy with its own DNS does."""
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, user: str = "", password: str = "") -> str:
        auth = f"{user}:{password}@" if user else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    async def start(self) -> ForwardProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._one(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head[:-4].split(b"\r\n")
        method, target, version = request_line.split(b" ", 2)
        headers = [line.split(b":", 1) for line in lines if b":" in line]
        authorization = next((v.strip().decode() for k, v in headers if k.strip().lower() == b"proxy-authorization"),
                             None)
        self.authorizations.append(authorization)
        if self.credentials is not None:
            user, password = self.credentials
            expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
            if authorization != expected:
                self.refused += 1
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                await writer.drain()
                return
        if method == b"CONNECT":
            host, _, port = target.decode().rpartition(":")
            upstream_reader, upstream_writer = await asyncio.open_connection(self.hosts.get(host, host), int(port))
            self.upstreams[f"{host}:{port}"] += 1
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await _pipe_both(reader, writer, upstream_reader, upstream_writer)
            return
        # Absolute form: http://host:port/path -> /path to host:port, one request on this connection.
        rest = target.decode().removeprefix("http://")
        authority, _, path = rest.partition("/")
        host, _, port = authority.rpartition(":")
        upstream_reader, upstream_writer = await asyncio.open_connection(self.hosts.get(host, host), int(port or 80))
        self.upstreams[f"{host}:{port or 80}"] += 1
        kept = [b"%s:%s" % (k, v) for k, v in headers if k.strip().lower() not in _HOP_BY_HOP]
        upstream_writer.write(b"\r\n".join([b"%s /%s %s" % (method, path.encode(), version), *kept,
                                            b"Connection: close"]) + b"\r\n\r\n")
        await _pipe_both(reader, writer, upstream_reader, upstream_writer)


async def _pipe_both(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     upstream_reader: asyncio.StreamReader, upstream_writer: asyncio.StreamWriter) -> None:
    """Bytes both ways until the upstream ends (then the client's side is closed too)."""
    to_upstream = asyncio.ensure_future(_pipe(reader, upstream_writer))
    try:
        await _pipe(upstream_reader, writer)
    finally:
        to_upstream.cancel()
        await asyncio.gather(to_upstream, return_exceptions=True)
        upstream_writer.close()
        with contextlib.suppress(Exception):
            await upstream_writer.wait_closed()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()


async def start_forward_proxy(credentials: tuple[str, str] | None = None,
                              hosts: dict[str, str] | None = None) -> ForwardProxy:
    """A running :class:`ForwardProxy`; stop it with ``await proxy.stop()``."""
    return await ForwardProxy(credentials, hosts=hosts or {}).start()

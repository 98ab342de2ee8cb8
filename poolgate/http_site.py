"""Starting an aiohttp application on a TCP address: the edge, the fake upstream and the selector's metrics."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


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


async def start_site(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float = 60.0, handler_cancellation: bool = False
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port`` (port 0 picks a free port); returns the runner (to clean up) and the bound
    port. When the address cannot be bound, the runner is cleaned up before the error propagates."""
    runner = web.AppRunner(app, handler_cancellation=handler_cancellation, access_log=None,
                           shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, int(runner.addresses[0][1])

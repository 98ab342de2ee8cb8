"""Running the selector: wiring config, plugins, storage, domain and gRPC server together, and stopping cleanly."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health

from poolgate.config import Config, ConfigError
from selector_service.api.server import ListenError, start_server
from selector_service.check import load_checked, strategy_errors
from selector_service.domain.selector import SelectorCore
from selector_service.plugin.manager import PluginError, StrategyRegistry, load_strategies
from selector_service.storage import StateRepository

log = logging.getLogger("poolgate.selector")

GRACE_SECONDS = 5.0


@dataclass
class SelectorHandle:
    """A running selector: its bound port, the domain core (for tests and admin), and how to stop it."""

    server: grpc.aio.Server
    core: SelectorCore
    repository: StateRepository
    health: health.aio.HealthServicer
    listen: str
    port: int

    @property
    def address(self) -> str:
        if self.listen.startswith("unix:"):
            return self.listen
        host = self.listen.rsplit(":", 1)[0]
        return f"{host}:{self.port}"

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Stop taking calls, let running ones finish (up to ``grace`` s), flush state, close the database."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.core.stop()
        await self.repository.close()

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


async def start_selector(
    config: Config,
    listen: str | None = None,
    database: str | None = None,
    strategies: StrategyRegistry | None = None,
) -> SelectorHandle:
    """Start a selector for ``config``; ``listen``/``database`` override the config (use port 0 in tests)."""
    registry = strategies if strategies is not None else load_strategies()
    errors = strategy_errors(config, registry)
    if errors:
        raise ConfigError("config", errors)
    address = listen or config.selector.listen
    repository = StateRepository.open(database or config.selector.database)
    core = SelectorCore(config, registry, repository)
    try:
        await core.start()
        server, port, health_servicer = await start_server(core, address)
    except BaseException:
        await core.stop()
        await repository.close()
        raise
    return SelectorHandle(server, core, repository, health_servicer, address, port)


async def _serve(config: Config, listen: str | None, database: str | None, registry: StrategyRegistry) -> None:
    handle = await start_selector(config, listen, database, registry)
    accounts = sum(len(p.accounts) for p in config.pools.values())
    log.info("poolgate selector listening on %s (%d pool(s), %d account(s); state in %s)",
             handle.address, len(config.pools), accounts, database or config.selector.database)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("poolgate selector stopping")
    await handle.stop()


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()), stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run_selector_command(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    try:
        config, registry = load_checked(args.config)
    except ConfigError as exc:
        print(f"{exc.source}: {len(exc.errors)} problem(s):", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1
    except PluginError as exc:
        print(f"poolgate plugins: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(_serve(config, args.listen, args.database, registry))
    except ListenError as exc:
        print(f"poolgate selector: {exc}", file=sys.stderr)
        return 1
    return 0

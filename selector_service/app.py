"""Running the selector: wiring config, plugins, storage, domain and gRPC server together, and stopping cleanly."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health

from poolgate import runtime
from poolgate.addresses import split_port_only
from poolgate.config import Config, ConfigError
from poolgate.logging_setup import configure_logging
from selector_service.api.admin import describe
from selector_service.api.security import INSECURE_WARNING_INTERVAL, ExposureError, check_exposure, is_loopback
from selector_service.api.server import ListenError, start_server
from selector_service.check import load_checked, report_problems
from selector_service.credentials.manager import CredentialManager
from selector_service.domain.replication import Replicator
from selector_service.domain.selector import ReloadSummary, SelectorCore
from selector_service.domain.usage import UsageRecorder
from selector_service.overlay import ConfigSource
from selector_service.plugin.manager import (
    CredentialSourceRegistry,
    PluginError,
    StrategyRegistry,
    load_credential_sources,
    load_strategies,
)
from selector_service.storage import StateRepository, UnusableDatabase
from selector_service.storage.database import describe_database

if TYPE_CHECKING:
    from aiohttp import web

    from selector_service.api.metrics import SelectorMetrics

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
    source: ConfigSource | None = None
    metrics_runner: web.AppRunner | None = None
    metrics_port: int = 0
    credentials: CredentialManager | None = None
    replicator: Replicator | None = None

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
        if self.metrics_runner is not None:
            await self.metrics_runner.cleanup()
        if self.credentials is not None:
            await self.credentials.stop()
        if self.replicator is not None:
            await self.replicator.stop()
        await self.core.stop()
        await self.repository.close()

    async def reload(self) -> ReloadSummary:
        """Re-read the config file (plus overlay) and apply it; ConfigError leaves the running config in place."""
        if self.source is None:
            raise ConfigError("config", ["this selector was started without a config file"])
        config = self.source.load()
        try:
            return await self.core.reload(config)
        except ConfigError as exc:
            raise ConfigError(str(self.source.path), exc.errors) from None

    async def wait_for_termination(self) -> None:
        await self.server.wait_for_termination()


async def start_selector(
    config: Config,
    listen: str | None = None,
    database: str | None = None,
    strategies: StrategyRegistry | None = None,
    source: ConfigSource | None = None,
    metrics_listen: str | None = None,
    insecure_listen: bool = False,
    credential_sources: CredentialSourceRegistry | None = None,
) -> SelectorHandle:
    """Start a selector for ``config``; ``listen``/``database``/``metrics_listen`` override the config (use port 0
    in tests). ``source`` is where the config came from, for reloads and run-time account changes."""
    registry = strategies if strategies is not None else load_strategies()
    address = listen or config.selector.listen
    check_exposure(address, config.selector, insecure_listen)
    sources = credential_sources if credential_sources is not None else load_credential_sources()
    credentials = CredentialManager(sources.create_all())
    # Unusable credential files, unset variables: reported before anything starts.
    served = credentials.expand(config)
    repository = StateRepository.open(database or config.selector.database)
    usage = UsageRecorder(repository, config.selector.usage_retention) if config.selector.usage_log else None
    core = SelectorCore(config, registry, repository, usage=usage, expand=credentials.expand, served=served)
    replicator = Replicator(core, repository)  # other replicas' changes, when several share the database
    metrics_address = config.selector.metrics_listen if metrics_listen is None else metrics_listen
    metrics: SelectorMetrics | None = None
    if metrics_address:
        # Imported only when served: memory the selector otherwise does not need (bench/import_memory.py).
        from selector_service.api.metrics import SelectorMetrics, start_metrics_server

        metrics = SelectorMetrics(core)
    runner: web.AppRunner | None = None
    metrics_port = 0
    try:
        await core.start()
        replicator.start()
        await credentials.start(core)
        server, port, health_servicer = await start_server(core, address, source, metrics, config.selector)
        if metrics is not None:
            runner, metrics_port = await start_metrics_server(metrics, metrics_address)
    except BaseException:
        await credentials.stop()
        await replicator.stop()
        await core.stop()
        await repository.close()
        raise
    return SelectorHandle(server, core, repository, health_servicer, address, port, source, runner, metrics_port,
                          credentials=credentials, replicator=replicator)


async def _serve(
    config: Config, args: argparse.Namespace, registry: StrategyRegistry, source: ConfigSource
) -> None:
    handle = await start_selector(config, args.listen, args.database, registry, source,
                                  insecure_listen=args.insecure_listen)
    database = args.database
    accounts = sum(len(p.accounts) for p in handle.core.pools.values())
    log.info("poolgate selector listening on %s (%d pool(s), %d account(s); state in %s)",
             handle.address, len(config.pools), accounts,
             describe_database(database or config.selector.database))
    stopping = runtime.stop_requested()
    loop = asyncio.get_running_loop()
    reloads: set[asyncio.Task[None]] = set()
    loop.add_signal_handler(signal.SIGHUP, lambda: _spawn(reloads, _reload_on_signal(handle)))
    if args.insecure_listen and not is_loopback(handle.address):
        _spawn(reloads, _keep_warning(handle.address))
    if handle.metrics_port:
        log.info("selector metrics at http://%s:%d/metrics",
                 split_port_only(config.selector.metrics_listen)[0], handle.metrics_port)
    await stopping.wait()
    log.info("poolgate selector stopping")
    await handle.stop()


def _spawn(tasks: set[asyncio.Task[None]], coroutine: Any) -> None:
    task = asyncio.create_task(coroutine)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


async def _keep_warning(address: str) -> None:
    while True:
        await asyncio.sleep(INSECURE_WARNING_INTERVAL)
        log.warning("INSECURE: still listening on %s without authentication or TLS (--insecure-listen)", address)


async def _reload_on_signal(handle: SelectorHandle) -> None:
    try:
        summary = await handle.reload()
    except ConfigError as exc:
        log.error("reload rejected; the running config stays. %d problem(s):\n  %s",
                  len(exc.errors), "\n  ".join(exc.errors))
        return
    except Exception:
        log.exception("reload failed; the running config stays")
        return
    log.info("config reloaded: %s", describe(summary))


def run_selector_command(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, getattr(args, "log_format", "text"))
    source = ConfigSource(args.config)
    try:
        config, registry = load_checked(args.config, source, args.database)
    except (ConfigError, PluginError) as exc:
        return report_problems(exc)
    try:
        runtime.run(_serve(config, args, registry, source))
    except (ListenError, ExposureError, UnusableDatabase) as exc:
        print(f"poolgate selector: {exc}", file=sys.stderr)
        return 1
    return 0

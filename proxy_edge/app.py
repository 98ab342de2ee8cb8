"""The edge's aiohttp application: one pooled ClientSession and one gRPC channel per process, and the command.

``poolgate edge --config FILE [--listen ADDR] [--selector ADDR] [--workers N]`` runs it (N > 1: proxy_edge.workers);
:func:`start_edge` runs it in-process.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from poolgate import runtime
from poolgate.addresses import loopback_for_wildcard, split_host_port
from poolgate.config.loader import ConfigError, EdgeSettings, load_edge_settings
from poolgate.config.schema import Config
from poolgate.http_site import ClientLimits, Site, listen_backlog, start_site
from poolgate.logging_setup import configure_logging
from proxy_edge import endpoints, handlers, observability, otel
from proxy_edge.attempts import Forwarder
from proxy_edge.auth import Authenticator, EdgeConfigError
from proxy_edge.client_input import quiet_malformed_requests
from proxy_edge.egress import Egress
from proxy_edge.inflight import InFlight
from proxy_edge.model_catalog import ModelCatalog
from proxy_edge.selector_client import SelectorClient
from proxy_edge.topology import ROUTING, RoutingState, TopologyFollower
from proxy_edge.upstream import Upstream

log = logging.getLogger("poolgate.edge")

EdgeConfig = Config | EdgeSettings
"""What the edge runs on: its own section and the selector's address and tokens; a whole Config will do (its pools
are not read: the routing comes from the selector)."""
CONFIG: web.AppKey[EdgeConfig] = web.AppKey("config")
INFLIGHT = web.AppKey("inflight", InFlight)
STOP_MARGIN = 1.0
"""Seconds aiohttp's own shutdown gives handlers once the edge has drained its requests (see EdgeServer.stop)."""


def selector_address(config: EdgeConfig) -> str:
    """``edge.selector``, else the selector's own listen address (a wildcard host becomes loopback)."""
    return loopback_for_wildcard(config.edge.selector or config.selector.listen)


def selector_token(config: EdgeConfig) -> str:
    """The bearer token for the selector: the first lease token, else the first admin token; empty for none."""
    auth = config.selector.auth
    tokens = auth.tokens or auth.admin_tokens
    return tokens[0] if tokens else ""


def parse_listen(address: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) -> (host, port); raises EdgeConfigError with the expected form."""
    try:
        return split_host_port(address)
    except ValueError as exc:
        raise EdgeConfigError(f"listen address {exc}") from None


def create_app(config: EdgeConfig) -> web.Application:
    """The edge application for ``config``; raises EdgeConfigError when the config cannot be served."""
    edge = config.edge
    app = web.Application(client_max_size=edge.body_limit)
    app[CONFIG] = config
    app[handlers.AUTH] = Authenticator(edge)
    app[ROUTING] = RoutingState(edge.timeouts.selector_unavailable)
    app[handlers.BODY_LIMIT] = edge.body_limit
    inflight = app[INFLIGHT] = InFlight(edge.client_timeouts.body)
    app.on_response_prepare.append(inflight.on_response_prepare)
    app.cleanup_ctx.append(_clients)
    for endpoint in (*endpoints.FORWARDED, endpoints.COUNT_TOKENS):
        app.router.add_post(endpoint.client_path, inflight.guard(handlers.forward_handler(endpoint), endpoint.shape,
                                                                 endpoint is endpoints.RESPONSES))
    app.router.add_get("/v1/models", handlers.list_models)
    app.router.add_get("/v1/models/{model:.+}", handlers.get_model)
    app.router.add_get("/v1/accounts/stats", handlers.account_stats)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/readyz", handlers.readyz)
    app.router.add_get("/", handlers.root)  # HEAD too
    # Request ids and log lines, /metrics, /v1/accounts/usage, /dashboard:
    observability.install(app, app[ROUTING].formats)
    app.middlewares.append(handlers.unexpected_errors)  # inside the request id's: its 500s carry the id
    app.middlewares.append(handlers.unknown_routes)
    quiet_malformed_requests(logging.getLogger("aiohttp.server"))
    otel.install(app)  # the requests as OpenTelemetry spans, when the environment names an OTLP endpoint
    return app


async def _clients(app: web.Application) -> AsyncIterator[None]:
    """The process's one upstream ClientSession and one selector channel, closed when the app stops."""
    config = app[CONFIG]
    timeouts = config.edge.timeouts
    # Read timeouts differ for stream and non-stream requests: Upstream sets them per request (these are the
    # session's defaults for anything else). Proxies are chosen per call by Egress (the account's, its pool's, the
    # environment's): the session itself does not read the environment (aiohttp would look proxies and ~/.netrc up
    # in a thread on every request, and send loopback upstreams to the proxy).
    egress = Egress(config.edge.proxy_from_env)
    if egress.from_environment:
        log.info("egress: %s", egress.describe())
    session = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(
            total=timeouts.total, connect=timeouts.connect, sock_connect=timeouts.connect,
            sock_read=timeouts.first_byte,
        ),
        connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
        # No cookie jar: the session serves every account, and a cookie an upstream sets (the CDN's __cf_bm on every
        # answer of the real APIs) would go out with the other accounts' requests and link them for the provider.
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    selector = SelectorClient(selector_address(config), timeouts.selector, selector_token(config),
                              config.edge.selector_tls, config.edge.selector_transport,
                              unavailable=timeouts.selector_unavailable)
    routing = app[ROUTING]
    follower = TopologyFollower(routing, selector_address(config), selector_token(config), config.edge.selector_tls)
    app[handlers.SELECTOR] = selector
    app[handlers.CATALOG] = ModelCatalog(routing.formats, session, selector, egress)
    app[handlers.FORWARDER] = Forwarder(
        Upstream(session, selector, timeouts, config.edge.upstream_limits, egress), selector, routing.policies)
    try:
        await follower.start(wait=timeouts.selector)
        yield
    finally:
        await follower.close()
        await selector.close()
        await session.close()


class EdgeServer(Site):
    """A running edge."""

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish within ``edge.shutdown_timeout``, end the rest with an error
        in their API's shape, then close the upstream session and the selector channel (after the reports)."""
        app = self.runner.app
        await self.stop_accepting()
        await app[INFLIGHT].drain(app[CONFIG].edge.shutdown_timeout)
        await self.runner.cleanup()


async def start_edge(config: EdgeConfig, listen: str | None = None, reuse_port: bool = False) -> EdgeServer:
    """Start the edge in this event loop on ``listen`` (default ``edge.listen``; port 0 picks a free port), with
    SO_REUSEPORT when ``reuse_port`` (one of several workers on one address)."""
    host, port = parse_listen(listen or config.edge.listen)
    app = create_app(config)
    client = config.edge.client_timeouts
    runner, bound = await start_site(app, host, port, shutdown_timeout=STOP_MARGIN, handler_cancellation=True,
                                     backlog=listen_backlog(config.edge.listen_backlog),
                                     limits=ClientLimits(header=client.header, idle=client.idle),
                                     reuse_port=reuse_port)
    return EdgeServer(runner, host, bound)


def run_edge_command(args: argparse.Namespace) -> int:
    """``poolgate edge``: serve until SIGINT/SIGTERM (SIGHUP reloads the settings); exit status 2 for config
    problems. With ``--workers N`` (N > 1) this process supervises N workers that serve (proxy_edge.workers)."""
    configure_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "text"))
    try:
        config = _settings(args)
    except ConfigError as exc:
        print(f"poolgate edge: {exc}", file=sys.stderr)
        return 2
    workers = getattr(args, "workers", 1)
    if workers > 1:
        from proxy_edge.workers import run_workers

        options = ["--log-level", getattr(args, "log_level", "info"),
                   "--log-format", getattr(args, "log_format", "text")]
        arguments = ["--config", args.config, *(["--selector", args.selector] if args.selector else [])]
        return run_workers(options, arguments, config.edge.listen, workers, config.edge.shutdown_timeout)
    try:
        return runtime.run(_serve(config, lambda: _settings(args), getattr(args, "reuse_port", False)))
    except EdgeConfigError as exc:
        print(f"poolgate edge: {exc}", file=sys.stderr)
        return 2


def _settings(args: argparse.Namespace) -> EdgeSettings:
    settings = load_edge_settings(args.config)
    if args.listen:
        settings.edge.listen = args.listen
    if args.selector:
        settings.edge.selector = args.selector
    return settings


async def _serve(config: EdgeSettings, reread: Callable[[], EdgeSettings], reuse_port: bool) -> int:
    try:
        server = await start_edge(config, reuse_port=reuse_port)
    except OSError as exc:
        print(f"poolgate edge: cannot listen on {config.edge.listen}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    routing = server.runner.app[ROUTING].current
    log.info("edge listening on %s%s (selector at %s, %s)", server.url,
             f" with SO_REUSEPORT (pid {os.getpid()})" if reuse_port else "", selector_address(config),
             f"routing {routing.version}: {len(routing.formats)} pool(s)" if routing is not None else "no routing yet")
    stop = runtime.stop_requested()
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: reload_settings(server.runner.app, reread))
    try:
        await stop.wait()
    finally:
        log.info("edge stopping")
        await server.stop()
    return 0


RESTART_SETTINGS = ("listen", "listen_backlog", "selector", "selector_transport", "selector_tls", "body_limit",
                    "proxy_from_env", "shutdown_timeout")
"""Settings of ``edge:`` that a reload does not change (they shape the listening socket, the selector channels or
the upstream session): they take effect when the edge restarts. ``client_timeouts.header`` and ``.idle`` too."""


def reload_settings(app: web.Application, reread: Callable[[], EdgeSettings]) -> bool:
    """SIGHUP: read the edge's settings again and switch to the new client keys (``api_keys``, ``clients``,
    ``auth``), ``timeouts``, ``upstream_limits`` and ``client_timeouts.body``, for requests that start from now on;
    the pools follow the selector on their own. A bad file changes nothing. Returns whether the new settings were
    taken."""
    try:
        settings = reread()
        auth = Authenticator(settings.edge)
    except (ConfigError, EdgeConfigError) as exc:
        log.error("edge settings not reloaded; the running ones stay: %s", exc)
        return False
    edge, running = settings.edge, app[CONFIG].edge
    app[handlers.AUTH].take(auth)
    timeouts = edge.timeouts
    app[handlers.FORWARDER].upstream.retime(timeouts, edge.upstream_limits)
    app[handlers.SELECTOR].retime(timeouts.selector, timeouts.selector_unavailable)
    app[ROUTING].patience = timeouts.selector_unavailable
    app[INFLIGHT].body_timeout = edge.client_timeouts.body
    later = [name for name in RESTART_SETTINGS if getattr(edge, name) != getattr(running, name)]
    later += [f"client_timeouts.{name}" for name in ("header", "idle")
              if getattr(edge.client_timeouts, name) != getattr(running.client_timeouts, name)]
    log.info("edge settings reloaded: %d client key(s), timeouts and limits%s", auth.count,
             f"; {', '.join(later)} changed and take{'s' * (len(later) == 1)} effect on restart" if later else "")
    return True

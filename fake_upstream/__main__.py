"""``python -m fake_upstream [--listen 127.0.0.1:9090] [--latency SECONDS]``: serve until SIGINT/SIGTERM.

``poolgate fake-upstream`` runs this program, and so do ``poolgate up`` and ``poolgate demo`` when the config sets
``edge.fake_upstream``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from fake_upstream.server import start_fake_upstream
from poolgate import runtime
from poolgate.addresses import split_host_port
from poolgate.logging_setup import configure_logging

log = logging.getLogger("poolgate.fake_upstream")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fake_upstream",
                                     description="A local fake OpenAI/Anthropic upstream (demo, tests, load tests).")
    parser.add_argument("--listen", default="127.0.0.1:9090", metavar="HOST:PORT",
                        help="address to listen on (default %(default)s)")
    parser.add_argument("--latency", type=float, default=0.0, metavar="SECONDS",
                        help="seconds before each answer (default 0)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="text", choices=["text", "json"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level, args.log_format)
    try:
        host, port = split_host_port(args.listen)
    except ValueError as exc:
        print(f"fake upstream: --listen {exc}", file=sys.stderr)
        return 2
    return runtime.run(_serve(host, port, args.latency))


async def _serve(host: str, port: int, latency: float) -> int:
    try:
        server = await start_fake_upstream(host, port, latency)
    except OSError as exc:
        print(f"fake upstream: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    log.info("fake upstream listening on %s (OpenAI base URL %s/v1, Anthropic base URL %s)",
             server.url, server.url, server.url)
    stop = runtime.stop_requested()
    try:
        await stop.wait()
    finally:
        await server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

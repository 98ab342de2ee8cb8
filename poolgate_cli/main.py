"""The ``poolgate`` command. Each subcommand imports only the process it runs (the edge never loads the selector)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence

from poolgate import __version__
from poolgate_cli.demo import DEMO_PORTS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poolgate", description="One endpoint over many accounts of an LLM provider.")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-format", default="text", choices=["text", "json"],
                        help="text: human-readable lines (default); json: one JSON object per line")
    parser.add_argument("--no-uvloop", action="store_true", help="run on the standard asyncio event loop")
    parser.add_argument("--version", action="version", version=f"poolgate {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    selector = commands.add_parser("selector", help="run the selector service (gRPC)")
    selector.add_argument("--config", required=True, help="config file (YAML)")
    selector.add_argument("--listen", help="address to listen on, host:port or unix:/path (overrides selector.listen)")
    selector.add_argument("--database", help="SQLAlchemy URL or SQLite file path (overrides selector.database)")
    selector.add_argument("--insecure-listen", action="store_true",
                          help="allow a non-loopback address without tokens and TLS (warns at start and hourly)")

    check = commands.add_parser("check", help="validate a config file and print what it would serve")
    check.add_argument("file", help="config file (YAML)")

    edge = commands.add_parser("edge", help="run the edge proxy (HTTP)")
    edge.add_argument("--config", required=True, help="config file (YAML)")
    edge.add_argument("--listen", help="address to listen on, host:port (overrides edge.listen)")
    edge.add_argument("--selector", help="selector address (overrides edge.selector)")
    edge.add_argument("--workers", type=_positive, default=1, metavar="N",
                      help="worker processes sharing the listen address (SO_REUSEPORT), each a whole edge; default 1")
    edge.add_argument("--reuse-port", action="store_true",
                      help="bind with SO_REUSEPORT, so that other edges (of this user) can listen on the same address")

    up = commands.add_parser("up", help="run selector and edge as two processes")
    up.add_argument("--config", required=True, help="config file (YAML)")
    up.add_argument("--workers", type=_positive, default=1, metavar="N", help="the edge's worker processes (default 1)")

    demo = commands.add_parser("demo", help="run the offline demo: fake upstream, selector and edge (as `up`)",
                               description="Runs `poolgate up` on the demo config shipped with poolgate. The config "
                               "and its state files (poolgate.db) go to --dir, by default a temporary directory "
                               "removed when the demo stops.")
    demo.add_argument("--dir", help="directory for the config and its state files (kept; created when missing)")
    for option, port in DEMO_PORTS.items():
        demo.add_argument(f"--{option.replace('_', '-')}", type=int, default=port, metavar="PORT",
                          help=f"port on 127.0.0.1 (default {port})")

    fake = commands.add_parser("fake-upstream", help="run a local fake OpenAI/Anthropic upstream (demo, load tests)",
                               description="Runs `python -m fake_upstream`, the fake upstream's own program.")
    fake.add_argument("--listen", metavar="HOST:PORT", help="address to listen on (default 127.0.0.1:9090)")
    fake.add_argument("--latency", type=float, metavar="SECONDS", help="seconds before each answer (default 0)")
    from poolgate_cli.admin import add_parsers
    from poolgate_cli.clients import add_parser as add_clients_parser

    add_parsers(commands)
    add_clients_parser(commands)
    return parser


def _positive(text: str) -> int:
    """A whole number of at least 1 (argparse type)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


CLOSED_PIPE_STATUS = 128 + signal.SIGPIPE
"""Exit status when the reader of our output went away (``poolgate check f.yaml | head -3``)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command ``argv`` (default: the process's arguments); returns the exit status.

    A closed output pipe ends the command quietly. Python ignores SIGPIPE, so the write fails with BrokenPipeError
    instead of ending the process as it ends other Unix tools (``cat``, ``grep``); we catch it here, once for every
    command, and exit with the status those tools leave (128 + SIGPIPE, what a shell reports for them), so a
    ``set -o pipefail`` script sees the same as with ``cat``. stdout is pointed at /dev/null first: the interpreter
    flushes it again at exit, and that flush would fail and print a traceback of its own."""
    try:
        status = _run(argv)
        sys.stdout.flush()  # inside the try: buffered output may meet the closed pipe only now
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return CLOSED_PIPE_STATUS
    return status


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.no_uvloop:
        from poolgate.runtime import UVLOOP_ENV

        os.environ[UVLOOP_ENV] = "0"  # also for the processes `poolgate up` starts
    if args.command == "selector":
        from selector_service.app import run_selector_command

        return run_selector_command(args)
    if args.command == "check":
        from selector_service.check import run_check_command

        return run_check_command(args)
    if args.command == "edge":
        from proxy_edge.app import run_edge_command

        return run_edge_command(args)
    if args.command == "up":
        from poolgate_cli.supervisor import run_up_command

        return run_up_command(args)
    if args.command == "demo":
        from poolgate_cli.demo import run_demo_command

        return run_demo_command(args)
    if args.command in ("accounts", "reload"):
        from poolgate_cli.admin import run_accounts_command, run_reload_command

        return run_accounts_command(args) if args.command == "accounts" else run_reload_command(args)
    if args.command == "clients":
        from poolgate_cli.clients import run_clients_command

        return run_clients_command(args)
    if args.command == "fake-upstream":
        from poolgate_cli.fake_process import run_fake_upstream_command

        return run_fake_upstream_command(args)
    raise AssertionError(args.command)

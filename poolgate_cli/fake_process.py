"""The fake upstream as a program of its own: ``python -m fake_upstream``. The product never imports it; ``poolgate
fake-upstream``, ``up`` and ``demo`` run it."""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn

FAKE_UPSTREAM_PACKAGE = "fake_upstream"


def fake_upstream_command(options: list[str]) -> list[str]:
    """The command line that runs the fake upstream with ``options`` (its own: ``--listen``, ``--latency``,
    ``--log-level``, ``--log-format``)."""
    return [sys.executable, "-m", FAKE_UPSTREAM_PACKAGE, *options]


def log_options(args: argparse.Namespace) -> list[str]:
    """The ``poolgate`` logging options of ``args``, as the processes it starts take them."""
    return ["--log-level", getattr(args, "log_level", "info"), "--log-format", getattr(args, "log_format", "text")]


def run_fake_upstream_command(args: argparse.Namespace) -> NoReturn:
    """``poolgate fake-upstream``: becomes ``python -m fake_upstream`` (exec, not a child: signals sent to the command
    reach the server, and its exit status is the command's)."""
    options = log_options(args)
    if args.listen is not None:
        options += ["--listen", args.listen]
    if args.latency is not None:
        options += ["--latency", str(args.latency)]
    command = fake_upstream_command(options)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)

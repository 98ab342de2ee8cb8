"""``poolgate up``: the selector and the edge (and, when ``edge.fake_upstream`` is set, the fake upstream) as
separate OS processes, started in order, stopped in the reverse order.

SIGINT/SIGTERM are forwarded to the children, and SIGHUP (the terminal closed) stops them with SIGTERM (use
``poolgate reload`` to reload the selector's config; under ``nohup`` a hangup stays ignored); when any child exits by
itself the others are stopped and ``up`` exits with its status.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from poolgate.addresses import loopback_for_wildcard, split_host_port
from poolgate.config.loader import ConfigError, load_config
from poolgate.logging_setup import configure_logging

START_TIMEOUT = 30.0
"""Seconds a child gets to start listening."""
STOP_TIMEOUT = 15.0
"""Seconds the children get, all together, to stop after a signal before they are killed."""
STOP_SHARE = 3.0
"""Seconds of STOP_TIMEOUT kept for each child that stops after another (the selector after the edge)."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    address: str


log = logging.getLogger("poolgate.up")


def _connectable(address: str) -> bool:
    if address.startswith("unix:"):
        path = address.removeprefix("unix:").removeprefix("//")
        if not Path(path).exists():
            return False
        family, target = socket.AF_UNIX, path
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            try:
                sock.connect(target)
            except OSError:
                return False
            return True
    try:
        host, port = split_host_port(loopback_for_wildcard(address))
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except (OSError, ValueError):
        return False


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self.signalled: int | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # A hangup (the terminal closed) stops everything; forwarded as is, it would make the selector reload.
        self.signalled = signal.SIGTERM if signum == signal.SIGHUP else signum

    def start(self, name: str, command: list[str], address: str) -> bool:
        """Start a child and wait until it listens on ``address``; False if it died, timed out or was signalled."""
        process = subprocess.Popen(command)
        child = Child(name, process, address)
        self.children.append(child)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.signalled is not None:
                return False
            if process.poll() is not None:
                log.error("the %s exited with status %d while starting; see its messages above", name,
                          process.returncode)
                return False
            if _connectable(address):
                return True
            time.sleep(0.05)
        log.error("the %s did not listen on %s within %g s", name, address, START_TIMEOUT)
        return False

    def watch(self) -> int:
        """Wait for a signal or for a child to exit; returns the exit status for ``up``."""
        while self.signalled is None:
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    log.error("the %s exited with status %d; stopping the others", child.name, code)
                    self.stop(signal.SIGTERM)
                    return code if code else 1
            time.sleep(0.1)
        self.stop(self.signalled)
        return 0

    def stop(self, signum: int) -> None:
        """Stop the children one at a time, last started first: the edge, then the selector, so the outcome reports
        of the edge's last requests still reach the selector (when ``up`` alone is signalled: a Ctrl-C in the
        terminal reaches every process of the group at once). All of it within STOP_TIMEOUT: each child waits for
        its turn no longer than leaves STOP_SHARE seconds to every child after it, and is killed if it has not
        stopped by then."""
        deadline = time.monotonic() + STOP_TIMEOUT
        order = list(reversed(self.children))
        log.info("stopping the %s", ", then the ".join(child.name for child in order))
        for position, child in enumerate(order):
            if child.process.poll() is None:
                child.process.send_signal(signum)
            until = deadline - STOP_SHARE * (len(order) - 1 - position)
            try:
                child.process.wait(max(0.0, until - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("the %s did not stop in time; killing it", child.name)
                child.process.kill()
                child.process.wait()


def run_up_command(args: argparse.Namespace) -> int:
    """``poolgate up --config FILE``."""
    configure_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "text"))
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"poolgate up: {exc}", file=sys.stderr)
        return 2
    config_path = str(Path(args.config).resolve())
    base = [sys.executable, "-m", "poolgate.cli", "--log-level", getattr(args, "log_level", "info"),
            "--log-format", getattr(args, "log_format", "text")]
    selector_listen = config.selector.listen
    edge_listen = config.edge.listen
    supervisor = Supervisor()
    # A hangup already ignored (``nohup``) stays ignored, for `up` and the children it starts.
    stopping = [sig for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                if sig != signal.SIGHUP or signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.signal(sig, supervisor._on_signal) for sig in stopping}
    try:
        steps = []
        if config.edge.fake_upstream:
            steps.append(("fake upstream", [*base, "fake-upstream", "--listen", config.edge.fake_upstream],
                          config.edge.fake_upstream))
        steps.append(("selector", [*base, "selector", "--config", config_path], selector_listen))
        steps.append(("edge", [*base, "edge", "--config", config_path], edge_listen))
        for name, command, address in steps:
            if not supervisor.start(name, command, address):
                supervisor.stop(supervisor.signalled or signal.SIGTERM)
                return 0 if supervisor.signalled is not None else 1
        fake = f", fake upstream on http://{config.edge.fake_upstream}" if config.edge.fake_upstream else ""
        log.info("serving on http://%s (selector on %s%s); Ctrl-C stops", edge_listen, selector_listen, fake)
        return supervisor.watch()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

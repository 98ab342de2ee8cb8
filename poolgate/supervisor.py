"""``poolgate up``: the selector and the edge (and, when ``edge.fake_upstream`` is set, the fake upstream) as
separate OS processes, started in order, stopped together.

SIGINT/SIGTERM are forwarded to the children; when any child exits by itself the others are stopped and ``up``
exits with its status.
"""

from __future__ import annotations

import argparse
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

START_TIMEOUT = 30.0
"""Seconds a child gets to start listening."""
STOP_TIMEOUT = 15.0
"""Seconds the children get to stop after a signal before they are killed."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    address: str


def _say(message: str) -> None:
    print(f"poolgate up: {message}", file=sys.stderr, flush=True)


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
        self.signalled = signum

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
                _say(f"the {name} exited with status {process.returncode} while starting; see its messages above")
                return False
            if _connectable(address):
                return True
            time.sleep(0.05)
        _say(f"the {name} did not listen on {address} within {START_TIMEOUT:g} s")
        return False

    def watch(self) -> int:
        """Wait for a signal or for a child to exit; returns the exit status for ``up``."""
        while self.signalled is None:
            for child in self.children:
                code = child.process.poll()
                if code is not None:
                    _say(f"the {child.name} exited with status {code}; stopping the others")
                    self.stop(signal.SIGTERM)
                    return code if code else 1
            time.sleep(0.1)
        self.stop(self.signalled)
        return 0

    def stop(self, signum: int) -> None:
        """Forward ``signum`` to the running children (edge first), then wait; kill what does not stop in time."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signum)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in reversed(self.children):
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _say(f"the {child.name} did not stop within {STOP_TIMEOUT:g} s; killing it")
                child.process.kill()
                child.process.wait()


def run_up_command(args: argparse.Namespace) -> int:
    """``poolgate up --config FILE``."""
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
    previous = {sig: signal.signal(sig, supervisor._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
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
        _say(f"serving on http://{edge_listen} (selector on {selector_listen}{fake}); Ctrl-C stops")
        return supervisor.watch()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

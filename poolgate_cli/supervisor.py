"""``poolgate up``: the selector and the edge (and, when ``edge.fake_upstream`` is set, the fake upstream) as
separate OS processes, started in order, stopped in the reverse order.

SIGINT/SIGTERM are forwarded to the children, and SIGHUP (the terminal closed) stops them with SIGTERM (use
``poolgate reload`` to reload the selector's config; under ``nohup`` a hangup stays ignored); when any child exits by
itself the others are stopped and ``up`` exits with its status.

``up`` checks the config as ``poolgate check`` does, and that every address it will listen on is free, before it
starts anything; it says "serving" only once each child reports ready over its health endpoint (the selector's gRPC
health service, the edge's ``/healthz``), so a child that cannot start is reported as the reason, never as served.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from poolgate import selector_channel
from poolgate.addresses import loopback_for_wildcard, split_host_port
from poolgate.config import ClientTLS, Config, ConfigError
from poolgate.logging_setup import configure_logging
from poolgate_cli.fake_process import fake_upstream_command, log_options

START_TIMEOUT = 30.0
"""Seconds a child gets to start listening."""
STOP_TIMEOUT = 15.0
"""Seconds the children get, all together, to stop after a signal before they are killed."""
STOP_SHARE = 3.0
"""Seconds of STOP_TIMEOUT kept for each child that stops after another (the selector after the edge)."""


Probe = Callable[[], bool]
"""Whether a child reports ready (one quick attempt)."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    address: str


@dataclass
class Step:
    """A child to start: its name, command line, the address it listens on (and the setting that gives it), and
    how to ask whether it is ready."""

    name: str
    command: list[str]
    address: str
    setting: str
    ready: Probe


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


def _edge_ready(address: str) -> Probe:
    """The edge answers ``GET /healthz`` with status ok."""
    host, port = split_host_port(loopback_for_wildcard(address))
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/healthz"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200 and json.load(response).get("status") == "ok")
        except (OSError, ValueError, urllib.error.URLError):
            return False

    return ready


def _selector_ready(address: str, tls: ClientTLS) -> Probe:
    """The selector's gRPC health service reports SERVING (health needs no token)."""
    def ready() -> bool:
        if not _connectable(address):
            return False  # a fresh channel per attempt once the port accepts: no reconnect backoff to wait out
        try:
            with selector_channel.open_channel(address, tls) as channel:
                answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        except grpc.RpcError:
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    return ready


def bind_problem(address: str) -> str | None:
    """Why nothing could listen on the TCP ``address`` now (another process holds it, the host is not this
    machine's), or None when it is free. Unix sockets and port 0 are not checked."""
    if address.startswith("unix:"):
        return None
    try:
        host, port = split_host_port(address)
        if port == 0:
            return None
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: TIME_WAIT is no problem
            sock.bind((host.strip("[]"), port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return "the address is already in use (another process listens on it)"
        return exc.strerror or str(exc)
    except ValueError as exc:
        return str(exc)
    return None


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []
        self.signalled: int | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # A hangup (the terminal closed) stops everything; forwarded as is, it would make the selector reload.
        self.signalled = signal.SIGTERM if signum == signal.SIGHUP else signum

    def start(self, step: Step) -> bool:
        """Start a child and wait until it reports ready; False if it died, timed out or was signalled."""
        process = subprocess.Popen(step.command)
        self.children.append(Child(step.name, process, step.address))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.signalled is not None:
                return False
            if process.poll() is None and step.ready() and process.poll() is None:
                return True  # alive after it answered: the answer was its own
            if process.poll() is not None:
                problem = bind_problem(step.address)
                because = (f": it cannot listen on {step.address} ({step.setting}): {problem}; stop what holds it "
                           f"or change {step.setting}" if problem else "; see its messages above")
                log.error("the %s exited with status %d while starting%s", step.name, process.returncode, because)
                return False
            time.sleep(0.05)
        log.error("the %s did not report ready on %s within %g s; see its messages above", step.name, step.address,
                  START_TIMEOUT)
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
    from selector_service.check import report_problems, validate_config  # the selector's checks, as `check` runs them
    from selector_service.plugin.manager import PluginError

    configure_logging(getattr(args, "log_level", "info"), getattr(args, "log_format", "text"))
    try:
        config = validate_config(args.config)
    except (ConfigError, PluginError) as exc:
        report_problems(exc)
        return 2
    steps = _steps(config, str(Path(args.config).resolve()), log_options(args), getattr(args, "workers", 1))
    taken = [(step, problem) for step in steps if (problem := bind_problem(step.address))]
    for step, problem in taken:
        log.error("cannot start the %s: it cannot listen on %s (%s): %s; stop what holds it or change %s",
                  step.name, step.address, step.setting, problem, step.setting)
    if taken:
        return 1
    supervisor = Supervisor()
    # A hangup already ignored (``nohup``) stays ignored, for `up` and the children it starts.
    stopping = [sig for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                if sig != signal.SIGHUP or signal.getsignal(sig) is not signal.SIG_IGN]
    previous = {sig: signal.signal(sig, supervisor._on_signal) for sig in stopping}
    try:
        for step in steps:
            if not supervisor.start(step):
                supervisor.stop(supervisor.signalled or signal.SIGTERM)
                return 0 if supervisor.signalled is not None else 1
        fake = f", fake upstream on http://{config.edge.fake_upstream}" if config.edge.fake_upstream else ""
        log.info("serving on http://%s (selector on %s%s); Ctrl-C stops", config.edge.listen, config.selector.listen,
                 fake)
        return supervisor.watch()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _steps(config: Config, config_path: str, options: list[str], edge_workers: int = 1) -> list[Step]:
    """The children in the order they start: the fake upstream (when configured; its own program), the selector, the
    edge (``poolgate`` commands, the edge with ``edge_workers`` workers); each with the logging ``options``."""
    steps = []
    base = [sys.executable, "-m", "poolgate_cli", *options]
    fake = config.edge.fake_upstream
    if fake:
        steps.append(Step("fake upstream", fake_upstream_command([*options, "--listen", fake]), fake,
                          "edge.fake_upstream", lambda: _connectable(fake)))
    selector = config.selector.listen
    steps.append(Step("selector", [*base, "selector", "--config", config_path], selector, "selector.listen",
                      _selector_ready(selector, config.edge.selector_tls)))
    steps.append(Step("edge", [*base, "edge", "--config", config_path, "--workers", str(edge_workers)],
                      config.edge.listen, "edge.listen",
                      _edge_ready(config.edge.listen)))
    return steps

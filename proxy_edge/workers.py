"""``poolgate edge --workers N``: N edge processes on one listen address, and the small parent that supervises them.

Each worker is a whole edge (``poolgate edge --reuse-port``): its own event loop, selector link and topology
follower, bound to the same address with SO_REUSEPORT, so the kernel spreads new connections over the workers. The
parent holds no requests. It forwards SIGINT and SIGTERM (stop) and SIGHUP (reload the settings) to every worker and
exits once they have all stopped. It restarts no worker: when one exits by itself, the parent logs which and how,
stops the others and exits non-zero, so whatever runs the edge (systemd, a container runtime, ``poolgate up``)
sees the failure and restarts the whole edge, as it would a one-process edge.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

from poolgate.addresses import split_host_port

log = logging.getLogger("poolgate.edge")

POLL_SECONDS = 0.05
"""How often the parent looks for a worker that exited."""
STOP_MARGIN = 5.0
"""Seconds a worker gets to stop beyond ``edge.shutdown_timeout`` before it is killed."""
WORKER_FLAG = "--reuse-port"
"""What makes a ``poolgate edge`` process a worker: it binds its address with SO_REUSEPORT."""


@dataclass
class Worker:
    number: int
    process: subprocess.Popen[bytes]


def reserve_address(listen: str) -> tuple[socket.socket, str]:
    """Bind ``listen`` with SO_REUSEPORT (not listening) to learn its port (port 0 picks one) and fail early when
    another program holds it; returns the socket, kept open while the workers run, and ``host:port``. Raises
    OSError (the address is taken) or ValueError (a malformed address)."""
    host, port = split_host_port(listen)  # an IPv6 host without its brackets
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound = int(sock.getsockname()[1])
    return sock, f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}"


class WorkerParent:
    """Starts the workers, forwards signals to them and watches them until they have all stopped."""

    def __init__(self, command: Sequence[str], count: int, stop_timeout: float) -> None:
        self.command = list(command)
        self.count = count
        self.stop_timeout = stop_timeout
        self.workers: list[Worker] = []
        self.signals: list[int] = []  # received, not yet acted on (the handler only records them: see _watch)

    def run(self) -> int:
        """Start the workers and supervise them; returns the exit status for ``poolgate edge``."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        # The workers start with SIGHUP ignored (an ignored signal stays so across exec) until each installs its
        # reload handler: a hangup while one is starting would end it. The parent's own handler comes after.
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            for number in range(1, self.count + 1):
                self.workers.append(Worker(number, subprocess.Popen(self.command)))
            signal.signal(signal.SIGHUP, self._on_signal)
            log.info("edge: %d workers started (pids %s)", self.count,
                     ", ".join(str(worker.process.pid) for worker in self.workers))
            return self._watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)

    def _send(self, signum: int) -> None:
        for worker in self.workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signum)

    def _watch(self) -> int:
        """Act on signals (outside the handler: logging there could meet its own lock) until one says stop, or
        until a worker exits by itself."""
        while True:
            while self.signals:
                signum = self.signals.pop(0)
                if signum != signal.SIGHUP:
                    return self._stop(signum)
                log.info("edge: reloading the settings of %d workers", len(self.workers))
                self._send(signal.SIGHUP)
            for worker in self.workers:
                code = worker.process.poll()
                if code is not None:
                    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
                    log.error("edge worker %d (pid %d) %s; stopping the other workers and the edge (restart the "
                              "edge to serve with all its workers again)", worker.number, worker.process.pid, how)
                    self._stop(signal.SIGTERM)
                    return code if code > 0 else 1
            time.sleep(POLL_SECONDS)

    def _stop(self, signum: int) -> int:
        """Signal the workers still running, wait for all of them (killing any still there after the stop timeout);
        returns 0 when every worker stopped cleanly, else 1."""
        self._send(signum)
        deadline = time.monotonic() + self.stop_timeout
        clean = True
        for worker in self.workers:
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("edge worker %d (pid %d) did not stop within %g s; killing it", worker.number,
                            worker.process.pid, self.stop_timeout)
                worker.process.kill()
                worker.process.wait()
            clean = clean and worker.process.returncode == 0
        return 0 if clean else 1


def run_workers(options: Sequence[str], edge_arguments: Sequence[str], listen: str, count: int,
                shutdown_timeout: float) -> int:
    """``poolgate edge --workers N`` (N > 1): ``count`` workers on ``listen``, each ``poolgate [options] edge
    [edge_arguments] --listen ADDR --reuse-port``. Exit status 1 when the address cannot be bound."""
    try:
        reserved, address = reserve_address(listen)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"poolgate edge: cannot listen on {listen}: {reason}", file=sys.stderr)
        return 1
    with reserved:
        command = [sys.executable, "-m", "poolgate_cli", *options, "edge", *edge_arguments, "--listen", address,
                   WORKER_FLAG]
        return WorkerParent(command, count, shutdown_timeout + STOP_MARGIN).run()

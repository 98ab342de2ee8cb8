"""Fault tests: the fake upstream misbehaving, processes killed under load. Everything runs on 127.0.0.1, bounded
in requests and time. Helpers to run the selector or the edge as a real process, as users run them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fake_upstream import FakeUpstream
from proxy_edge.handlers import SELECTOR
from tests.edge.conftest import Stack, open_stack

FAULT_TIMEOUTS = "connect: 500ms, first_byte: 500ms, total: 5s, selector: 900ms"
"""Short upstream timeouts, so every fault ends quickly; the selector deadline stays under a second."""


@pytest.fixture
async def make_fault_stack(
    tmp_path: Path, fake_upstream: FakeUpstream
) -> AsyncIterator[Callable[..., Awaitable[Stack]]]:
    """Fake upstream, selector and edge in this process (``stack_config`` settings, short timeouts by default)."""
    stacks: list[Stack] = []

    async def factory(**settings: Any) -> Stack:
        settings.setdefault("timeouts", FAULT_TIMEOUTS)
        stacks.append(await open_stack(fake_upstream, tmp_path, **settings))
        return stacks[-1]

    yield factory
    for stack in stacks:
        await stack.close()


async def outcomes(stack: Stack) -> dict[str, list[str]]:
    """account_id -> the outcomes the selector recorded for it, oldest first (from the usage log)."""
    await stack.edge.runner.app[SELECTOR].flush_reports()
    assert stack.selector is not None and stack.selector.core.usage is not None
    await stack.selector.core.usage.flush()
    records = await stack.selector.repository.usage_between(0, time.time() + 1)
    found: dict[str, list[str]] = {}
    for record in records:
        found.setdefault(record.account_id, []).append(record.outcome)
    return found


def log_text(log: Path) -> str:
    return log.read_text(errors="replace")


def wait_ok(url: str, processes: list[subprocess.Popen[bytes]], logs: list[Path], within: float = 30.0) -> None:
    """Until ``url`` answers 200; fails the test, with the log, if one of ``processes`` exits first."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for process, log in zip(processes, logs, strict=True):
            if process.poll() is not None:
                pytest.fail(f"{process.args} exited with {process.returncode}:\n{log_text(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{url} did not answer 200 within {within:g} s")


@contextlib.contextmanager
def running_gateway(directory: Path, config: Path, fake_port: int, edge_port: int) -> Iterator[None]:
    """The fake upstream, the selector and the edge of ``config``, each its own process (logs in ``directory``),
    once the edge is ready (the selector answers it); stopped at the end (SIGTERM, killed after 20 s)."""
    logs = [directory / name for name in ("fake.log", "selector.log", "edge.log")]
    started = [poolgate_process("fake-upstream", "--listen", f"127.0.0.1:{fake_port}", log=logs[0])]
    try:
        wait_ok(f"http://127.0.0.1:{fake_port}/_fake/stats", started, logs[:1])
        started.append(poolgate_process("selector", "--config", str(config), log=logs[1]))
        started.append(poolgate_process("edge", "--config", str(config), log=logs[2]))
        wait_ok(f"http://127.0.0.1:{edge_port}/readyz", started, logs)
        yield
    finally:
        for process in reversed(started):
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def poolgate_process(*args: str, log: Path) -> subprocess.Popen[bytes]:
    """``poolgate ARGS`` as its own process, output to ``log`` (a file: a pipe nobody reads could fill up)."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "poolgate_cli", *args], stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})


async def wait_listening(port: int, process: subprocess.Popen[bytes], log: Path, within: float = 20.0) -> float:
    """Seconds until ``port`` on 127.0.0.1 accepts connections; fails the test if the process dies or is slow."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        if process.poll() is not None:
            pytest.fail(f"the process exited with {process.returncode}:\n{log_text(log)}")
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return time.monotonic() - started
    process.kill()
    process.wait()
    pytest.fail(f"nothing listened on port {port} within {within} s:\n{log_text(log)}")


def kill_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)

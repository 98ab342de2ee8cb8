"""Helpers shared by test packages (fixtures live in conftest files; plain functions live here)."""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from selector_service.domain.selector import SelectorCore


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_PORTS = range(10000, min(_ephemeral_start(), 32768))
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for processes that must be told their port).

    Taken below the kernel's ephemeral range, and never twice in one test run: a port from ``bind(0)`` is an
    ephemeral one, which a busy test's outgoing connections may take as their local port before the process told to
    listen on it binds it ("Address already in use")."""
    for _ in range(1000):
        port = random.choice(_PORTS)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free TCP port on 127.0.0.1 in {_PORTS.start}-{_PORTS.stop - 1}")


async def eventually(condition: Callable[[], object], within: float = 5.0, what: str = "condition") -> None:
    """Wait, polling every 10 ms, until ``condition()`` is true; fail naming ``what`` after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"{what} not met within {within:g} s"
        await asyncio.sleep(0.01)


async def eventually_async(condition: Callable[[], Awaitable[object]], within: float = 5.0,
                           what: str = "condition") -> None:
    """As :func:`eventually`, for a condition that must be awaited (e.g. a gRPC call)."""
    deadline = asyncio.get_running_loop().time() + within
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"{what} not met within {within:g} s"
        await asyncio.sleep(0.01)


ROOT = Path(__file__).resolve().parents[1]
DEMO_PORTS = ("8080", "50151", "9090")
"""The demo config's edge, selector and fake upstream ports."""


def demo_config(directory: Path) -> tuple[Path, tuple[int, int, int]]:
    """``examples/demo.yaml`` written to ``directory`` with free ports; returns it and (edge, selector, fake)."""
    ports = (free_port(), free_port(), free_port())
    demo = (ROOT / "examples" / "demo.yaml").read_text()
    for default, port in zip(DEMO_PORTS, ports, strict=True):
        assert f"127.0.0.1:{default}" in demo
        demo = demo.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
    config = directory / "demo.yaml"
    config.write_text(demo)
    return config, ports


def wait_ready(url: str, process: subprocess.Popen[bytes], within: float = 30) -> None:
    """Until ``url``/readyz answers 200; fails with the process's output if it exits or is not ready in time."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, exit_output(process)
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"{url} did not get ready:\n{exit_output(process)}")


def exit_output(process: subprocess.Popen[bytes]) -> str:
    """The output of ``process``, which has ended (or a note, when it went to a file)."""
    output = process.communicate()[0]
    return output.decode(errors="replace") if output is not None else "(its output went to a file)"


def stop_process(process: subprocess.Popen[bytes], timeout: float = 20) -> str:
    """SIGTERM, then the process's output once it exits (killed if it does not within ``timeout``)."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.communicate(timeout=timeout)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def serve_one_chat_and_stop(process: subprocess.Popen[bytes], edge_port: int) -> str:
    """Once the edge on ``edge_port`` is ready, one chat completion through it (the demo's key), then SIGTERM: the
    process's output, after checking that it stopped cleanly."""
    import openai

    try:
        url = f"http://127.0.0.1:{edge_port}"
        wait_ready(url, process)
        with openai.OpenAI(base_url=f"{url}/v1", api_key="poolgate-demo", max_retries=0) as client:
            completion = client.chat.completions.create(model="gpt-4o-mini",
                                                        messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content
    finally:
        output = stop_process(process)
    assert process.returncode == 0, output
    assert "Traceback" not in output
    return output


async def open_accounts(core: SelectorCore) -> None:
    """Prove every account with one successful lease (new accounts take only a probe until they answer)."""
    from selector_service.domain.outcomes import Outcome, OutcomeReport
    from selector_service.plugin.types import SelectionRequest

    for pool in core.pools.values():
        ids = list(pool.accounts)
        for account_id in ids:
            grant = await core.select(SelectionRequest(pool=pool.name), [i for i in ids if i != account_id], 0)
            result = await core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS))
            assert result.recorded and not grant.lease.account.admission.probing

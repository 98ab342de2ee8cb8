"""`poolgate edge --workers N` as users run it (through `poolgate up --workers 2`): every worker serves on the one
address, SIGHUP reloads each worker's settings, SIGTERM stops them all, and a worker that dies stops the edge with a
non-zero status instead of leaving it to serve with fewer workers unnoticed."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import demo_config, free_port, wait_ready

CHAT = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
REQUESTS = 31
"""Requests sent before counting: an odd number, so two workers cannot have served the same count."""


def start_up(config: Path, cwd: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`poolgate up --workers 2`, its output going to a file (read while it runs); returns it and the file."""
    log = cwd / "up.log"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-m", "poolgate_cli", "up", "--config", str(config),
                                    "--workers", "2"], stdout=output, stderr=subprocess.STDOUT, cwd=cwd)
    return process, log


def wait_workers(up: subprocess.Popen[bytes], log: Path, edge: int) -> None:
    """Until the edge answers ready and both its workers run; failures show `up`'s output."""
    try:
        wait_ready(f"http://127.0.0.1:{edge}", up)
        until(lambda: len(worker_pids(up)) == 2, "two workers")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{log.read_text()}") from None


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM (unless it has exited), then wait; killed if it does not exit within ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def chat_status(port: int, key: str) -> int:
    """One chat completion on a new connection (so the kernel picks a worker for it); its HTTP status."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=CHAT, headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json", "Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def served_requests(port: int) -> int:
    """The routed requests counted by the worker that answers this scrape of /metrics (a new connection)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    counts = re.findall(r'^poolgate_edge_requests_total\{[^}]*\} ([0-9.e+]+)$', text, re.MULTILINE)
    return round(sum(float(count) for count in counts))


def edge_parent(up: subprocess.Popen[bytes]) -> int:
    """The pid of `up`'s edge child: the parent of the workers."""
    for pid in Path(f"/proc/{up.pid}/task/{up.pid}/children").read_text().split():
        if b"\0edge\0" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return int(pid)
    raise AssertionError("poolgate up has no edge child")


def worker_pids(up: subprocess.Popen[bytes]) -> list[int]:
    edge = edge_parent(up)
    return [int(pid) for pid in Path(f"/proc/{edge}/task/{edge}/children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def until(condition: Callable[[], bool], what: str, within: float = 15) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met within {within:g} s"
        time.sleep(0.05)


@pytest.mark.timeout(120)
def test_two_workers_serve_one_address_reload_on_sighup_and_stop_on_sigterm(tmp_path: Path) -> None:
    config, (edge, selector, fake) = demo_config(tmp_path)
    up, log = start_up(config, tmp_path)
    workers: list[int] = []
    try:
        wait_workers(up, log, edge)
        workers = worker_pids(up)
        for worker in workers:  # each its own whole edge, bound to the address with SO_REUSEPORT
            until(lambda w=worker: f"SO_REUSEPORT (pid {w})" in log.read_text(), f"worker {worker} listening")

        assert [chat_status(edge, "poolgate-demo") for _ in range(REQUESTS)] == [200] * REQUESTS
        # Each scrape is answered by one worker, from its own counters: with both serving, two different counts
        # appear, and they add up to every request sent.
        seen = {served_requests(edge) for _ in range(40)}
        assert len(seen) == 2 and sum(seen) == REQUESTS and min(seen) > 0, seen

        # SIGHUP to the edge reaches every worker: each takes the new client key and drops the old one.
        config.write_text(config.read_text().replace('"poolgate-demo"', '"poolgate-rotated"'))
        os.kill(edge_parent(up), signal.SIGHUP)
        until(lambda: log.read_text().count("edge settings reloaded") == 2, "both workers reloaded")
        assert {chat_status(edge, "poolgate-rotated") for _ in range(20)} == {200}
        assert {chat_status(edge, "poolgate-demo") for _ in range(20)} == {401}
        assert worker_pids(up) == workers  # reloaded, not restarted
    finally:
        stop(up)
    output = log.read_text()
    assert up.returncode == 0, output
    assert output.count("edge stopping") == 2, output
    assert not any(alive(worker) for worker in workers), output
    assert not any(listening(port) for port in (edge, selector, fake)), output


@pytest.mark.timeout(120)
def test_a_killed_worker_stops_the_edge_with_a_failure(tmp_path: Path) -> None:
    config, (edge, selector, fake) = demo_config(tmp_path)
    up, log = start_up(config, tmp_path)
    try:
        wait_workers(up, log, edge)
        killed, other = worker_pids(up)
        os.kill(killed, signal.SIGKILL)
        up.wait(60)  # by itself: nothing else signals it
    finally:
        stop(up)
    output = log.read_text()
    assert up.returncode != 0, output
    assert re.search(rf"edge worker \d \(pid {killed}\) was killed by signal 9; stopping the other workers", output), \
        output
    assert "the edge exited with status 1" in output, output
    assert not alive(other), output
    assert not any(listening(port) for port in (edge, selector, fake)), output


def test_workers_refuse_an_address_another_program_holds(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "edge.yaml"
    config.write_text(f"edge: {{listen: 127.0.0.1:{port}, api_keys: [k-aaaaaaaaaaaa]}}\n"
                      "selector: {listen: 127.0.0.1:1}\n")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        result = subprocess.run([sys.executable, "-m", "poolgate_cli", "edge", "--config", str(config),
                                 "--workers", "2"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


def test_workers_must_be_a_positive_number(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "poolgate_cli", "edge", "--config", str(tmp_path / "x.yaml"),
                             "--workers", "0"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--workers: must be a whole number of at least 1, got '0'" in result.stderr

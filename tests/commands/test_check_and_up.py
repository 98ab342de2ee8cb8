"""`poolgate check` runs the checks `poolgate up` runs, reporting every problem at once; `up` says "serving" only
when its children report ready, and names an address it cannot listen on as the reason it did not start."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.commands.conftest import poolgate
from tests.support import demo_config

FIVE_PROBLEMS = """
selector:
  database: "mysql://operator:hunter2@db.internal/poolgate"
edge:
  auth: true
pools:
  openai:
    strategy: fastest
    api_key: sk-test-a-0000000001
  claude:
    accounts:
      - {name: b, key: sk-test-b-0000000002, priority: 3}
models:
  "x-*": nowhere
"""
PROBLEMS = [
    "pools.claude.accounts[0].priority: must be 0, 1 or 2 (or low, normal, high), got 3",
    "models.x-*: names pool 'nowhere', which is not configured (pools: openai, claude)",
    "pools.openai.strategy: unknown strategy 'fastest'",
    "selector.database: cannot use the database mysql://operator:***@db.internal/poolgate",
    "edge.auth is on but edge.api_keys is empty",
]


async def test_check_refuses_edge_auth_without_keys_as_up_does(tmp_path: Path) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text("pools:\n  openai:\n    api_key: sk-test-a-0000000001\n")
    for command in (["check", str(path)], ["up", "--config", str(path)]):
        ran = await poolgate(*command)
        assert ran.status != 0, command
        assert "edge.auth is on but edge.api_keys is empty: add the keys clients must present" in ran.err
        assert "serving on" not in ran.err


async def test_check_lists_every_problem_in_one_pass_and_up_the_same(tmp_path: Path) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text(FIVE_PROBLEMS)
    checked = await poolgate("check", str(path))
    assert checked.status == 1
    assert f"{path}: 5 problem(s):" in checked.err
    for problem in PROBLEMS:
        assert problem in checked.err
    assert "hunter2" not in checked.err
    up = await poolgate("up", "--config", str(path))
    assert up.status == 2
    assert up.err == checked.err  # one validation, run by both


async def test_up_names_the_edge_address_it_cannot_listen_on_and_starts_nothing(tmp_path: Path) -> None:
    config, (edge, selector, _fake) = demo_config(tmp_path)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", edge))
        holder.listen()
        ran = await poolgate("up", "--config", str(config))
    assert ran.status == 1
    assert (f"cannot start the edge: it cannot listen on 127.0.0.1:{edge} (edge.listen): the address is already in "
            f"use (another process listens on it); stop what holds it or change edge.listen") in ran.err
    assert "serving on" not in ran.err
    with socket.socket() as probe:  # the selector was never started
        probe.bind(("127.0.0.1", selector))


def test_serving_is_announced_once_every_child_answers_its_health_check(tmp_path: Path) -> None:
    config, (edge, selector, _fake) = demo_config(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "poolgate_cli", "up", "--config", str(config)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        assert process.stderr is not None
        lines = []
        for raw in process.stderr:
            lines.append(raw.decode())
            if "serving on" in lines[-1]:
                break
        assert f"serving on http://127.0.0.1:{edge}" in lines[-1], "".join(lines)
        # At once, no retry: both health endpoints already answer.
        with urllib.request.urlopen(f"http://127.0.0.1:{edge}/healthz", timeout=2) as response:
            assert json.load(response) == {"status": "ok"}
        with grpc.insecure_channel(f"127.0.0.1:{selector}") as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    assert process.returncode == 0

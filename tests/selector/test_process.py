"""The selector as users run it: ``poolgate selector`` in its own process, killed and restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from tests.support import free_port, stop_process

CONFIG = """
pools:
  openai:
    accounts:
      - {name: only, key: sk-test-only-account-0001}
"""



def start(config: Path, database: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "poolgate_cli", "selector", "--config", str(config),
         "--listen", f"127.0.0.1:{port}", "--database", str(database)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=hangup_default,
    )


def hangup_default() -> None:
    """SIGHUP as a terminal's job gets it (the test run may inherit it ignored, as under `nohup`)."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> grpc.Channel:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=15)
    except grpc.FutureTimeoutError:
        process.kill()
        output = process.communicate()[0].decode()
        channel.close()
        pytest.fail(f"selector did not start:\n{output}")
    return channel


def test_sigkill_and_restart_keeps_a_ten_minute_cooldown(tmp_path: Path) -> None:
    config, database = tmp_path / "poolgate.yaml", tmp_path / "state.db"
    config.write_text(CONFIG)
    port = free_port()
    first = start(config, database, port)
    try:
        with wait_ready(port, first) as channel:
            stub = selector_pb2_grpc.SelectorStub(channel)
            lease = stub.SelectAccount(pb.SelectAccountRequest(pool="openai"), timeout=5)
            answer = stub.ReportOutcome(pb.ReportOutcomeRequest(
                lease_id=lease.lease_id, outcome=pb.OUTCOME_RATE_LIMITED, http_status=429, retry_after_ms=600_000),
                timeout=5)
            assert answer.recorded
    finally:
        first.send_signal(signal.SIGKILL)  # no chance to flush anything beyond what was acknowledged
        first.communicate(timeout=10)
    assert os.stat(database).st_mode & 0o777 == 0o600
    second = start(config, database, port)
    try:
        with wait_ready(port, second) as channel:
            stub = selector_pb2_grpc.SelectorStub(channel)
            with pytest.raises(grpc.RpcError) as exc:
                stub.SelectAccount(pb.SelectAccountRequest(pool="openai"), timeout=2)
            assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            trailers = dict(exc.value.trailing_metadata())
            assert 590_000 < int(trailers["retry-after-ms"]) <= 600_000
            listing = stub.ListAccounts(pb.ListAccountsRequest(), timeout=2)
            assert listing.pools[0].accounts[0].state == pb.ACCOUNT_STATE_COOLING
    finally:
        second.send_signal(signal.SIGTERM)
        output = second.communicate(timeout=15)[0].decode()
    assert second.returncode == 0, output
    assert "sk-test-only-account-0001" not in output


def test_selector_refuses_a_bad_config_with_every_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("pools:\n  p:\n    strategy: nope\n    accounts:\n      - {key: '', priority: 7}\n")
    result = subprocess.run([sys.executable, "-m", "poolgate_cli", "selector", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "pools.p.accounts[0].key: is empty" in result.stderr
    assert "pools.p.accounts[0].priority: must be 0, 1 or 2" in result.stderr


@pytest.mark.parametrize(("database", "says"), [
    ("mysql://operator:hunter2@db.internal/poolgate", "No module named 'MySQLdb'"),
    ("postgresql+psycopg2://operator@127.0.0.1:1/poolgate", "No module named 'psycopg2'"),
    ("sqlite+pysqlite:////tmp/poolgate.db", "its driver 'sqlite+pysqlite' is not an asyncio driver"),
])
def test_selector_refuses_a_database_it_cannot_use(tmp_path: Path, database: str, says: str) -> None:
    config = tmp_path / "poolgate.yaml"
    config.write_text(CONFIG)
    result = subprocess.run([sys.executable, "-m", "poolgate_cli", "selector", "--config", str(config),
                             "--listen", "127.0.0.1:0", "--database", database],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "--database: cannot use the database" in result.stderr and says in result.stderr
    assert "Give a SQLite file path, or a postgresql:// URL" in result.stderr
    assert "hunter2" not in result.stderr


def test_a_database_given_on_the_command_line_replaces_the_configs(tmp_path: Path) -> None:
    config = tmp_path / "poolgate.yaml"
    config.write_text('selector:\n  database: "mysql://operator@db.internal/poolgate"\n' + CONFIG)
    port = free_port()
    process = start(config, tmp_path / "state.db", port)
    try:
        wait_ready(port, process).close()
    finally:
        stop_process(process)
    assert (tmp_path / "state.db").exists()


def poolgate(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "poolgate_cli", *args], capture_output=True, text=True,
                          timeout=30, input=stdin)


def test_accounts_cli_and_sighup_reload(tmp_path: Path) -> None:
    config, database = tmp_path / "poolgate.yaml", tmp_path / "state.db"
    config.write_text(CONFIG)
    port = free_port()
    process = start(config, database, port)
    address = f"127.0.0.1:{port}"
    try:
        wait_ready(port, process).close()
        listing = poolgate("accounts", "list", "--selector", address)
        assert listing.returncode == 0, listing.stderr
        assert "openai (round_robin, 1/1 available, 0 waiting)" in listing.stdout
        assert "…0001" in listing.stdout and "sk-test-only-account-0001" not in listing.stdout
        disabled = poolgate("accounts", "disable", "--selector", address, "openai", "only", "--reason", "audit")
        assert disabled.returncode == 0 and "openai/only: disabled (audit)" in disabled.stdout
        added = poolgate("accounts", "add", "--selector", address, "openai", "extra", "--key-stdin",
                         stdin="sk-test-extra-from-stdin-7777\n")
        assert added.returncode == 0, added.stderr
        config.write_text(CONFIG + "      - {name: second, key: sk-test-second-0002}\n")
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "second" not in (listing := poolgate("accounts", "list", "--selector", address)).stdout:
            assert time.monotonic() < deadline, listing.stdout
            time.sleep(0.1)
        assert "extra" in listing.stdout and "audit" in listing.stdout  # overlay and state kept across reload
        config.write_text("pools: [not, a, mapping]\n")
        process.send_signal(signal.SIGHUP)
        rejected = poolgate("reload", "--selector", address)
        assert rejected.returncode == 1 and "the running one stays" in rejected.stderr
        assert "second" in poolgate("accounts", "list", "--selector", address).stdout
        missing = poolgate("accounts", "reset", "--selector", address, "openai", "nobody")
        assert missing.returncode == 1 and "has no account 'nobody'" in missing.stderr
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=15)[0].decode()
    assert "reload rejected; the running config stays" in output
    assert "sk-test-extra-from-stdin-7777" not in output


def test_cli_says_when_no_selector_answers() -> None:
    result = poolgate("accounts", "list", "--selector", f"127.0.0.1:{free_port()}")
    assert result.returncode == 1 and "no selector answers at" in result.stderr

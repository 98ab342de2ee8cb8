"""The commands as users run them: `poolgate up` with the demo config, and `poolgate edge` refusing bad configs."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from tests.support import demo_config, serve_one_chat_and_stop, stop_process, wait_ready


def test_up_serves_the_demo_and_stops_on_sigterm(tmp_path: Path) -> None:
    config, (edge, selector, fake) = demo_config(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "poolgate_cli", "up", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    output = serve_one_chat_and_stop(process, edge)
    assert "openai/personal rate limited" in output  # the demo's failover is visible at once
    assert (tmp_path / "poolgate.db").exists()  # the database next to the config
    assert served(edge, selector, fake) == [False, False, False], output  # every child stopped


def start_up_in_its_own_session(config: Path, cwd: Path, ignore_hangup: bool = False) -> subprocess.Popen[bytes]:
    """`poolgate up` as a terminal's job: its own process group, so a hangup can reach the whole group."""
    def child_setup() -> None:
        # The child's own disposition, whatever this test run inherited (under `nohup` SIGHUP arrives ignored).
        signal.signal(signal.SIGHUP, signal.SIG_IGN if ignore_hangup else signal.SIG_DFL)

    return subprocess.Popen([sys.executable, "-m", "poolgate_cli", "up", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True,
                            preexec_fn=child_setup)


def served(*ports: int) -> list[bool]:
    out = []
    for port in ports:
        with socket.socket() as sock:
            out.append(sock.connect_ex(("127.0.0.1", port)) == 0)
    return out


@pytest.mark.parametrize("to_group", [False, True], ids=["up alone", "the whole group"])
def test_a_hangup_stops_up_and_every_child(tmp_path: Path, to_group: bool) -> None:
    """SIGHUP (the terminal closed): every child stops, none is left running on its own."""
    config, (edge, selector, fake) = demo_config(tmp_path)
    process = start_up_in_its_own_session(config, tmp_path)
    try:
        wait_ready(f"http://127.0.0.1:{edge}", process)
        if to_group:
            os.killpg(process.pid, signal.SIGHUP)
        else:
            process.send_signal(signal.SIGHUP)
        output = process.communicate(timeout=30)[0].decode()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, output
    assert served(edge, selector, fake) == [False, False, False], output


def test_under_nohup_a_hangup_changes_nothing(tmp_path: Path) -> None:
    config, (edge, selector, fake) = demo_config(tmp_path)
    process = start_up_in_its_own_session(config, tmp_path, ignore_hangup=True)
    try:
        wait_ready(f"http://127.0.0.1:{edge}", process)
        os.killpg(process.pid, signal.SIGHUP)
        time.sleep(1.5)
        assert process.poll() is None
        assert served(edge, selector, fake) == [True, True, True]
        wait_ready(f"http://127.0.0.1:{edge}", process)
    finally:
        output = stop_process(process)
    assert process.returncode == 0, output
    assert served(edge, selector, fake) == [False, False, False], output


def wait_for_slow_request(fake: int, within: float = 10) -> None:
    """Return once the fake upstream has received a request for one of the slow keys (it counts it before its
    delay)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{fake}/_fake/stats", timeout=5) as response:
            counts = json.load(response)["requests"]
        if any("slow1500" in key for key in counts):
            return
        time.sleep(0.05)
    raise AssertionError(f"no request reached a slow account within {within:g} s")


def test_up_stops_the_edge_first_so_a_request_in_flight_is_answered_and_reported(tmp_path: Path) -> None:
    config, (edge, _selector, fake) = demo_config(tmp_path)
    # Every account that serves answers after 1.5 s, so a request is still in flight when `up` is stopped.
    text = config.read_text()
    assert "sk-demo-work-0001" in text and "sk-demo-team-0002" in text
    config.write_text(text.replace("sk-demo-work-0001", "sk-demo-slow1500-work")
                      .replace("sk-demo-team-0002", "sk-demo-slow1500-team"))
    process = subprocess.Popen([sys.executable, "-m", "poolgate_cli", "up", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{edge}"
    with (concurrent.futures.ThreadPoolExecutor(1) as pool,
          openai.OpenAI(base_url=f"{url}/v1", api_key="poolgate-demo", max_retries=0, timeout=20) as client):
        try:
            wait_ready(url, process)
            answer = pool.submit(client.chat.completions.create, model="gpt-4o-mini",
                                 messages=[{"role": "user", "content": "hi"}])
            wait_for_slow_request(fake)  # past the first account's 429: the request waits on a slow account
            assert not answer.done()
        finally:
            output = stop_process(process)
        assert answer.result(timeout=5).choices[0].message.content
    assert process.returncode == 0, output
    # The edge stopped first and its last outcome report reached the selector: nothing to warn about.
    assert output.index("edge stopping") < output.index("poolgate selector stopping"), output
    assert "could not confirm outcome reports" not in output, output


def test_edge_refuses_to_start_with_auth_on_and_no_keys(tmp_path: Path) -> None:
    config = tmp_path / "poolgate.yaml"
    config.write_text("pools:\n  openai: {api_key: sk-aaaaaaaaaaaa}\nmodels: {gpt-4o: openai}\n")
    result = subprocess.run([sys.executable, "-m", "poolgate_cli", "edge", "--config", str(config),
                             "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "edge.api_keys is empty" in result.stderr and "edge.auth: false" in result.stderr

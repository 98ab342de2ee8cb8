"""The fake upstream runs as a program of its own (``python -m fake_upstream``): ``poolgate fake-upstream`` becomes
it, and ``poolgate up`` starts it as a child beside the selector and the edge, never importing it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support import demo_config, free_port, serve_one_chat_and_stop, stop_process

REPLY = "Hello! This is the poolgate fake upstream answering your request."


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (read from /proc/*/stat: field 4, after the command's parenthesis)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # it exited meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def fake_stats(port: int, process: subprocess.Popen[bytes], within: float = 30) -> dict[str, object]:
    """``GET /_fake/stats`` once the fake on ``port`` answers; fails with its output if it exits first."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0].decode()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_fake/stats", timeout=1) as response:
                answer: dict[str, object] = json.load(response)
                return answer
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the fake upstream did not answer on {port} within {within:g} s")


def test_poolgate_fake_upstream_becomes_the_fake_upstream_program() -> None:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "poolgate_cli", "--log-level", "warning", "fake-upstream",
                                "--listen", f"127.0.0.1:{port}", "--latency", "0.01"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert fake_stats(port, process)["requests"] == {}
        # The same process, now the fake's own program with the options given to the command.
        argv = command_line(process.pid)
        assert argv[1:3] == ["-m", "fake_upstream"], argv
        assert argv[argv.index("--listen") + 1] == f"127.0.0.1:{port}" and "0.01" in argv, argv
        assert argv[argv.index("--log-level") + 1] == "warning", argv
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions", headers={"Authorization": "Bearer sk-program-0001"},
            data=json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode())
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.load(response)["choices"][0]["message"]["content"] == REPLY
    finally:
        output = stop_process(process)
    assert process.returncode == 0, output
    assert "Traceback" not in output


def test_poolgate_fake_upstream_says_what_is_wrong_with_its_address() -> None:
    result = subprocess.run([sys.executable, "-m", "poolgate_cli", "fake-upstream", "--listen", "no-port-here"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("fake upstream: --listen "), result.stderr
    assert "Traceback" not in result.stderr


def test_up_starts_the_fake_upstream_as_its_own_program(tmp_path: Path) -> None:
    config, (edge, _selector, fake) = demo_config(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "poolgate_cli", "up", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        fake_stats(fake, process)
        programs = {tuple(command_line(pid)[1:3]): command_line(pid) for pid in children(process.pid)}
        assert ("-m", "fake_upstream") in programs, programs
        assert programs["-m", "fake_upstream"][-2:] == ["--listen", f"127.0.0.1:{fake}"]
    finally:
        serve_one_chat_and_stop(process, edge)  # the whole demo serves through it, and stops cleanly

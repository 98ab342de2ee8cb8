"""The commands as users run them: `poolgate up` with the demo config, and `poolgate edge` refusing bad configs."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]


def _wait_healthy(url: str, process: subprocess.Popen[bytes], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0].decode()
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"poolgate up did not get ready:\n{process.communicate()[0].decode()}")


def test_up_serves_the_demo_and_stops_on_sigterm(tmp_path: Path) -> None:
    edge, selector, fake = free_port(), free_port(), free_port()
    demo = (ROOT / "examples" / "demo.yaml").read_text()
    for default, port in (("8080", edge), ("50151", selector), ("9090", fake)):
        assert f"127.0.0.1:{default}" in demo
        demo = demo.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
    config = tmp_path / "demo.yaml"
    config.write_text(demo)
    process = subprocess.Popen([sys.executable, "-m", "poolgate.cli", "up", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{edge}"
        _wait_healthy(url, process, within=30)
        with openai.OpenAI(base_url=f"{url}/v1", api_key="poolgate-demo", max_retries=0) as client:
            completion = client.chat.completions.create(model="gpt-4o-mini",
                                                        messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert "openai/personal rate limited" in output  # the demo's failover is visible at once
    assert (tmp_path / "poolgate.db").exists()  # the database next to the config
    for port in (edge, selector, fake):  # every child stopped
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, f"port {port} is still served"


def test_edge_refuses_to_start_with_auth_on_and_no_keys(tmp_path: Path) -> None:
    config = tmp_path / "poolgate.yaml"
    config.write_text("pools:\n  openai: {api_key: sk-aaaaaaaaaaaa}\nmodels: {gpt-4o: openai}\n")
    result = subprocess.run([sys.executable, "-m", "poolgate.cli", "edge", "--config", str(config),
                             "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "edge.api_keys is empty" in result.stderr and "edge.auth: false" in result.stderr

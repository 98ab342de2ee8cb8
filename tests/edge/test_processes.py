"""The commands as users run them: `poolgate up` with the demo config, and `poolgate edge` refusing bad configs."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import openai

from tests.support import demo_config, stop_process, wait_ready


def test_up_serves_the_demo_and_stops_on_sigterm(tmp_path: Path) -> None:
    config, (edge, selector, fake) = demo_config(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "poolgate.cli", "up", "--config", str(config)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{edge}"
        wait_ready(url, process)
        with openai.OpenAI(base_url=f"{url}/v1", api_key="poolgate-demo", max_retries=0) as client:
            completion = client.chat.completions.create(model="gpt-4o-mini",
                                                        messages=[{"role": "user", "content": "hi"}])
        assert completion.choices[0].message.content
    finally:
        output = stop_process(process)
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

"""``poolgate --version`` (the one version) and ``poolgate demo`` (the packaged demo config, from any directory)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import poolgate
from poolgate_cli.demo import DEMO_PORTS, demo_config_text
from poolgate_cli.main import main
from tests.edge.test_processes import served
from tests.support import ROOT, free_port, serve_one_chat_and_stop, stop_process, wait_ready


def test_version_prints_the_one_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"poolgate {poolgate.__version__}\n"
    assert metadata.version("poolgate") == poolgate.__version__  # the installed metadata reads the same


def test_pyproject_writes_no_version_of_its_own() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "poolgate.__version__"}


def test_the_packaged_demo_config_is_the_example() -> None:
    packaged = ROOT / "poolgate_cli" / "demo.yaml"
    assert packaged.read_text() == (ROOT / "examples" / "demo.yaml").read_text(), (
        "poolgate_cli/demo.yaml is a copy of examples/demo.yaml: cp examples/demo.yaml poolgate_cli/demo.yaml")
    assert demo_config_text(**DEMO_PORTS) == packaged.read_text()


def test_demo_ports_are_replaced_everywhere() -> None:
    text = demo_config_text(edge_port=1, selector_port=2, upstream_port=3)
    for default in DEMO_PORTS.values():
        assert f"127.0.0.1:{default}" not in text
    assert "listen: 127.0.0.1:1" in text and "listen: 127.0.0.1:2" in text
    assert "fake_upstream: 127.0.0.1:3" in text and "base_url: http://127.0.0.1:3/v1" in text


def test_demo_serves_from_any_directory_and_stops_on_sigterm(tmp_path: Path) -> None:
    """Run from a directory holding nothing: the config and its database go to a temporary directory."""
    edge, selector, fake = free_port(), free_port(), free_port()
    workdir = tmp_path / "anywhere"
    workdir.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "poolgate_cli", "demo", "--edge-port", str(edge), "--selector-port", str(selector),
         "--upstream-port", str(fake)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=workdir)
    output = serve_one_chat_and_stop(process, edge)
    assert "openai/personal rate limited" in output
    assert list(workdir.iterdir()) == []  # nothing written where it was started
    state = next(line for line in output.splitlines() if "config and state in" in line).split(" in ", 1)[1]
    assert not Path(state.split(";")[0]).exists()  # the temporary directory is removed
    assert served(edge, selector, fake) == [False, False, False], output


def test_demo_dir_keeps_the_config_and_its_state(tmp_path: Path) -> None:
    edge, selector, fake = free_port(), free_port(), free_port()
    state = tmp_path / "state"
    process = subprocess.Popen(
        [sys.executable, "-m", "poolgate_cli", "demo", "--dir", str(state), "--edge-port", str(edge),
         "--selector-port", str(selector), "--upstream-port", str(fake)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_ready(f"http://127.0.0.1:{edge}", process)
    finally:
        output = stop_process(process)
    assert process.returncode == 0, output
    assert (state / "demo.yaml").read_text() == demo_config_text(edge, selector, fake)
    assert (state / "poolgate.db").exists()

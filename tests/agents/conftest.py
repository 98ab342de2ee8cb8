"""The real Claude Code and Codex CLI, unchanged, through a real edge: fake upstream, selector and edge each run as
their own process on 127.0.0.1, once for the package; every CLI run gets a fresh HOME in ``tmp_path``.

The CLIs come from ``scripts/install-agents.sh`` (``make agents``, pinned versions in ``.cache/agents``); the tests
fail, saying how to get npm, when they cannot be installed. Telemetry, error reports and update checks are off, no
proxy is used: nothing leaves 127.0.0.1. The model a run asks for decides its pool (``gpt-*``: ``openai``,
``claude-*``: ``claude``), but for runs with ``CHAT_KEY``, which go to the pool ``chat``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.faults.conftest import running_gateway
from tests.support import ROOT, free_port

GATEWAY_KEY = "pg-agents-gateway-key-0001"
CHAT_KEY = "pg-agents-chat-only-key-0002"
"""A gateway key whose requests go to the pool without the Responses API (a rule of ``routes:``)."""
WRONG_KEY = "pg-agents-wrong-key-dead"
RUN_SECONDS = 90.0
"""The longest a CLI run may take."""
AUTH_FAILURE_SECONDS = 20.0
"""A wrong gateway key must end a CLI run within this."""
TEST_TIMEOUT = RUN_SECONDS + 60
"""pytest-timeout's limit for these tests: a run, and the stack's start (or the CLIs' install) before it."""

ACCOUNTS = {
    "claude": ("sk-ant-agents-a-0001", "sk-ant-agents-b-0002"),
    "openai": ("sk-oai-agents-a-0001", "sk-oai-agents-b-0002"),
    "chat": ("sk-chatonly-agents-a-0001", "sk-chatonly-agents-b-0002"),
}
"""pool -> its accounts' keys (the fake answers ``chatonly`` keys' ``/v1/responses`` with a 404)."""
CLAUDE_MODEL = "claude-opus-5-5"
"""Claude Code's default model."""
CODEX_MODEL = "gpt-5.5"
"""One of the models Codex knows (a name it does not know gets fallback settings and a warning)."""


def _config(directory: Path, fake: int, selector: int, edge: int) -> Path:
    def accounts(pool: str) -> str:
        return ", ".join(f"{{name: {chr(97 + i)}, key: {key}}}" for i, key in enumerate(ACCOUNTS[pool]))

    text = f"""
edge:
  listen: 127.0.0.1:{edge}
  api_keys: [{GATEWAY_KEY}, {CHAT_KEY}]
  selector: 127.0.0.1:{selector}
  timeouts: {{connect: 2s, first_byte: 20s, total: 60s, selector: 5s}}
selector:
  listen: 127.0.0.1:{selector}
  database: {directory / "state.db"}
pools:
  claude:
    format: anthropic
    base_url: http://127.0.0.1:{fake}
    accounts: [{accounts("claude")}]
  openai:
    base_url: http://127.0.0.1:{fake}/v1
    accounts: [{accounts("openai")}]
  chat:
    base_url: http://127.0.0.1:{fake}/v1
    apis: [chat]
    accounts: [{accounts("chat")}]
models:
  "gpt-*": openai
  "claude-*": claude
routes:
  - name: chat-only upstream
    match: {{client_key: "…{CHAT_KEY[-4:]}"}}
    to: chat/{CODEX_MODEL}
"""
    path = directory / "poolgate.yaml"
    path.write_text(text)
    return path


@dataclass
class Run:
    """A finished CLI run."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return f"{self.stdout}\n{self.stderr}"

    def __repr__(self) -> str:
        return (f"exit {self.returncode} after {self.seconds:.1f} s\n--- stdout\n{self.stdout[-4000:]}\n"
                f"--- stderr\n{self.stderr[-4000:]}")


@dataclass
class Gateway:
    """The running stack: the edge's URL, the fake upstream's, and the CLIs' folder."""

    edge: str
    fake: str
    bin: Path

    def fake_stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.fake}/_fake/stats", timeout=5) as response:
            stats: dict[str, Any] = json.load(response)
        return stats

    def calls(self, since: dict[str, Any]) -> dict[str, dict[str, int]]:
        """key -> path -> upstream calls made since the ``since`` snapshot of :meth:`fake_stats` (none left out)."""
        now, before = self.fake_stats()["paths"], since["paths"]
        found = {}
        for key, paths in now.items():
            grown = {path: n - before.get(key, {}).get(path, 0) for path, n in paths.items()}
            grown = {path: n for path, n in grown.items() if n}
            if grown:
                found[key] = grown
        return found

    def run(self, command: list[str], env: dict[str, str], cwd: Path, timeout: float) -> Run:
        """Run a CLI to its end (killed after ``timeout`` seconds, failing the test), stdin closed."""
        started = time.monotonic()
        with subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True) as process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                stdout, stderr = process.communicate()
                run = Run(-9, stdout.decode(errors="replace"), stderr.decode(errors="replace"), timeout)
                pytest.fail(f"{Path(command[0]).name} did not finish within {timeout:g} s:\n{run}")
        return Run(process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"),
                   time.monotonic() - started)


def quiet_env(home: Path) -> dict[str, str]:
    """What every CLI run starts from: a private HOME, no proxies, nothing of the caller's agent settings, and
    telemetry, error reports and update checks off."""
    env = {name: os.environ[name] for name in ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT") if name in os.environ}
    env.update({
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "TERM": "dumb", "NO_COLOR": "1",
        "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    })
    return env


@pytest.fixture(scope="session")
def agents_bin() -> Path:
    """The folder of the pinned ``claude`` and ``codex`` (installed now if missing; fails when npm is missing)."""
    done = subprocess.run([str(ROOT / "scripts" / "install-agents.sh")], capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode != 0:
        pytest.fail(f"the coding agents could not be installed (scripts/install-agents.sh):\n{done.stderr}",
                    pytrace=False)
    return Path(done.stdout.strip())


@pytest.fixture(scope="package")
def gateway(tmp_path_factory: pytest.TempPathFactory, agents_bin: Path) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("agents-gateway")
    fake_port, selector_port, edge_port = free_port(), free_port(), free_port()
    config = _config(directory, fake_port, selector_port, edge_port)
    with running_gateway(directory, config, fake_port, edge_port):
        yield Gateway(f"http://127.0.0.1:{edge_port}", f"http://127.0.0.1:{fake_port}", agents_bin)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """The folder a CLI runs in, with a note to read; HOME is ``tmp_path/home``."""
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "home").mkdir()
    return work

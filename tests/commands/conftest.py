"""Running the ``poolgate`` command as a process, as users run it, against a selector served by the test."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from poolgate.config import load_config
from selector_service.app import SelectorHandle, start_selector
from selector_service.overlay import ConfigSource
from tests.support import free_port

SELECTOR_ONLY = ("POOLGATE_TEST_COMMANDS_KEY", "POOLGATE_TEST_EDGE_KEY")
"""The config's key variables: set for the selector (this process), never for the admin's command."""


@dataclass
class Ran:
    status: int
    out: str
    err: str


async def poolgate(*args: str, env: Mapping[str, str] | None = None, stdout: int | None = None,
                   stdin: bytes | None = None) -> Ran:
    """``poolgate ARGS`` as its own process (this event loop keeps serving meanwhile); ``stdout`` an fd to write
    to instead of a pipe read here."""
    environment = {k: v for k, v in os.environ.items() if k not in SELECTOR_ONLY} if env is None else dict(env)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "poolgate_cli", *args, env=environment,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=stdout if stdout is not None else asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin), 45)
    assert process.returncode is not None
    return Ran(process.returncode, (out or b"").decode(), err.decode())


def closed_pipe() -> int:
    """The write end of a pipe whose reader is already gone (as after ``| head`` has read its lines)."""
    read, write = os.pipe()
    os.close(read)
    return write


CONFIG = """
selector:
  listen: 127.0.0.1:PORT
  auth: {admin_tokens: ["${POOLGATE_TEST_ADMIN:-admin-token-for-tests-0001}"]}
edge:
  api_keys: ["${POOLGATE_TEST_EDGE_KEY}"]
pools:
  p:
    accounts:
      - {name: a, key: "${POOLGATE_TEST_COMMANDS_KEY}"}
"""


@dataclass
class Running:
    handle: SelectorHandle
    config: Path


@pytest.fixture
async def running_selector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    """A selector on a free port, from a config file whose pool key and edge key are ``${VAR}`` references set
    only in the selector's environment (this process)."""
    monkeypatch.setenv("POOLGATE_TEST_COMMANDS_KEY", "sk-test-commands-key-abcd")
    monkeypatch.setenv("POOLGATE_TEST_EDGE_KEY", "edge-key-0000000001")
    path = tmp_path / "poolgate.yaml"
    port = free_port()
    path.write_text(CONFIG.replace("PORT", str(port)))
    handle = await start_selector(load_config(path), listen=f"127.0.0.1:{port}", database=str(tmp_path / "s.db"),
                                  source=ConfigSource(str(path)))
    yield Running(handle, path)
    await handle.stop(grace=0.5)

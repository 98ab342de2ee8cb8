"""A command whose reader went away (``poolgate check f.yaml | head -3``) ends quietly, as other Unix tools do."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.commands.conftest import Running, closed_pipe, poolgate

POOLS = "".join(f"  pool{i}:\n    api_key: sk-test-key-{i:012d}\n" for i in range(40))
CONFIG = "edge: {auth: false}\npools:\n" + POOLS


async def test_check_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    path = tmp_path / "poolgate.yaml"
    path.write_text(CONFIG)
    pipe = closed_pipe()
    try:
        ran = await poolgate("check", str(path), stdout=pipe)
    finally:
        os.close(pipe)
    assert ran.status == 128 + signal.SIGPIPE, ran.err
    assert ran.err == ""


async def test_accounts_list_into_a_closed_pipe_ends_quietly(running_selector: Running) -> None:
    pipe = closed_pipe()
    try:
        ran = await poolgate("accounts", "list", "--config", str(running_selector.config), stdout=pipe)
    finally:
        os.close(pipe)
    assert ran.status == 128 + signal.SIGPIPE, ran.err
    assert ran.err == ""

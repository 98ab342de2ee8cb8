"""Claude Code (``claude -p``, default settings and tools) through the edge, on an Anthropic-format pool and on an
OpenAI-format one, with a tool call and its result; a wrong gateway key ends it at once."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.agents.conftest import (
    ACCOUNTS,
    AUTH_FAILURE_SECONDS,
    CHAT_KEY,
    GATEWAY_KEY,
    RUN_SECONDS,
    TEST_TIMEOUT,
    WRONG_KEY,
    Gateway,
    Run,
    quiet_env,
)

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)


def claude(gateway: Gateway, workdir: Path, *arguments: str, key: str = GATEWAY_KEY,
           timeout: float = RUN_SECONDS) -> Run:
    """``claude ARGUMENTS`` in ``workdir``, pointed at the edge as its documentation says for a gateway."""
    home = workdir.parent / "home"
    env = {**quiet_env(home), "ANTHROPIC_BASE_URL": gateway.edge, "ANTHROPIC_API_KEY": key,
           "CLAUDE_CONFIG_DIR": str(home / ".claude")}
    return gateway.run([str(gateway.bin / "claude"), *arguments], env, workdir, timeout)


def note(workdir: Path) -> tuple[Path, str]:
    """A file in the working folder holding a word no one could guess."""
    word = f"poolgate-note-{uuid.uuid4().hex[:12]}"
    path = workdir / "note.txt"
    path.write_text(f"{word}\n")
    return path, word


def test_on_an_anthropic_pool_it_reads_a_file_and_gets_the_answer(gateway: Gateway, workdir: Path) -> None:
    path, word = note(workdir)
    before = gateway.fake_stats()
    run = claude(gateway, workdir, "-p", f"use the tool Read with {json.dumps({'file_path': str(path)})}")
    assert run.returncode == 0, str(run)
    assert "The tool returned:" in run.stdout and word in run.stdout, str(run)
    calls = gateway.calls(before)
    assert set(calls) <= set(ACCOUNTS["claude"]), calls
    assert sum(n for paths in calls.values() for n in paths.values()) == 2, calls  # the ask, then the result
    assert {path for paths in calls.values() for path in paths} == {"/v1/messages"}, calls


@pytest.mark.parametrize(("pool", "key", "paths"), [
    ("openai", GATEWAY_KEY, {"/v1/chat/completions", "/v1/responses"}),
    ("chat", CHAT_KEY, {"/v1/chat/completions"}),
])
def test_on_an_openai_pool_it_runs_an_allowed_command_and_gets_the_answer(
        gateway: Gateway, workdir: Path, pool: str, key: str, paths: set[str]) -> None:
    word = f"poolgate-echo-{uuid.uuid4().hex[:12]}"
    ask = f"use the tool Bash with {json.dumps({'command': f'echo {word}', 'description': 'Echo a word'})}"
    before = gateway.fake_stats()
    run = claude(gateway, workdir, "-p", ask, "--model", "gpt-4o-mini", "--allowedTools", "Bash(echo:*)", key=key)
    assert run.returncode == 0, str(run)
    assert "The tool returned:" in run.stdout and word in run.stdout, str(run)
    calls = gateway.calls(before)
    assert set(calls) <= set(ACCOUNTS[pool]), calls
    assert sum(n for used in calls.values() for n in used.values()) == 2, calls  # the ask, then the result
    assert {path for used in calls.values() for path in used} <= paths, calls


def test_a_wrong_gateway_key_ends_it_quickly_with_an_auth_error(gateway: Gateway, workdir: Path) -> None:
    before = gateway.fake_stats()
    run = claude(gateway, workdir, "-p", "Say hello.", key=WRONG_KEY, timeout=AUTH_FAILURE_SECONDS)
    assert run.returncode != 0, str(run)
    assert any(word in run.output.lower() for word in ("invalid api key", "401", "authentication")), str(run)
    assert gateway.calls(before) == {}

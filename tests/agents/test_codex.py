"""Codex CLI (``codex exec``, its documented custom-provider settings) through the edge: on an OpenAI-format pool
whose upstream speaks the Responses API, on one whose upstream has chat completions only, and on an Anthropic-format
pool, each with a shell command and its output; a wrong gateway key ends it at once."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.agents.conftest import (
    ACCOUNTS,
    AUTH_FAILURE_SECONDS,
    CHAT_KEY,
    CLAUDE_MODEL,
    CODEX_MODEL,
    GATEWAY_KEY,
    RUN_SECONDS,
    TEST_TIMEOUT,
    WRONG_KEY,
    Gateway,
    Run,
    quiet_env,
)

pytestmark = pytest.mark.timeout(TEST_TIMEOUT)

CONFIG = """\
model = "{model}"
model_provider = "poolgate"
check_for_update_on_startup = false

[model_providers.poolgate]
name = "poolgate"
base_url = "{edge}/v1"
env_key = "POOLGATE_API_KEY"
wire_api = "responses"

[analytics]
enabled = false

[otel]
exporter = "none"

[feedback]
enabled = false

[features]
plugins = false
"""
"""``$CODEX_HOME/config.toml``: poolgate as a model provider; analytics, OpenTelemetry export, feedback, the update
check and plugins off (with plugins on, Codex syncs a plugin catalog from github.com and chatgpt.com at start)."""
UPSTREAM_PATH = {"openai": "/v1/responses", "chat": "/v1/chat/completions", "claude": "/v1/messages"}
"""pool -> the path its upstream serves Codex's requests on."""
HOW = {"openai": (CODEX_MODEL, GATEWAY_KEY), "chat": (CODEX_MODEL, CHAT_KEY), "claude": (CLAUDE_MODEL, GATEWAY_KEY)}
"""pool -> the model and gateway key that reach it."""


def codex(gateway: Gateway, workdir: Path, prompt: str, model: str, key: str = GATEWAY_KEY,
          timeout: float = RUN_SECONDS) -> Run:
    """``codex exec PROMPT`` in ``workdir`` with poolgate as its model provider."""
    home = workdir.parent / "home"
    (home / ".codex").mkdir(exist_ok=True)
    (home / ".codex" / "config.toml").write_text(CONFIG.format(model=model, edge=gateway.edge))
    env = {**quiet_env(home), "CODEX_HOME": str(home / ".codex"), "POOLGATE_API_KEY": key}
    command = [str(gateway.bin / "codex"), "exec", "--skip-git-repo-check", prompt]
    return gateway.run(command, env, workdir, timeout)


@pytest.mark.parametrize("pool", ["openai", "chat", "claude"])
def test_it_runs_a_command_and_gets_the_answer(gateway: Gateway, workdir: Path, pool: str) -> None:
    word = f"poolgate-echo-{uuid.uuid4().hex[:12]}"
    before = gateway.fake_stats()
    model, key = HOW[pool]
    run = codex(gateway, workdir, f"use the tool exec_command with {json.dumps({'cmd': f'echo {word}'})}", model,
                key)
    assert run.returncode == 0, str(run)
    assert "The tool returned:" in run.stdout and word in run.stdout, str(run)
    calls = gateway.calls(before)
    assert set(calls) <= set(ACCOUNTS[pool]), calls
    by_path: dict[str, int] = {}
    for paths in calls.values():
        for path, n in paths.items():
            by_path[path] = by_path.get(path, 0) + n
    assert by_path == {UPSTREAM_PATH[pool]: 2}, calls  # the ask, then the command's output


def test_a_wrong_gateway_key_ends_it_quickly_with_an_auth_error(gateway: Gateway, workdir: Path) -> None:
    before = gateway.fake_stats()
    run = codex(gateway, workdir, "Say hello.", CODEX_MODEL, key=WRONG_KEY, timeout=AUTH_FAILURE_SECONDS)
    assert run.returncode != 0, str(run)
    assert any(word in run.output.lower() for word in ("401", "unauthorized", "invalid api key")), str(run)
    assert gateway.calls(before) == {}

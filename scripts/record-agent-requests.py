#!/usr/bin/env python3
"""Records what Claude Code and Codex CLI really send, into tests/fixtures/agents/.

Each CLI runs once, non-interactively, against a recording server on 127.0.0.1 that passes every request on to a
fake upstream (:mod:`fake_upstream`) in the same process, so the CLI gets real-looking answers and goes on.
HOME, CLAUDE_CONFIG_DIR and CODEX_HOME live in a temporary folder; telemetry, error reports and update checks are off.
Key values in headers are redacted. Usage (after ``scripts/install-agents.sh``)::

    .venv/bin/python scripts/record-agent-requests.py [--out tests/fixtures/agents] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fake_upstream import start_fake_upstream  # noqa: E402

KEY = "sk-record-0123456789abcdef"
SECRET_HEADERS = ("authorization", "x-api-key", "proxy-authorization", "cookie")
LONG_TEXT = 4000
"""Strings longer than this (system prompts, tool descriptions) keep their head and tail only."""
HOP_HEADERS = ("host", "content-length", "transfer-encoding", "connection", "accept-encoding")


def trim(value: Any) -> Any:
    if isinstance(value, str) and len(value) > LONG_TEXT:
        half = LONG_TEXT // 2
        return f"{value[:half]} [... {len(value) - LONG_TEXT} characters trimmed ...] {value[-half:]}"
    if isinstance(value, list):
        return [trim(v) for v in value]
    if isinstance(value, dict):
        return {k: trim(v) for k, v in value.items()}
    return value


def redact(headers: Any) -> dict[str, str]:
    out = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower in SECRET_HEADERS:
            scheme = value.split(" ", 1)[0] + " " if lower.endswith("authorization") and " " in value else ""
            value = f"{scheme}<redacted>"
        out[lower] = value
    return out


class Recorder:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.records: list[dict[str, Any]] = []
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        record = {"method": request.method, "path": request.path_qs, "headers": redact(request.headers),
                  "body": body}
        self.records.append(record)
        if request.headers.get("upgrade", "").lower() == "websocket":
            record["answer"] = 426
            return web.Response(status=426, text="websockets are not served here")
        assert self.session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        async with self.session.request(request.method, self.upstream + request.path_qs, data=raw or None,
                                        headers=headers) as upstream:
            record["answer"] = upstream.status
            response = web.StreamResponse(status=upstream.status, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in (*HOP_HEADERS, "content-encoding")})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response


def quiet_env(home: Path, port: int) -> dict[str, str]:
    """The environment both CLIs run in: a private HOME, telemetry and update checks off, no proxies."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy") and not k.startswith(
        ("ANTHROPIC_", "OPENAI_", "CLAUDE_", "CODEX_"))}
    env.update({
        "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "NO_PROXY": "*", "no_proxy": "*",
        "DISABLE_TELEMETRY": "1", "DISABLE_ERROR_REPORTING": "1", "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CONFIG_DIR": str(home / ".claude"), "CODEX_HOME": str(home / ".codex"),
        "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}", "ANTHROPIC_API_KEY": KEY, "POOLGATE_KEY": KEY,
    })
    return env


CODEX_CONFIG = """\
model = "{model}"
model_provider = "poolgate"
check_for_update_on_startup = false

[model_providers.poolgate]
name = "poolgate"
base_url = "http://127.0.0.1:{port}/v1"
env_key = "POOLGATE_KEY"
wire_api = "responses"

[analytics]
enabled = false

[otel]
exporter = "none"
log_user_prompt = false

[feedback]
enabled = false

[features]
plugins = false
"""


READ_NOTE = 'use the tool Read with {{"file_path": "{work}/note.txt"}}'
ECHO = 'use the tool exec_command with {{"cmd": "echo poolgate-ok"}}'


def runs(bin_dir: Path) -> dict[str, tuple[str, list[str], dict[str, str]]]:
    """name -> (fixture name pattern, command, settings); the pattern's {kind} is the path (messages, responses)."""
    claude, codex = str(bin_dir / "claude"), str(bin_dir / "codex")
    return {
        "claude_code": ("claude_code_{kind}", [claude, "-p", "Say hello."], {}),
        "claude_code_gpt": ("claude_code_{kind}_gpt", [claude, "-p", "--model", "gpt-4o-mini", "Say hello."], {}),
        "codex": ("codex_{kind}", [codex, "exec", "--skip-git-repo-check", "Say hello."], {"model": "gpt-5.5"}),
        "codex_sol": ("codex_{kind}_sol", [codex, "exec", "--skip-git-repo-check", "Say hello."],
                      {"model": "gpt-5.6-sol"}),
        "claude_code_tool": ("claude_code_{kind}_tool", [claude, "-p", READ_NOTE], {}),
        "codex_tool": ("codex_{kind}_tool", [codex, "exec", "--skip-git-repo-check", ECHO], {"model": "gpt-5.5"}),
    }


async def record(name: str, pattern: str, command: list[str], extra: dict[str, str], out: Path,
                 timeout: float) -> None:
    fake = await start_fake_upstream()
    recorder = Recorder(fake.url)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    recorder.session = aiohttp.ClientSession(auto_decompress=False)
    try:
        with tempfile.TemporaryDirectory(prefix=f"record-{name}-") as folder:
            home = Path(folder)
            work = home / "work"
            work.mkdir()
            (work / "note.txt").write_text("poolgate-ok\n")
            command = [part.format(work=work) if part in (READ_NOTE, ECHO) else part for part in command]
            (home / ".codex").mkdir()
            (home / ".codex" / "config.toml").write_text(CODEX_CONFIG.format(port=port, model=extra.get("model", "")))
            process = await asyncio.create_subprocess_exec(
                *command, cwd=work, env=quiet_env(home, port), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
            print(f"== {name}: exit {process.returncode}\n{stdout.decode()[-2000:]}\n{stderr.decode()[-3000:]}",
                  file=sys.stderr)
    finally:
        await recorder.session.close()
        await runner.cleanup()
        await fake.stop()
    probe = await asyncio.create_subprocess_exec(command[0], "--version", stdout=subprocess.PIPE)
    version = (await probe.communicate())[0].decode().strip()
    print(f"{version}: " + ", ".join(f"{r['method']} {r['path']} -> {r.get('answer')}" for r in recorder.records),
          file=sys.stderr)
    for index, found in enumerate(recorder.records):
        found.pop("answer", None)
        path = found["path"].split("?")[0]
        kind = path.strip("/").removeprefix("v1/").replace("/", "_") or "root"
        first = all(r["path"].split("?")[0] != path for r in recorder.records[:index])
        stem = pattern.format(kind=kind) + ("" if first else f"_{index}")
        (out / f"{stem}.json").write_text(json.dumps(trim(found), indent=1, ensure_ascii=False) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "agents")
    parser.add_argument("--bin", type=Path, default=ROOT / ".cache" / "agents" / "node_modules" / ".bin")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, (pattern, command, extra) in runs(args.bin).items():
        if not args.only or name in args.only:
            asyncio.run(record(name, pattern, command, extra, args.out, args.timeout))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fixtures for credential tests: a fake OAuth token endpoint, credential files, and a selector core with the
credential manager on a real SQLite file. Every test also checks that no token reached the logs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from poolgate.config import Config, parse_config
from selector_service.credentials.builtin import EnvKeySource, StaticKeySource
from selector_service.credentials.file_source import FileCredentialSource
from selector_service.credentials.manager import CredentialManager
from selector_service.credentials.oauth_http import AiohttpTokenPoster
from selector_service.domain.leases import Grant
from selector_service.domain.selector import SelectorCore
from selector_service.plugin.manager import StrategyRegistry
from selector_service.plugin.types import SelectionRequest
from selector_service.storage import StateRepository

HOUR = 3600.0
IN_MARGIN = 480.0  # inside the default 10 min refresh margin, outside the 5 min skip threshold
EXPIRING = 120.0  # inside the skip threshold


@dataclass
class FakeTokenEndpoint:
    """A refresh_token grant endpoint that knows which refresh tokens are valid and rotates them on use."""

    url: str = ""
    valid: dict[str, str] = field(default_factory=dict)  # refresh token -> account label
    calls: list[dict[str, Any]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # time.monotonic() of each call
    issued: list[str] = field(default_factory=list)
    mode: str = "ok"  # ok | unavailable | invalid_grant
    delay: float = 0.0
    lifetime: int = 3600
    rotate: bool = True
    before_answer: Callable[[dict[str, str]], Awaitable[None]] | None = None
    """Runs after a request arrived and before it is answered (e.g. another process rotating the tokens)."""
    runner: web.AppRunner | None = None

    def allow(self, refresh_token: str, label: str) -> None:
        self.valid[refresh_token] = label

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            fields = await request.json()
        else:
            fields = dict(await request.post())
        self.calls.append({"content_type": request.content_type, "fields": fields,
                           "cookie": "Cookie" in request.headers})
        self.times.append(time.monotonic())
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.before_answer is not None:
            await self.before_answer(fields)
        if self.mode == "unavailable":
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        token = fields.get("refresh_token") or fields.get("refreshToken") or ""
        label = self.valid.get(token)
        if self.mode == "invalid_grant" or label is None:
            return web.json_response({"error": "invalid_grant", "error_description": f"token {token} is revoked"},
                                     status=400)
        n = len(self.issued) + 1
        access, refresh = f"at-{label}-new{n}-{os.urandom(4).hex()}", f"rt-{label}-new{n}-{os.urandom(4).hex()}"
        self.issued += [access, refresh]
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer", "expires_in": self.lifetime}
        if self.rotate:
            del self.valid[token]
            self.valid[refresh] = label
            body["refresh_token"] = refresh
        # A session cookie on every answer, as identity providers behind a CDN set.
        return web.json_response(body, headers={"Set-Cookie": f"session={os.urandom(8).hex()}; path=/; HttpOnly"})


@pytest.fixture
async def token_endpoint() -> AsyncIterator[FakeTokenEndpoint]:
    endpoint = FakeTokenEndpoint()
    app = web.Application()
    app.router.add_post("/token", endpoint.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    endpoint.url, endpoint.runner = f"http://127.0.0.1:{port}/token", runner
    yield endpoint
    await runner.cleanup()


@pytest.fixture
def secrets() -> set[str]:
    """Every token a test writes or the fake endpoint issues; none may appear in a log record."""
    return set()


@pytest.fixture(autouse=True)
def no_token_in_logs(caplog: pytest.LogCaptureFixture, secrets: set[str],
                     request: pytest.FixtureRequest) -> Any:
    caplog.set_level(logging.DEBUG, logger="poolgate")
    yield
    endpoint = request.node.funcargs.get("token_endpoint")
    issued = set(endpoint.issued) if endpoint is not None else set()
    formatter = logging.Formatter("%(message)s")
    text = "\n".join(formatter.format(record) for record in caplog.records)
    leaked = [secret for secret in secrets | issued if secret in text]
    assert not leaked, f"tokens in the logs: {leaked}"


@dataclass
class CredentialDir:
    path: Path
    secrets: set[str]

    def write(self, name: str, access: str, refresh: str | None, expires_in: float | None, **extra: Any) -> Path:
        """Write ``name`` as a credential file expiring ``expires_in`` seconds from now (ISO 8601)."""
        data: dict[str, Any] = {"type": "kiro", "access_token": access}
        if refresh is not None:
            data["refresh_token"] = refresh
            self.secrets.add(refresh)
        if expires_in is not None:
            moment = datetime.fromtimestamp(time.time() + expires_in, UTC)
            data["expires_at"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        data.update(extra)
        self.secrets.add(access)
        path = self.path / name
        temp = self.path / f".{name}.test"
        temp.write_text(json.dumps(data, indent=2))
        temp.chmod(0o644)
        temp.replace(path)  # as a well-behaved tool writes it
        return path

    def read(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / name).read_text())
        return data


@pytest.fixture
def creds(tmp_path: Path, secrets: set[str]) -> CredentialDir:
    directory = tmp_path / "cli-proxy-api"
    directory.mkdir()
    return CredentialDir(directory, secrets)


def file_pool(directory: Path, token_url: str = "", glob: str = "kiro-*.json", extra: str = "",
              oauth: str = "") -> Config:
    """A one-pool config ``p`` whose accounts come from ``directory``."""
    oauth_lines = f"token_url: {token_url}\n{textwrap.dedent(oauth)}" if token_url else textwrap.dedent(oauth)
    text = f"""
pools:
  p:
    credentials_dir: {directory}
    credentials_glob: "{glob}"
{textwrap.indent(textwrap.dedent(extra).strip(), "    ")}
    oauth:
{textwrap.indent(oauth_lines.strip() or "{}", "      ")}
"""
    return parse_config(text)


@dataclass
class Running:
    core: SelectorCore
    manager: CredentialManager
    files: FileCredentialSource
    repository: StateRepository

    def account(self, name: str, pool: str = "p") -> Any:
        return self.core.pools[pool].accounts[f"{pool}/{name}"]

    async def lease(self, pool: str = "p", wait: float = 0) -> Grant:
        """Lease an account, waiting up to ``wait`` seconds for one."""
        return await self.core.select(SelectionRequest(pool=pool), (), timeout=wait)

    async def settle(self) -> None:
        """Wait for running refreshes, then for the change they caused to be applied."""
        await self.manager.refresher.settle()
        await asyncio.sleep(0)

    async def poll(self) -> None:
        """Look at the directories now and apply what changed (instead of waiting for the watcher)."""
        if await self.files.poll():
            await self.manager.apply_changes()


Start = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start(tmp_path: Path, registry: StrategyRegistry) -> AsyncIterator[Start]:
    """Start a core with the built-in credential sources (the file source polling every 50 ms)."""
    running: list[Running] = []

    async def factory(config: Config, poll: float = 0.05, retry_base: float = 0.2,
                      environ: dict[str, str] | None = None) -> Running:
        files = FileCredentialSource(AiohttpTokenPoster(), poll_interval=poll)
        sources = {"static": StaticKeySource(), "env": EnvKeySource(environ or {}), "files": files}
        manager = CredentialManager(sources, interval=poll, retry_base=retry_base, retry_max=1.0)
        try:
            manager.expand(config)
        except BaseException:
            await files.stop()
            raise
        repository = StateRepository.open(str(tmp_path / "state.db"))
        core = SelectorCore(config, registry, repository, expand=manager.expand)
        await core.start()
        await manager.start(core)
        handle = Running(core, manager, files, repository)
        running.append(handle)
        return handle

    yield factory
    for handle in running:
        await handle.manager.stop()
        await handle.core.stop()
        await handle.repository.close()

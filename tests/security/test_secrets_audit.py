"""No credential leaks: a representative run with distinctive keys and tokens, then every place an operator or a
client can look is searched for them: log lines of both processes, error bodies, metrics, stats, usage, the
dashboard, the command-line listing, and every row (and byte) of the database. Private files are mode 0600."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import sys
from pathlib import Path

import aiohttp
import anthropic
import grpc
import openai
import pytest

from fake_upstream import FakeUpstream
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from proxy_edge.app import start_edge
from proxy_edge.handlers import SELECTOR
from selector_service.app import start_selector
from selector_service.overlay import ConfigSource
from tests.support import free_port

# The distinctive middle of every secret ("AUDIT" plus random-looking text): any of these found anywhere is a leak.
# The fake upstream scripts accounts by the words in their keys (ratelimited, unauthorized, good).
KEYS = {
    "limited": "sk-ratelimited-AUDITk3y0limited7q",
    "revoked": "sk-unauthorized-AUDITk3y1revoked8w",
    "good": "sk-good-AUDITk3y2good9e",
    "claude": "sk-ant-good-AUDITk3y3claude0r",
    "alone": "sk-unauthorized-AUDITk3y4alone1t",
    "added": "sk-good-AUDITk3y5added2y",
}
CLIENT_KEY = "edge-client-AUDITk3y6client3u"
LEASE_TOKEN = "lease-token-AUDITt0k7lease4i"
ADMIN_TOKEN = "admin-token-AUDITt0k8admin5o"
SECRETS = [*KEYS.values(), CLIENT_KEY, LEASE_TOKEN, ADMIN_TOKEN]
CORES = [secret[secret.index("AUDIT"):] for secret in SECRETS]


def leaks(text: str | bytes) -> list[str]:
    """The secrets (their distinctive part) found in ``text``."""
    data = text.encode() if isinstance(text, str) else text
    return [core for core in CORES if core.encode() in data]


def config_text(fake_url: str, selector_port: int) -> str:
    return f"""
selector:
  listen: 127.0.0.1:{selector_port}
  auth: {{tokens: [{LEASE_TOKEN}], admin_tokens: [{ADMIN_TOKEN}]}}
edge:
  api_keys: [{CLIENT_KEY}]
  timeouts: {{connect: 2s, first_byte: 2s, total: 10s, selector: 2s}}
pools:
  openai:
    base_url: {fake_url}/v1
    strategy: fill_first
    accounts:
      - {{name: limited, key: {KEYS["limited"]}}}
      - {{name: revoked, key: {KEYS["revoked"]}}}
      - {{name: good, key: {KEYS["good"]}}}
  claude:
    format: anthropic
    base_url: {fake_url}
    api_key: {KEYS["claude"]}
  lonely:
    base_url: {fake_url}/v1
    accounts:
      - {{name: alone, key: {KEYS["alone"]}}}
models:
  gpt-*: openai
  text-embedding-*: openai
  claude-*: claude
  lonely-*: lonely
"""


def database_files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in folder.glob("poolgate.db*")}


async def poolgate_cli(*args: str, stdin: str | None = None) -> str:
    """``poolgate ARGS`` as its own process (the selector in this event loop keeps answering meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "poolgate_cli", *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(stdin.encode() if stdin else None), 30)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_no_secret_appears_anywhere(
    tmp_path: Path, fake_upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger of both processes, debug included
    port = free_port()
    config_file = tmp_path / "poolgate.yaml"
    config_file.write_text(config_text(fake_upstream.url, port))
    source = ConfigSource(config_file)
    config = source.load()
    selector = await start_selector(config, source=source, metrics_listen="127.0.0.1:0")
    edge = await start_edge(source.load(), "127.0.0.1:0")
    seen: list[tuple[str, str | bytes]] = []  # (where, what) for every answer a client or operator got
    http = aiohttp.ClientSession()
    clients = [openai.AsyncOpenAI(base_url=f"{edge.url}/v1", api_key=CLIENT_KEY, max_retries=0),
               anthropic.AsyncAnthropic(base_url=edge.url, api_key=CLIENT_KEY, max_retries=0)]
    try:
        gpt, claude = clients
        chat = await gpt.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert chat.headers["x-poolgate-account"] == "openai/good"  # after a 429 and a 401: failover worked
        seen.append(("chat", chat.http_response.text))
        stream = await gpt.chat.completions.create(model="gpt-4o-mini", stream=True,
                                                   messages=[{"role": "user", "content": "hi"}])
        seen.append(("stream", repr([chunk async for chunk in stream])))
        seen.append(("embeddings", repr(await gpt.embeddings.create(model="text-embedding-3-small", input="x"))))
        seen.append(("messages", repr(await claude.messages.create(
            model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "hi"}]))))
        with pytest.raises(openai.APIStatusError) as revoked_only:  # the only account's key is rejected
            await gpt.chat.completions.create(model="lonely-1", messages=[{"role": "user", "content": "hi"}])
        assert revoked_only.value.status_code == 503
        seen.append(("503 body", revoked_only.value.response.text))
        for path, body, headers in [
            ("/v1/chat/completions", b'{"model": "nope", "messages": []}', {"Authorization": f"Bearer {CLIENT_KEY}"}),
            ("/v1/chat/completions", b"not json", {"Authorization": f"Bearer {CLIENT_KEY}"}),
            ("/v1/chat/completions", b"{}", {"Authorization": f"Bearer {CLIENT_KEY[:-1]}"}),  # a near miss
            ("/v1/messages", b"{}", {"x-api-key": "wrong"}),
        ]:
            async with http.post(f"{edge.url}{path}", data=body, headers=headers) as response:
                assert response.status >= 400
                seen.append((f"error {path}", await response.read()))

        await edge.runner.app[SELECTOR].flush_reports()
        auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
        for path in ("/v1/accounts/stats", "/v1/accounts/usage", "/v1/accounts/usage?bucket=minute", "/metrics",
                     "/dashboard", "/dashboard/api/snapshot", "/healthz", "/readyz", "/v1/models"):
            async with http.get(f"{edge.url}{path}", headers=auth) as response:
                assert response.status == 200, (path, response.status)
                seen.append((path, await response.read()))
        async with http.get(f"http://127.0.0.1:{selector.metrics_port}/metrics") as response:
            assert response.status == 200
            selector_metrics = await response.text()
        assert 'account="revoked"' in selector_metrics  # per-account metrics are there, by name
        seen.append(("selector /metrics", selector_metrics))

        listing = await poolgate_cli("accounts", "list", "--config", str(config_file))
        assert "revoked" in listing and "…ed8w" in listing  # the redacted form only
        seen.append(("accounts list", listing))
        seen.append(("accounts add", await poolgate_cli("accounts", "add", "--config", str(config_file), "openai",
                                                        "added", "--key-stdin", stdin=KEYS["added"] + "\n")))
        seen.append(("accounts list after add",
                     await poolgate_cli("accounts", "list", "--config", str(config_file))))
        async with grpc.aio.insecure_channel(selector.address) as channel:
            stub = selector_pb2_grpc.SelectorStub(channel)
            token = (("authorization", f"Bearer {LEASE_TOKEN}"),)
            seen.append(("GetUsage", str(await stub.GetUsage(pb.GetUsageRequest(), timeout=5, metadata=token))))
            seen.append(("ListAccounts", str(await stub.ListAccounts(pb.ListAccountsRequest(), timeout=5,
                                                                     metadata=token))))
            with pytest.raises(grpc.aio.AioRpcError) as refused:  # a wrong token: the error names none
                await stub.ListAccounts(pb.ListAccountsRequest(), timeout=5,
                                        metadata=(("authorization", f"Bearer {ADMIN_TOKEN}x"),))
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            seen.append(("refused call", f"{refused.value.code()} {refused.value.details()}"))
    finally:
        for client in clients:
            await client.close()
        await http.close()
        await edge.stop()
        await selector.stop(grace=0)

    assert all(text for _where, text in seen)
    found = {where: leaks(text) for where, text in seen if leaks(text)}
    assert not found, f"secrets in answers: {found}"
    log_lines = [f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records]
    assert any("openai/revoked" in line for line in log_lines)  # the failover and the disable were logged
    assert not [line for line in log_lines if leaks(line)], "secrets in log lines"
    assert not leaks(caplog.text)

    database = tmp_path / "poolgate.db"  # the default: next to the config
    with sqlite3.connect(database) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert {"account_state", "usage_events"} <= set(tables)
        rows = {table: db.execute(f'SELECT * FROM "{table}"').fetchall() for table in tables}
    db.close()
    assert len(rows["account_state"]) == 6 and len(rows["usage_events"]) >= 6
    assert not leaks(repr(rows)), "secrets in database rows"
    for name, data in database_files(tmp_path).items():  # the file itself, and its WAL: not a byte of any secret
        assert not leaks(data), name

    overlay = tmp_path / "poolgate.overlay.yaml"
    assert overlay.exists()
    for path in (database, overlay):
        assert os.stat(path).st_mode & 0o777 == 0o600, path

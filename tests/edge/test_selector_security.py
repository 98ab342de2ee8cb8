"""The edge and ``poolgate accounts`` reach a selector that requires tokens and TLS, with what the config says."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import openai
import trustme

from fake_upstream import FakeUpstream
from poolgate.config import parse_config
from proxy_edge.app import start_edge
from selector_service.app import SelectorHandle, start_selector

LEASE_TOKEN = "lease-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-fedcba9876543210"
EDGE_KEY = "edge-key-for-security-test"


def write_tls(tmp_path: Path) -> tuple[str, str]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "server.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    server = f"tls: {{cert: {tmp_path / 'server.pem'}, key: {tmp_path / 'server.key'}}}"
    client = f"selector_tls: {{ca: {tmp_path / 'ca.pem'}}}"
    return server, client


def config_text(fake_url: str, port: int, server_tls: str, client_tls: str, admin: bool = True) -> str:
    admin_tokens = f", admin_tokens: [{ADMIN_TOKEN}]" if admin else ""
    return f"""
selector:
  listen: 127.0.0.1:{port}
  auth: {{tokens: [{LEASE_TOKEN}]{admin_tokens}}}
  {server_tls}
edge:
  api_keys: [{EDGE_KEY}]
  selector: 127.0.0.1:{port}
  {client_tls}
pools:
  openai:
    base_url: {fake_url}/v1
    accounts: [{{name: only, key: sk-test-only-000001}}]
models: {{"gpt-*": openai}}
"""


async def test_edge_uses_tls_and_token(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    server_tls, client_tls = write_tls(tmp_path)
    config = parse_config(config_text(fake_upstream.url, 0, server_tls, client_tls))
    selector = await start_selector(config, listen="127.0.0.1:0", database=str(tmp_path / "s.db"))
    config.edge.selector = f"127.0.0.1:{selector.port}"
    edge = await start_edge(config, "127.0.0.1:0")
    try:
        async with openai.AsyncOpenAI(base_url=f"{edge.url}/v1", api_key=EDGE_KEY, max_retries=0) as client:
            answer = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            assert answer.choices[0].message.content
    finally:
        await edge.stop()
        await selector.stop(grace=0.5)


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "poolgate_cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    return process.returncode or 0, out.decode(), err.decode()


async def test_accounts_cli_uses_the_admin_token_and_tls(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    server_tls, client_tls = write_tls(tmp_path)
    config = parse_config(config_text(fake_upstream.url, 0, server_tls, client_tls))
    selector = await start_selector(config, listen="127.0.0.1:0", database=str(tmp_path / "s.db"))
    try:
        with_admin = tmp_path / "admin.yaml"
        with_admin.write_text(config_text(fake_upstream.url, selector.port, server_tls, client_tls))
        code, out, err = await run_cli("accounts", "disable", "--config", str(with_admin), "openai", "only")
        assert code == 0, err
        assert "openai/only: disabled" in out
        lease_only = tmp_path / "lease-only.yaml"
        lease_only.write_text(config_text(fake_upstream.url, selector.port, server_tls, client_tls, admin=False))
        code, out, err = await run_cli("accounts", "enable", "--config", str(lease_only), "openai", "only")
        assert code == 1 and "may lease accounts but not administer them" in err
        code, out, err = await run_cli("accounts", "list", "--config", str(lease_only))
        assert code == 0 and "disabled" in out
        assert LEASE_TOKEN not in out + err and ADMIN_TOKEN not in out + err
    finally:
        await selector.stop(grace=0.5)


def leases(selector: SelectorHandle) -> int:
    return sum(a.requests_total for a in selector.core.pools["openai"].accounts.values())


async def test_edge_fails_over_to_the_live_selector_replica(
    tmp_path: Path, fake_upstream: FakeUpstream
) -> None:
    text = f"""
edge:
  api_keys: [{EDGE_KEY}]
  timeouts: {{selector: 2s}}
pools:
  openai:
    base_url: {fake_upstream.url}/v1
    accounts: [{{name: a, key: sk-test-aaaa-000001}}, {{name: b, key: sk-test-bbbb-000002}}]
models: {{"gpt-*": openai}}
"""
    first = await start_selector(parse_config(text), listen="127.0.0.1:0", database=str(tmp_path / "one.db"))
    second = await start_selector(parse_config(text), listen="127.0.0.1:0", database=str(tmp_path / "two.db"))
    config = parse_config(text)
    config.edge.selector = f"127.0.0.1:{first.port},127.0.0.1:{second.port}"
    edge = await start_edge(config, "127.0.0.1:0")
    try:
        async with openai.AsyncOpenAI(base_url=f"{edge.url}/v1", api_key=EDGE_KEY, max_retries=0) as client:
            for _ in range(4):
                await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
            before = leases(second)
            await first.stop(grace=0)
            for _ in range(6):  # no client-visible error: the edge moves to the live replica
                await client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert leases(second) - before == 6  # every request after the loss was leased by the live replica
    finally:
        await edge.stop()
        await second.stop(grace=0.5)

"""The edge as in production, in one event loop: the fake upstream, the real selector (gRPC) and the edge (HTTP),
each on 127.0.0.1 port 0, with the official SDKs as clients."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from fake_upstream import FakeUpstream
from poolgate.config import Config, parse_config
from proxy_edge.app import EdgeServer, start_edge
from proxy_edge.handlers import SELECTOR
from selector_service.app import SelectorHandle, start_selector
from tests.edge.browser import Chromium, Page
from tests.support import free_port

EDGE_KEY = "test-edge-key-0001"
AUTH = {"Authorization": f"Bearer {EDGE_KEY}"}
GOOD = "- {name: good, key: sk-good-000001}"
CHAT = [{"role": "user", "content": "Say hello"}]


def stack_config(fake_url: str, openai_accounts: str = GOOD, anthropic_accounts: str = GOOD,
                 edge: str = "", pool_settings: str = "", timeouts: str = "", selector_settings: str = "",
                 pools: str = "", models: str = "", extra: str = "") -> Config:
    """Two pools on the fake upstream; accounts as YAML list items (the fake scripts them by key).

    ``timeouts`` (YAML flow items) override the tests' short defaults; ``edge`` and ``selector_settings`` add
    settings to those sections. ``pools`` and ``models`` add entries (``{fake}`` in them is the fake's URL; models
    come before the defaults), ``extra`` top-level sections (such as ``routes:``).
    """
    pools, models = pools.replace("{fake}", fake_url), models.replace("{fake}", fake_url)
    text = f"""
edge:
  api_keys: [{EDGE_KEY}]
  timeouts: {{connect: 2s, first_byte: 2s, total: 10s, selector: 1s, {timeouts}}}
{textwrap.indent(textwrap.dedent(edge).strip(), "  ")}
selector:
  listen: 127.0.0.1:0
{textwrap.indent(textwrap.dedent(selector_settings).strip(), "  ")}
pools:
  openai:
    base_url: {fake_url}/v1
{textwrap.indent(textwrap.dedent(pool_settings).strip(), "    ")}
    accounts:
{textwrap.indent(textwrap.dedent(openai_accounts).strip(), "      ")}
  anthropic:
    format: anthropic
    base_url: {fake_url}
    accounts:
{textwrap.indent(textwrap.dedent(anthropic_accounts).strip(), "      ")}
{textwrap.indent(textwrap.dedent(pools).strip(), "  ")}
models:
{textwrap.indent(textwrap.dedent(models).strip(), "  ")}
  gpt-*: openai
  text-embedding-*: openai
  alias: openai/gpt-4o
  claude-*: anthropic
{textwrap.dedent(extra).strip()}
"""
    return parse_config(text)


@dataclass
class Stack:
    fake: FakeUpstream
    selector: SelectorHandle | None
    edge: EdgeServer
    config: Config
    http: aiohttp.ClientSession
    _clients: list[Any] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.edge.url

    def openai(self, api_key: str = EDGE_KEY, **options: Any) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=api_key, max_retries=0, **options)
        self._clients.append(client)
        return client

    def anthropic(self, api_key: str = EDGE_KEY, **options: Any) -> anthropic.AsyncAnthropic:
        client = anthropic.AsyncAnthropic(base_url=self.url, api_key=api_key, max_retries=0, **options)
        self._clients.append(client)
        return client

    async def accounts(self) -> dict[str, dict[str, Any]]:
        """account_id -> the account's entry of GET /v1/accounts/stats (after the edge's pending reports)."""
        await self.edge.runner.app[SELECTOR].flush_reports()
        async with self.http.get(f"{self.url}/v1/accounts/stats", headers=AUTH) as response:
            assert response.status == 200, await response.text()
            body = await response.json()
        return {a["account_id"]: a for pool in body["pools"] for a in pool["accounts"]}

    async def get_json(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """Status and JSON body of a GET (the client key unless ``headers`` say otherwise)."""
        async with self.http.get(f"{self.url}{path}", headers=AUTH if headers is None else headers) as response:
            return response.status, await response.json(content_type=None)

    async def post(self, path: str, body: bytes | dict[str, Any], headers: dict[str, str] | None = None,
                   ) -> tuple[int, dict[str, Any], dict[str, str]]:
        kwargs: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
        headers = AUTH if headers is None else headers
        async with self.http.post(f"{self.url}{path}", headers=headers, **kwargs) as response:
            return response.status, await response.json(content_type=None), dict(response.headers)


    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        await self.http.close()
        await self.edge.stop()
        if self.selector is not None:
            await self.selector.stop(grace=0)


StackFactory = Callable[..., Awaitable[Stack]]


async def open_stack(fake: FakeUpstream, tmp_path: Path, transport: str = "stream", selector: bool = True,
                     selector_address: str | None = None, **settings: Any) -> Stack:
    """Selector (unless ``selector=False``) and edge in this process, for a config built by :func:`stack_config`."""
    config = stack_config(fake.url, **settings)
    config.edge.selector_transport = transport  # type: ignore[assignment]
    handle = None
    if selector:
        handle = await start_selector(config, listen="127.0.0.1:0", database=str(tmp_path / "state.db"))
        config.edge.selector = handle.address
    else:
        config.edge.selector = selector_address or f"127.0.0.1:{free_port()}"
    edge = await start_edge(config, "127.0.0.1:0")
    return Stack(fake, handle, edge, config, aiohttp.ClientSession())


@pytest.fixture(params=["stream", "unary"])
async def make_stack(
    request: pytest.FixtureRequest, tmp_path: Path, fake_upstream: FakeUpstream
) -> AsyncIterator[StackFactory]:
    """Start selector and edge for a config built by :func:`stack_config` (``selector=False``: no selector).

    Every test runs over both ways the edge can talk to the selector: the Exchange stream and unary calls.
    """
    stacks: list[Stack] = []

    async def factory(**settings: Any) -> Stack:
        stacks.append(await open_stack(fake_upstream, tmp_path, request.param, **settings))
        return stacks[-1]

    yield factory
    for stack in stacks:
        await stack.close()


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    """A tab of a headless Chromium (tests/edge/browser.py), closed with the browser after the test."""
    browser = await Chromium.start(tmp_path)
    try:
        yield await browser.new_page()
    finally:
        await browser.close()


@pytest.fixture
async def stack(make_stack: StackFactory) -> Stack:
    """Both pools with one healthy account each."""
    return await make_stack()

"""A real fake upstream, selector and edge, each its own process on 127.0.0.1, once per transport for the module.

Each scenario has a pool of its own (routed by model name), so the scenarios share the processes but no accounts.
The fake upstream counts calls per key and when they arrived; tests read that over ``GET /_fake/stats``.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.edge.conftest import EDGE_KEY
from tests.faults.conftest import running_gateway
from tests.support import free_port

POOLS = """
storm:
  accounts:
    - {name: limited, key: sk-ratelimited-storm-0001}
    - {name: rejected, key: sk-unauthorized-storm-0002}
    - {name: fine, key: sk-fine-storm-0003}
window:
  accounts:
    - {name: limited, key: sk-ratelimited3-window-0001}
    - {name: fine, key: sk-fine-limit10000000-window-0002}  # more than 9 s of load can use: never at zero
burst:
  cooldown: {base: 1s}
  accounts:
    - {name: only, key: sk-fine-burst-0001}
cold:
  accounts:
    - {name: a, key: sk-slow200drip400-cold-0001}
    - {name: b, key: sk-slow200drip400-cold-0002}
    - {name: c, key: sk-slow200drip400-cold-0003}
permodel:
  strategy: fill_first
  accounts:
    - {name: first, key: sk-fine-permodel-0001}
    - {name: second, key: sk-fine-permodel-0002}
scopeload:
  strategy: fill_first
  accounts:
    - {name: first, key: sk-fine-scopeload-0001}
    - {name: second, key: sk-fine-scopeload-0002}
quota:
  strategy: fill_first
  quota_rest: 10s
  accounts:
    - {name: broke, key: sk-nocredit-quota-0001}
    - {name: fine, key: sk-fine-quota-0002}
overload:
  strategy: fill_first
  circuit: {failures: 3, cooldown: 60s}
  accounts:
    - {name: busy, key: sk-overloaded-over-0001}
    - {name: fine, key: sk-fine-over-0002}
request:
  strategy: fill_first
  accounts:
    - {name: strict, key: sk-contextlimit-req-0001}
    - {name: other, key: sk-fine-req-0002}
rules:
  strategy: fill_first
  classify:
    - {match: {status: 500, message: "internal error"}, class: quota_exhausted, rest: 1h}
  accounts:
    - {name: odd, key: sk-broken-rules-0001}
    - {name: fine, key: sk-fine-rules-0002}
shortrest:
  strategy: fill_first
  accounts:
    - {name: tight, key: sk-slow150-limit3-persecond-shortrest-0001}
    - {name: fine, key: sk-fine-limit10000000-shortrest-0002}
"""
"""One pool per scenario; model ``<pool>-x`` is served by pool ``<pool>``."""


@dataclass
class Processes:
    edge: str
    fake: str
    transport: str
    config: Path

    async def fake_stats(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        async with session.get(f"{self.fake}/_fake/stats") as response:
            assert response.status == 200
            stats: dict[str, Any] = await response.json()
            return stats

    async def script(self, session: aiohttp.ClientSession, key: str, words: str | None, model: str | None = None,
                     ) -> None:
        """Script ``key``'s answers (for requests for ``model`` only, when given); ``None`` undoes it."""
        body = {"key": key, "words": words, **({"model": model} if model else {})}
        async with session.post(f"{self.fake}/_fake/script", json=body) as response:
            assert response.status == 200, await response.text()

    async def accounts(self, session: aiohttp.ClientSession, pool: str) -> dict[str, dict[str, Any]]:
        """account name -> its entry of the edge's /v1/accounts/stats."""
        async with session.get(f"{self.edge}/v1/accounts/stats", params={"pool": pool},
                               headers={"Authorization": f"Bearer {EDGE_KEY}"}) as response:
            assert response.status == 200, await response.text()
            body = await response.json()
        return {a["name"]: a for p in body["pools"] if p["name"] == pool for a in p["accounts"]}


def _config(directory: Path, fake_port: int, selector_port: int, edge_port: int, transport: str) -> Path:
    pools = "\n".join(
        f"{line}\n  base_url: http://127.0.0.1:{fake_port}/v1" if line and not line.startswith(" ") else line
        for line in textwrap.dedent(POOLS).strip().splitlines()
    )
    text = f"""
edge:
  listen: 127.0.0.1:{edge_port}
  api_keys: [{EDGE_KEY}]
  selector: 127.0.0.1:{selector_port}
  selector_transport: {transport}
  timeouts: {{connect: 2s, first_byte: 10s, total: 30s, selector: 5s}}
selector:
  listen: 127.0.0.1:{selector_port}
  database: {directory / "state.db"}
pools:
{textwrap.indent(pools, "  ")}
models:
  "storm-*": storm
  "window-*": window
  "burst-*": burst
  "cold-*": cold
  "permodel-*": permodel
  "scopeload-*": scopeload
  "quota-*": quota
  "overload-*": overload
  "request-*": request
  "rules-*": rules
  "shortrest-*": shortrest
"""
    path = directory / "poolgate.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module", params=["stream", "unary"])
def processes(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    directory = tmp_path_factory.mktemp(f"storms-{request.param}")
    fake_port, selector_port, edge_port = free_port(), free_port(), free_port()
    config = _config(directory, fake_port, selector_port, edge_port, request.param)
    with running_gateway(directory, config, fake_port, edge_port):
        yield Processes(f"http://127.0.0.1:{edge_port}", f"http://127.0.0.1:{fake_port}", request.param, config)

"""Several edges in front of one selector: the selector alone decides, so round robin stays one cycle over the
accounts whichever edge a request comes through."""

from __future__ import annotations

import asyncio
from collections import Counter

from proxy_edge.app import start_edge
from proxy_edge.handlers import SELECTOR
from tests.edge.conftest import AUTH, CHAT, Stack, StackFactory

THREE = "- {name: a, key: sk-good-a00001}\n- {name: b, key: sk-good-b00002}\n- {name: c, key: sk-good-c00003}"


async def served_by(stack: Stack, edge_url: str) -> str:
    async with stack.http.post(f"{edge_url}/v1/chat/completions", headers=AUTH,
                               json={"model": "gpt-4o-mini", "messages": CHAT}) as response:
        assert response.status == 200, await response.text()
        return response.headers["x-poolgate-account"]


async def test_two_edges_share_one_round_robin(make_stack: StackFactory) -> None:
    stack = await make_stack(openai_accounts=THREE)
    second = await start_edge(stack.config, "127.0.0.1:0")  # the same config: the same selector
    try:
        edges = [stack.url, second.url]
        served = [await served_by(stack, edges[i % 2]) for i in range(9)]  # alternating edges, one at a time
        assert len(set(served[:3])) == 3
        assert served == served[:3] * 3  # one cycle, as if a single edge had sent them all

        together = await asyncio.gather(*(served_by(stack, edges[i % 2]) for i in range(30)))
        assert Counter(together) == {"openai/a": 10, "openai/b": 10, "openai/c": 10}
        await second.runner.app[SELECTOR].flush_reports()
        accounts = await stack.accounts()
        assert [accounts[f"openai/{n}"]["successes_total"] for n in "abc"] == [13, 13, 13]
        assert all(a["in_flight"] == 0 for a in accounts.values())
    finally:
        await second.stop()

"""File accounts end to end: the OpenAI SDK -> the edge -> the selector (gRPC) -> the fake upstream, round-robin
across three credential files (a fourth, malformed, is skipped)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import openai

from fake_upstream import FakeUpstream
from poolgate.config import parse_config
from proxy_edge.app import start_edge
from proxy_edge.handlers import SELECTOR
from selector_service.app import start_selector
from tests.credentials.conftest import HOUR, CredentialDir

EDGE_KEY = "test-edge-key-0001"


async def test_round_robin_across_three_file_accounts_through_the_edge(
    tmp_path: Path, creds: CredentialDir, fake_upstream: FakeUpstream
) -> None:
    tokens = {name: f"at-{name}-{i:04d}" for i, name in enumerate(("personal", "work", "team"), start=1)}
    for name, token in tokens.items():
        creds.write(f"kiro-{name}.json", token, f"rt-{name}-0000", HOUR, profile_arn=f"arn:aws:x:{name}")
    (creds.path / "kiro-garbled.json").write_text("{not json")
    selector = edge = client = None
    try:
        config = parse_config(f"""
edge:
  api_keys: [{EDGE_KEY}]
  timeouts: {{connect: 2s, first_byte: 2s, total: 10s, selector: 1s}}
pools:
  kiro:
    base_url: {fake_upstream.url}/v1
    strategy: round_robin
    credentials_dir: {creds.path}
    credentials_glob: "kiro-*.json"
models:
  gpt-*: kiro
""")
        selector = await start_selector(config, listen="127.0.0.1:0", database=str(tmp_path / "state.db"))
        config.edge.selector = f"127.0.0.1:{selector.port}"
        edge = await start_edge(config, "127.0.0.1:0")
        client = openai.AsyncOpenAI(base_url=f"{edge.url}/v1", api_key=EDGE_KEY, max_retries=0)
        for _ in range(6):
            completion = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Say hello"}])
            assert completion.choices[0].message.content
        assert Counter(fake_upstream.stats.requests) == Counter({token: 2 for token in tokens.values()})
        await edge.runner.app[SELECTOR].flush_reports()  # the edge reports outcomes in the background
        accounts = selector.core.pools["kiro"].accounts.values()
        assert sorted(a.name for a in accounts) == ["kiro-personal", "kiro-team", "kiro-work"]
        assert all(a.successes_total == 2 for a in accounts)
    finally:
        if client is not None:
            await client.close()
        if edge is not None:
            await edge.stop()
        if selector is not None:
            await selector.stop(grace=0)

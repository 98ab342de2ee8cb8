"""Client keys as objects (``edge.clients``): authentication by key, key_env and key_sha256; allowed models and
pools (403, no upstream call); the selector's rpm limit and budgets (429 naming the limit, no upstream call); usage
by client; a SIGHUP switching a limit; no key anywhere. Selector and edge run in-process on both transports."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from fake_upstream import FakeUpstream
from poolgate.config import EdgeSection
from poolgate.config.loader import EdgeSettings
from proxy_edge.app import reload_settings
from proxy_edge.handlers import SELECTOR
from selector_service.app import start_selector
from tests.edge.conftest import EDGE_KEY, Stack, StackFactory

ALICE = "sk-client-alice-0123456789"
BOB = "sk-client-bob-abcdefghijk"
CAROL = "sk-client-carol-zyxwvutsrq"
KEYS = (ALICE, BOB, CAROL, EDGE_KEY)
CHAT_BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello"}]}
PRICES = """
prices:
  gpt-4o*: {input: 100000, output: 100000}
"""
"""A price at which one request of the fake upstream costs several dollars."""


def clients(alice: str = "", bob: str = "") -> str:
    return f"""
clients:
  - {{name: alice, key: {ALICE}{alice}}}
  - {{name: bob@team, key_env: POOLGATE_TEST_BOB_KEY{bob}}}
  - {{name: carol, key_sha256: {hashlib.sha256(CAROL.encode()).hexdigest()}, models: ["claude-*"]}}
"""


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def upstream_calls(fake: FakeUpstream) -> int:
    return sum(fake.stats.requests.values())


@pytest.fixture(autouse=True)
def bob_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POOLGATE_TEST_BOB_KEY", BOB)


async def test_each_kind_of_key_authenticates_its_client(make_stack: StackFactory) -> None:
    stack = await make_stack(edge=clients())
    for key in (ALICE, BOB, EDGE_KEY):
        status, body, _ = await stack.post("/v1/chat/completions", CHAT_BODY, bearer(key))
        assert status == 200, body
    status, body, _ = await stack.post("/v1/messages", {"model": "claude-sonnet-4", "max_tokens": 10,
                                                        "messages": CHAT_BODY["messages"]}, {"x-api-key": CAROL})
    assert status == 200, body
    for wrong in (CAROL[:-1], hashlib.sha256(CAROL.encode()).hexdigest(), "sk-nobody-0000000000"):
        status, body, _ = await stack.post("/v1/chat/completions", CHAT_BODY, bearer(wrong))
        assert status == 401, body


async def test_a_client_outside_its_models_or_pools_gets_403_and_no_upstream_call(make_stack: StackFactory) -> None:
    stack = await make_stack(edge=clients(bob=", pools: [anthropic]"))
    before = upstream_calls(stack.fake)
    status, body, headers = await stack.post("/v1/chat/completions", CHAT_BODY, bearer(CAROL))
    assert status == 403
    assert "'carol' may not use model 'gpt-4o'" in body["error"]["message"]
    assert "claude-*" in body["error"]["message"] and body["error"]["code"] == "client_not_permitted"
    assert headers["x-should-retry"] == "false"
    status, body, _ = await stack.post("/v1/chat/completions", CHAT_BODY, bearer(BOB))
    assert status == 403 and "'bob@team' may not use pool 'openai'" in body["error"]["message"]
    assert "anthropic" in body["error"]["message"]
    status, body, _ = await stack.post("/v1/messages", {"model": "gpt-4o", "max_tokens": 10,
                                                        "messages": CHAT_BODY["messages"]}, {"x-api-key": CAROL})
    assert status == 403 and body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert upstream_calls(stack.fake) == before


async def test_rpm_limit_answers_429_with_retry_after_and_calls_no_upstream(make_stack: StackFactory) -> None:
    stack = await make_stack(edge=clients(alice=", rpm_limit: 2"))
    before = upstream_calls(stack.fake)
    for _ in range(2):
        status, body, _ = await stack.post("/v1/chat/completions", CHAT_BODY, bearer(ALICE))
        assert status == 200, body
    status, body, headers = await stack.post("/v1/chat/completions", CHAT_BODY, bearer(ALICE))
    assert status == 429, body
    assert body["error"]["code"] == "client_rate_limited"
    assert "'alice' has used its limit of 2 requests per minute" in body["error"]["message"]
    assert 1 <= int(headers["Retry-After"]) <= 60
    assert "x-should-retry" not in headers
    assert upstream_calls(stack.fake) == before + 2
    status, _, _ = await stack.post("/v1/chat/completions", CHAT_BODY, bearer(BOB))  # another client is not held
    assert status == 200


async def test_rpm_limit_holds_for_concurrent_requests(make_stack: StackFactory) -> None:
    """Twenty requests at once for a client allowed five a minute: five are served, fifteen refused, even though
    most of them wait in the pool's queue behind the others (the limit counts at admission, not at the grant)."""
    stack = await make_stack(edge=clients(alice=", rpm_limit: 5"))
    before = upstream_calls(stack.fake)
    answers = await asyncio.gather(*(stack.post("/v1/chat/completions", CHAT_BODY, bearer(ALICE))
                                     for _ in range(20)))
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200] * 5 + [429] * 15, [body for _, body, _ in answers]
    assert upstream_calls(stack.fake) == before + 5


async def test_a_spent_budget_answers_429_until_it_resets_and_survives_a_restart(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    stack = await make_stack(edge=clients(alice=", budget: {daily: 1, monthly: 100}"), extra=PRICES)
    status, body, _ = await stack.post("/v1/chat/completions", CHAT_BODY, bearer(ALICE))
    assert status == 200, body
    calls = upstream_calls(stack.fake)
    await stack.edge.runner.app[SELECTOR].flush_reports()
    await assert_daily_budget_spent(stack)
    assert upstream_calls(stack.fake) == calls
    status, _, _ = await stack.post("/v1/chat/completions", CHAT_BODY, bearer(BOB))  # bob has no budget
    assert status == 200

    assert stack.selector is not None
    port = stack.selector.port
    await stack.selector.stop(grace=0)
    stack.selector = await start_selector(stack.config, listen=f"127.0.0.1:{port}",
                                          database=str(tmp_path / "state.db"))
    await assert_daily_budget_spent(stack)


async def assert_daily_budget_spent(stack: Stack) -> None:
    deadline = time.monotonic() + 10
    while True:  # after a restart, until the edge has reconnected
        status, body, headers = await stack.post("/v1/chat/completions", CHAT_BODY, bearer(ALICE))
        if status != 503 or time.monotonic() > deadline:
            break
    assert status == 429, body
    message = body["error"]["message"]
    assert body["error"]["code"] == "client_budget"
    assert "'alice' has spent its daily budget of $1.00" in message and "it resets at " in message
    wait = int(headers["Retry-After"])
    assert 0 < wait <= 86400
    assert headers.get("x-should-retry") == ("false" if wait > 3600 else None)


async def test_usage_rows_are_attributed_to_clients(make_stack: StackFactory) -> None:
    stack = await make_stack(edge=clients())
    for key in (ALICE, ALICE, BOB):
        status, _, _ = await stack.post("/v1/chat/completions", CHAT_BODY, bearer(key))
        assert status == 200
    await stack.edge.runner.app[SELECTOR].flush_reports()
    status, body = await stack.get_json("/v1/accounts/usage?client=alice")
    assert status == 200, body
    assert sum(row["requests"] for row in body["rows"]) == 2
    assert {row["client"] for row in body["rows"]} == {"alice"}
    status, body = await stack.get_json("/v1/accounts/usage?by=client")
    by_client = {row["client"]: row["requests"] for row in body["rows"]}
    assert by_client == {"alice": 2, "bob@team": 1}
    assert all(row["account_id"] == "" for row in body["rows"])
    status, body = await stack.get_json("/v1/accounts/usage?by=team")
    assert status == 400 and body["error"]["param"] == "by"


async def test_sighup_switches_a_clients_limit_at_once(make_stack: StackFactory) -> None:
    stack = await make_stack(edge=clients(alice=", rpm_limit: 1"))
    assert (await stack.post("/v1/chat/completions", CHAT_BODY, bearer(ALICE)))[0] == 200
    assert (await stack.post("/v1/chat/completions", CHAT_BODY, bearer(ALICE)))[0] == 429
    raised = stack.config.edge.model_copy(deep=True)
    raised.clients[0].rpm_limit = 5
    assert reload_settings(stack.edge.runner.app, lambda: EdgeSettings(raised, stack.config.selector))
    assert (await stack.post("/v1/chat/completions", CHAT_BODY, bearer(ALICE)))[0] == 200
    removed = EdgeSection.model_validate({"api_keys": [EDGE_KEY]})
    assert reload_settings(stack.edge.runner.app, lambda: EdgeSettings(removed, stack.config.selector))
    assert (await stack.post("/v1/chat/completions", CHAT_BODY, bearer(ALICE)))[0] == 401


async def test_no_key_appears_in_logs_metrics_or_answers(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stack = await make_stack(edge=clients(alice=", rpm_limit: 1, budget: {daily: 1}"), extra=PRICES)
    seen: list[Any] = []
    for key in (ALICE, ALICE, BOB, CAROL, EDGE_KEY, "sk-nobody-0000000000"):
        seen.append(await stack.post("/v1/chat/completions", CHAT_BODY, bearer(key)))
    await stack.edge.runner.app[SELECTOR].flush_reports()
    for path in ("/v1/accounts/usage?by=client", "/v1/accounts/stats", "/metrics"):
        async with stack.http.get(f"{stack.url}{path}", headers=bearer(EDGE_KEY)) as response:
            seen.append(await response.text())
    async with stack.http.get(f"{stack.url}/metrics") as response:
        metrics = await response.text()
    assert 'client="alice"' in metrics and 'client="other"' in metrics
    text = repr(seen) + metrics + caplog.text
    for key in KEYS:
        assert key not in text and key[-8:] not in text

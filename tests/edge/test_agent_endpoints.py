"""The endpoints coding agents call besides generation: count_tokens, the model list and one model, in both APIs'
shapes; and their conversations kept on one account."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from proxy_edge.token_estimate import ESTIMATE_HEADER, ESTIMATOR
from tests.edge.conftest import CHAT, EDGE_KEY, Stack

THREE = """
- {name: a, key: sk-conv-aaaa0001}
- {name: b, key: sk-conv-bbbb0002}
- {name: c, key: sk-conv-cccc0003}
"""


async def test_count_tokens_is_forwarded_to_the_anthropic_pool(stack: Stack) -> None:
    client = stack.anthropic()
    counted = await client.messages.count_tokens(model="claude-sonnet-4-6", messages=CHAT,  # type: ignore[arg-type]
                                                 system="Be brief.")
    assert counted.input_tokens > 0
    paths = stack.fake.stats.paths["sk-good-000001"]
    assert paths == {"/v1/messages/count_tokens": 1}
    raw = await client.messages.with_raw_response.count_tokens(model="claude-sonnet-4-6",
                                                                messages=CHAT)  # type: ignore[arg-type]
    assert ESTIMATE_HEADER not in raw.headers and raw.headers["x-poolgate-account"] == "anthropic/good"


async def test_count_tokens_for_a_model_of_an_openai_pool_is_estimated_and_says_so(stack: Stack) -> None:
    raw = await stack.anthropic().messages.with_raw_response.count_tokens(
        model="gpt-4o", messages=[{"role": "user", "content": "x" * 700}], tools=[{
            "name": "Read", "description": "Reads a file.", "input_schema": {"type": "object", "properties": {}}}])
    assert raw.headers[ESTIMATE_HEADER] == ESTIMATOR
    tokens = (await raw.parse()).input_tokens
    assert 200 + 4 < tokens < 260  # 700 characters of text at 3.5 a token, a message, and the tool's JSON
    assert stack.fake.stats.requests == {}


async def test_count_tokens_on_a_pool_whose_upstream_cannot_count(make_stack: Any) -> None:
    stack = await make_stack(pools="""
        bare:
          format: anthropic
          base_url: {fake}
          apis: [messages]
          api_key: sk-bare-0001
        """, models="claude-bare: bare/claude-sonnet-4-6")
    raw = await stack.anthropic().messages.with_raw_response.count_tokens(model="claude-bare", messages=CHAT)
    assert raw.headers[ESTIMATE_HEADER] == ESTIMATOR and stack.fake.stats.requests == {}


async def test_models_in_anthropics_shape_for_anthropic_clients(stack: Stack) -> None:
    page = await stack.anthropic().models.list()
    ids = [model.id for model in page.data]
    assert {"alias", "gpt-4o", "claude-sonnet-4-6"} <= set(ids) and not any("*" in i for i in ids)
    assert all(model.type == "model" and model.display_name == model.id for model in page.data)
    assert page.has_more is False and page.first_id == ids[0] and page.last_id == ids[-1]


async def test_one_model_in_either_shape(stack: Stack) -> None:
    model = await stack.openai().models.retrieve("gpt-4o-mini")
    assert (model.id, model.owned_by, model.object) == ("gpt-4o-mini", "openai", "model")
    claude = await stack.anthropic().models.retrieve("claude-sonnet-4-6")
    assert (claude.id, claude.type) == ("claude-sonnet-4-6", "model")
    assert (await stack.openai().models.retrieve("anthropic/claude-haiku-4-5")).owned_by == "anthropic"
    with pytest.raises(openai.NotFoundError) as missing:
        await stack.openai().models.retrieve("llama-3")
    assert missing.value.body["code"] == "model_not_found"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as gone:
        await stack.anthropic().models.retrieve("llama-3")
    assert gone.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError):
        await stack.anthropic(api_key="wrong").models.list()


async def test_the_upstream_model_lists_are_asked_once_and_kept(stack: Stack) -> None:
    for _ in range(3):
        assert [m async for m in stack.openai().models.list()]
    accounts = await stack.accounts()  # each pool's one account was leased once, to list its upstream's models
    assert {name: int(a["requests_total"]) for name, a in accounts.items()} == {"openai/good": 1, "anthropic/good": 1}


@pytest.mark.parametrize("signal", [
    {"headers": {"X-Claude-Code-Session-Id": "conv-1"}},
    {"headers": {"session-id": "conv-1"}},
    {"body": {"prompt_cache_key": "conv-1"}},
])
async def test_an_agents_conversation_stays_on_one_account(make_stack: Any, signal: dict[str, Any]) -> None:
    stack = await make_stack(openai_accounts=THREE, pool_settings="strategy: round_robin")
    headers = {"Authorization": f"Bearer {EDGE_KEY}", **signal.get("headers", {})}
    served = []
    for _ in range(6):
        status, _body, answer = await stack.post("/v1/chat/completions", {
            "model": "gpt-4o-mini", "messages": CHAT, **signal.get("body", {})}, headers=headers)
        assert status == 200
        served.append(answer["x-poolgate-account"])
    assert served[2:] == [served[2]] * 4  # after the accounts' first probes, one account serves the conversation
    others = set()
    for _ in range(3):
        _status, _body, answer = await stack.post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT})
        others.add(answer["x-poolgate-account"])
    assert len(others) > 1  # requests without a conversation are spread


async def test_claude_codes_request_on_an_openai_pool_names_what_was_left_out(stack: Stack) -> None:
    recorded = json.loads((Path(__file__).parent.parent / "fixtures" / "agents" /
                           "claude_code_messages_gpt.json").read_text())
    body = {**recorded["body"], "model": "gpt-4o-mini", "stream": False}
    beta = recorded["headers"]["anthropic-beta"]
    status, answer, headers = await stack.post("/v1/messages?beta=true", body, headers={
        "x-api-key": EDGE_KEY, "anthropic-version": "2023-06-01", "anthropic-beta": beta})
    assert status == 200 and answer["type"] == "message", answer
    assert set(headers["x-poolgate-dropped"].split(", ")) == {
        "context_management", "thinking", "output_config.effort", "tools[].defer_loading"}
    assert stack.fake.stats.paths["sk-good-000001"] == {"/v1/chat/completions": 1}

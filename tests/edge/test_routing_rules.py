"""Routing rules, aliases and fallback chains through the real edge, selector and fake upstream."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import anthropic
import openai
import pytest

from proxy_edge.attempts import without_other_api_headers
from tests.edge.conftest import CHAT, Stack, StackFactory

REVIEWER = "You are a code reviewer. Review the diff you are given and list the problems."
PLANNER = "You plan work for other agents."
CHEAP_POOL = """
cheap:
  base_url: {fake}/v1
  accounts:
    - {name: good, key: sk-cheap-good-0001}
"""
MODELS = """
smart: anthropic/claude-opus-4-6
thrifty: fast
fast: cheap/gpt-4o-mini
combo: [anthropic/claude-opus-4-6, cheap/gpt-4o-mini]
both: [anthropic/claude-opus-4-6, anthropic/claude-haiku-4-5]
"""
BROKEN = "\n".join(f"- {{name: b{n}, key: sk-ant-broken-000{n}}}" for n in range(1, 6))
ROUTES = f"""
routes:
  - name: reviewer
    match: {{system_contains: "You are a code reviewer"}}
    to: fast
  - match: {{system_sha256: {hashlib.sha256(PLANNER.encode()).hexdigest()}}}
    to: anthropic/claude-haiku-4-5
  - match: {{header: {{X-Agent: "explore*"}}}}
    to: [cheap/gpt-4o-mini]
  - match: {{client_key: "sha256:aa060cb58a33", model: "gpt-4.1*"}}
    to: smart
"""
CLAUDE_CODE = [{"type": "text", "text": "You are Claude Code, a coding agent.", "cache_control": {"type": "ephemeral"}}]


async def routed_stack(make_stack: StackFactory, **settings: Any) -> Stack:
    return await make_stack(pools=CHEAP_POOL, models=MODELS, extra=ROUTES, **settings)


async def test_a_sub_agent_is_routed_to_a_cheaper_model_by_its_system_prompt(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="poolgate.edge.routes")
    stack = await routed_stack(make_stack)
    client = stack.anthropic()
    main = await client.messages.with_raw_response.create(
        model="claude-opus-4-6", max_tokens=32, system=CLAUDE_CODE, messages=CHAT)  # type: ignore[arg-type]
    assert main.headers["x-poolgate-target"] == "anthropic/claude-opus-4-6"
    reviewer = await client.messages.with_raw_response.create(
        model="claude-opus-4-6", max_tokens=32, messages=CHAT,
        system=[*CLAUDE_CODE, {"type": "text", "text": REVIEWER}])  # type: ignore[list-item]
    assert reviewer.headers["x-poolgate-target"] == "cheap/gpt-4o-mini"  # translated to the OpenAI-format pool
    assert reviewer.headers["x-poolgate-account"] == "cheap/good"
    message = await reviewer.parse()
    assert message.model == "gpt-4o-mini" and message.content[0].text.startswith("Hello!")  # type: ignore[union-attr]
    async with client.messages.stream(model="claude-opus-4-6", max_tokens=32, messages=CHAT,
                                      system=REVIEWER) as stream:
        final = await stream.get_final_message()
    assert final.model == "gpt-4o-mini" and final.usage.output_tokens == 10
    accounts = await stack.accounts()
    assert accounts["cheap/good"]["successes_total"] == 2 and accounts["anthropic/good"]["successes_total"] == 1
    assert any("rule reviewer matches" in r.getMessage() for r in caplog.records)
    assert not any(REVIEWER in r.getMessage() for r in caplog.records)  # hashes are logged, prompts are not


async def test_rules_by_system_hash_header_and_client_key(make_stack: StackFactory) -> None:
    stack = await routed_stack(make_stack)
    client = stack.openai()
    planner = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "system", "content": PLANNER}, *CHAT])
    assert planner.headers["x-poolgate-target"] == "anthropic/claude-haiku-4-5"
    assert planner.parse().model == "claude-haiku-4-5"
    explorer = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=CHAT, extra_headers={"x-agent": "explorer-3"})
    assert explorer.headers["x-poolgate-target"] == "cheap/gpt-4o-mini"
    by_key = await client.chat.completions.with_raw_response.create(model="gpt-4.1", messages=CHAT)
    assert by_key.headers["x-poolgate-target"] == "anthropic/claude-opus-4-6"
    plain = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT)
    assert plain.headers["x-poolgate-target"] == "openai/gpt-4o"


async def test_aliases(make_stack: StackFactory) -> None:
    stack = await routed_stack(make_stack)
    smart = await stack.openai().chat.completions.with_raw_response.create(model="smart", messages=CHAT)
    assert smart.headers["x-poolgate-target"] == "anthropic/claude-opus-4-6"
    thrifty = await stack.openai().chat.completions.with_raw_response.create(model="thrifty", messages=CHAT)
    assert thrifty.headers["x-poolgate-target"] == "cheap/gpt-4o-mini"  # an alias of an alias
    async with stack.http.get(f"{stack.url}/v1/models", headers={"Authorization": "Bearer test-edge-key-0001"}) as r:
        listed = {m["id"]: m["owned_by"] for m in (await r.json())["data"]}
    assert listed["smart"] == "anthropic" and listed["combo"] == "anthropic" and listed["thrifty"] == "cheap"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_chain_moves_from_an_exhausted_pool_without_the_client_seeing_an_error(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture, stream: bool
) -> None:
    caplog.set_level(logging.INFO, logger="poolgate.edge")
    stack = await routed_stack(make_stack, anthropic_accounts="- {name: limited, key: sk-ant-ratelimited-0001}")
    client = stack.anthropic()
    for _ in range(2):  # first: a 429, then the pool has no other account; second: the account is cooling
        if stream:
            async with client.messages.stream(model="combo", max_tokens=32, messages=CHAT) as events:
                message = await events.get_final_message()
        else:
            raw = await client.messages.with_raw_response.create(model="combo", max_tokens=32, messages=CHAT)
            assert raw.headers["x-poolgate-target"] == "cheap/gpt-4o-mini"
            assert raw.headers["x-poolgate-fallbacks"] == "1"
            message = await raw.parse()
        assert message.model == "gpt-4o-mini" and message.content[0].text.startswith("Hello!")  # type: ignore[union-attr]
    assert stack.fake.stats.requests["sk-ant-ratelimited-0001"] == 1  # not called again while it cools
    accounts = await stack.accounts()
    assert [c["scope"] for c in accounts["anthropic/limited"]["model_cooldowns"]] == ["claude-opus-4-6"]
    assert accounts["cheap/good"]["successes_total"] == 2
    lines = [r.getMessage() for r in caplog.records if r.name == "poolgate.edge"]
    moves = [line for line in lines if "moving to cheap/gpt-4o-mini, target 2/2" in line]
    assert len(moves) == 2, lines
    assert moves[0].startswith("chain combo: anthropic/claude-opus-4-6 has no account available")
    assert any("anthropic/limited rate limited, retry in 30 s; no other account available" in line for line in lines)


async def test_a_chain_moves_on_when_a_targets_attempts_are_used_up(make_stack: StackFactory) -> None:
    stack = await routed_stack(make_stack, anthropic_accounts=BROKEN)
    completion = await stack.openai().chat.completions.create(model="combo", messages=CHAT)
    assert completion.model == "gpt-4o-mini"
    assert sum(n for key, n in stack.fake.stats.requests.items() if "broken" in key) == 3  # the pool's max_attempts
    assert stack.fake.stats.requests["sk-cheap-good-0001"] == 1


async def test_one_budget_per_request_and_the_last_error_when_every_target_fails(make_stack: StackFactory) -> None:
    stack = await routed_stack(make_stack, anthropic_accounts=BROKEN)
    with pytest.raises(openai.InternalServerError) as caught:
        await stack.openai().chat.completions.create(model="both", messages=CHAT)
    assert caught.value.message.endswith("Internal error (fake upstream).")
    # Budget: the largest max_attempts (3) plus one per further target: 3 on the first target, 1 on the second.
    assert sum(stack.fake.stats.requests.values()) == 4


async def test_a_client_error_does_not_move_along_the_chain(make_stack: StackFactory) -> None:
    stack = await routed_stack(make_stack)
    with pytest.raises(anthropic.BadRequestError):
        await stack.anthropic().messages.create(model="combo", max_tokens=8, messages=[])
    assert stack.fake.stats.requests.total() == 1


async def test_a_chain_whose_later_target_cannot_take_the_request_is_refused_up_front(
    make_stack: StackFactory,
) -> None:
    stack = await routed_stack(make_stack)
    with pytest.raises(anthropic.BadRequestError) as caught:
        await stack.anthropic().messages.create(model="combo", max_tokens=8, messages=CHAT,
                                                extra_body={"container": "c-1"})
    assert "container" in caught.value.message and "pool 'cheap'" in caught.value.message
    assert stack.fake.stats.requests == {}


def test_a_translated_request_leaves_the_client_apis_own_headers_behind() -> None:
    headers = (("Anthropic-Version", "2023-06-01"), ("anthropic-beta", "x"), ("OpenAI-Beta", "y"),
               ("user-agent", "agent/1"), ("x-session-id", "s"))
    assert without_other_api_headers(headers) == (("user-agent", "agent/1"), ("x-session-id", "s"))

"""The Anthropic SDK (as Claude Code speaks it) on an OpenAI-format pool whose upstream speaks only the Responses API
(``apis: [responses]``, as for gpt-5-codex): answers, streams event by event, a tool call and its result, a recorded
Claude Code request, refusals, and a stream cut after it started."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from tests.edge.conftest import EDGE_KEY, Stack
from tests.translate.test_claude_code_requests import recorded

POOL = """
codex:
  base_url: {fake}/v1
  apis: [responses]
  api_key: {key}
"""
MODEL = "gpt-5-codex"
KEY = "sk-codex-0001"
ACCOUNT = "codex/key-1"
TOOLS: list[Any] = [{"name": "get_weather", "description": "Weather in a city.",
                     "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                      "required": ["city"]}}]
ASK = 'What is the weather in Paris? use the tool get_weather with {"city": "Paris"}'
HELLO = "Hello! This is the poolgate fake upstream answering your request."


@pytest.fixture
async def stack(make_stack: Any) -> Stack:
    result: Stack = await make_stack(pools=POOL.replace("{key}", KEY), models=f"{MODEL}: codex")
    return result


async def test_an_answer(stack: Stack) -> None:
    raw = await stack.anthropic().messages.with_raw_response.create(
        model=MODEL, max_tokens=1000, system="Be brief.", messages=[{"role": "user", "content": "Say hello"}],
        extra_body={"context_management": {"edits": []}})
    message = await raw.parse()
    assert raw.headers["x-poolgate-target"] == f"codex/{MODEL}"
    assert raw.headers["x-poolgate-dropped"] == "context_management"
    assert message.content[0].type == "text" and message.content[0].text == HELLO
    assert message.stop_reason == "end_turn" and message.model == MODEL and message.id.startswith("msg_")
    assert message.usage.output_tokens == 10 and message.usage.input_tokens > 0
    account = (await stack.accounts())[ACCOUNT]
    assert account["successes_total"] == 1 and account["output_tokens_total"] == 10
    assert stack.fake.stats.paths[KEY] == {"/v1/responses": 1}


async def test_a_stream_event_by_event(stack: Stack) -> None:
    client = stack.anthropic()
    async with client.messages.stream(model=MODEL, max_tokens=1000,
                                      messages=[{"role": "user", "content": "Say hello"}]) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("content_block_start") == 1 and kinds.count("text") > 1  # word by word
    assert final.content[0].type == "text" and final.content[0].text == HELLO
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 10 and final.usage.input_tokens > 0
    assert (await stack.accounts())[ACCOUNT]["output_tokens_total"] == 10
    assert stack.fake.stats.paths[KEY] == {"/v1/responses": 1}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_call_and_its_result(stack: Stack, stream: bool) -> None:
    client = stack.anthropic()
    ask: Any = {"role": "user", "content": ASK}
    if stream:
        async with client.messages.stream(model=MODEL, max_tokens=1000, tools=TOOLS, messages=[ask]) as events:
            kinds = [event.type async for event in events]
            first = await events.get_final_message()
        assert "input_json" in kinds
    else:
        first = await client.messages.create(model=MODEL, max_tokens=1000, tools=TOOLS, messages=[ask])
    assert first.stop_reason == "tool_use"
    calls = [block for block in first.content if block.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].input == {"city": "Paris"}
    second = await client.messages.create(model=MODEL, max_tokens=1000, tools=TOOLS, messages=[
        ask, {"role": "assistant", "content": first.content},  # type: ignore[list-item]
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id,
                                      "content": "18 C and sunny"}]}])
    assert second.content[0].type == "text" and second.content[0].text == "The tool returned: 18 C and sunny"
    assert second.stop_reason == "end_turn"
    assert stack.fake.stats.paths[KEY] == {"/v1/responses": 2}


async def test_a_recorded_claude_code_turn(stack: Stack) -> None:
    """What Claude Code sent when asked to use its Read tool, streamed back as Claude Code reads it."""
    body = {**recorded("claude_code_messages_tool.json"), "model": MODEL}
    headers = {"x-api-key": EDGE_KEY, "anthropic-version": "2023-06-01"}
    async with stack.http.post(f"{stack.url}/v1/messages", json=body, headers=headers) as response:
        assert response.status == 200, await response.text()
        dropped = response.headers["x-poolgate-dropped"]
        text = (await response.read()).decode()
    assert set(dropped.split(", ")) == {"context_management", "tools[].defer_loading"}
    events = [json.loads(block.split("data: ", 1)[1]) for block in text.strip().split("\n\n")]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["name"] == "Read"
    arguments = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta")
    assert json.loads(arguments)["file_path"].endswith("/note.txt")
    assert next(e for e in events if e["type"] == "message_delta")["delta"]["stop_reason"] == "tool_use"
    assert stack.fake.stats.paths[KEY] == {"/v1/responses": 1}


async def test_what_responses_lacks_is_a_400_naming_it(stack: Stack) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await stack.anthropic().messages.create(model=MODEL, max_tokens=100, stop_sequences=["END"],
                                                messages=[{"role": "user", "content": "hi"}])
    assert "stop_sequences" in caught.value.message and "codex" in caught.value.message
    assert stack.fake.stats.requests == {}


async def test_a_stream_cut_after_it_started_ends_with_an_error_event(make_stack: Any) -> None:
    stack = await make_stack(pools=POOL.replace("{key}", "sk-codex-midstream-0001"), models=f"{MODEL}: codex")
    body = {"model": MODEL, "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with stack.http.post(f"{stack.url}/v1/messages", json=body, headers={"x-api-key": EDGE_KEY}) as response:
        assert response.status == 200
        text = (await response.read()).decode()
    names = [block.split("\n")[0].removeprefix("event: ") for block in text.strip().split("\n\n")]
    assert names[0] == "message_start" and names[-1] == "error"
    error = json.loads(text.strip().split("\n\n")[-1].split("data: ", 1)[1])
    assert error["type"] == "error" and error["error"]["type"] == "api_error"

"""The Anthropic SDK served by an OpenAI-format pool: messages, tool calls and streams translated both ways, usage
reported right, untranslatable requests refused with a 400 before any upstream call."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from tests.edge.conftest import CHAT, Stack

MODEL = "gpt-4o-mini"  # served by the OpenAI-format pool
TOOLS: list[Any] = [{
    "name": "get_weather", "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}]
ASK = {"role": "user", "content": "Please use the tool for Paris"}


async def test_message_and_usage(stack: Stack) -> None:
    response = await stack.anthropic().messages.with_raw_response.create(
        model=MODEL, max_tokens=32, system="Be brief.", messages=CHAT, stop_sequences=["\n\n"],
        extra_body={"temperature": 0.5, "cache_control": {"type": "ephemeral"}})
    message = await response.parse()
    assert response.headers["x-poolgate-account"] == "openai/good"
    assert response.headers["x-poolgate-target"] == "openai/gpt-4o-mini"
    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert message.content[0].text == "Hello! This is the poolgate fake upstream answering your request."  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    account = (await stack.accounts())["openai/good"]
    assert account["successes_total"] == 1
    assert account["output_tokens_total"] == message.usage.output_tokens == 10
    assert account["input_tokens_total"] == message.usage.input_tokens > 0
    assert stack.fake.stats.requests.total() == 1


async def test_tool_call_round_trip(stack: Stack) -> None:
    client = stack.anthropic()
    first = await client.messages.create(model=MODEL, max_tokens=64, tools=TOOLS, messages=[ASK],
                                         tool_choice={"type": "auto"})
    assert first.stop_reason == "tool_use"
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "poolgate"} and call.id
    answer = await client.messages.create(model=MODEL, max_tokens=64, tools=TOOLS, messages=[
        ASK, {"role": "assistant", "content": first.content},  # type: ignore[list-item]
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18 degrees"}]},
    ])
    assert answer.content[0].text == "The tool returned: 18 degrees"  # type: ignore[union-attr]
    assert answer.stop_reason == "end_turn"


async def test_streamed_text_and_usage(stack: Stack) -> None:
    async with stack.anthropic().messages.stream(model=MODEL, max_tokens=32, messages=CHAT) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello! This is the poolgate fake upstream answering your request."
    assert final.stop_reason == "end_turn"
    account = (await stack.accounts())["openai/good"]
    assert account["successes_total"] == 1
    assert account["output_tokens_total"] == final.usage.output_tokens == 10
    assert account["input_tokens_total"] == final.usage.input_tokens > 0


async def test_streamed_tool_call_arrives_event_by_event(stack: Stack) -> None:
    async with stack.anthropic().messages.stream(model=MODEL, max_tokens=64, tools=TOOLS, messages=[ASK]) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds.count("content_block_start") == 1 and "input_json" in kinds
    call = final.content[0]
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {"city": "poolgate"}
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 12
    assert (await stack.accounts())["openai/good"]["output_tokens_total"] == 12


async def test_raw_stream_is_well_formed_sse(stack: Stack) -> None:
    body = {"model": MODEL, "max_tokens": 16, "stream": True, "messages": CHAT}
    headers = {"x-api-key": stack.config.edge.api_keys[0]}
    async with stack.http.post(f"{stack.url}/v1/messages", json=body, headers=headers) as response:
        assert response.status == 200 and response.content_type == "text/event-stream"
        raw = (await response.read()).decode()
    events = [block for block in raw.split("\n\n") if block]
    names = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert names[:2] == ["message_start", "content_block_start"] and names[-2:] == ["message_delta", "message_stop"]
    for block in events:
        name, data = block.split("\n")
        assert json.loads(data.removeprefix("data: "))["type"] == name.removeprefix("event: ")


@pytest.mark.parametrize(("extra", "words"), [
    ({"container": "c-1"}, "container: not supported by OpenAI-format pools"),
    ({"output_config": {"task_budget": 5}}, "output_config.task_budget: cannot be translated"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "server tools"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {
        "type": "text", "media_type": "text/plain", "data": "x"}}]}]}, "document blocks"),
])
async def test_untranslatable_requests_are_a_400(stack: Stack, extra: dict[str, Any], words: str) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await stack.anthropic().messages.create(model=MODEL, max_tokens=8, messages=CHAT, extra_body=extra)
    assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert words in caught.value.message and "pool 'openai'" in caught.value.message
    assert stack.fake.stats.requests == {}


async def test_upstream_errors_come_back_in_anthropic_shape(make_stack: Any) -> None:
    stack = await make_stack(openai_accounts="- {name: broken, key: sk-broken-0001}")
    with pytest.raises(anthropic.InternalServerError) as caught:
        await stack.anthropic().messages.create(model=MODEL, max_tokens=8, messages=CHAT)
    assert caught.value.body == {"type": "error", "error": {
        "type": "api_error", "message": "Internal error (fake upstream)."}}


async def test_upstream_client_errors_come_back_in_anthropic_shape(stack: Stack) -> None:
    with pytest.raises(anthropic.BadRequestError) as bad:  # the upstream's own 400
        await stack.anthropic().messages.create(model=MODEL, max_tokens=8, messages=[])
    assert bad.value.body == {"type": "error", "error": {  # type: ignore[comparison-overlap]
        "type": "invalid_request_error", "message": "messages: must be a non-empty array"}}


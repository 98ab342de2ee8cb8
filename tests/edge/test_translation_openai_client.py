"""The OpenAI SDK served by an Anthropic-format pool: chat completions, tool calls and streams translated both ways,
usage reported right, untranslatable requests refused with a 400 before any upstream call."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.edge.conftest import CHAT, Stack, StackFactory

MODEL = "claude-opus-4-6"  # served by the Anthropic-format pool
TOOLS: list[Any] = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
ASK = {"role": "user", "content": "Please use the tool for Paris"}
TEXT = "Hello! This is the poolgate fake upstream answering your request."


async def test_chat_completion_and_usage(stack: Stack) -> None:
    response = await stack.openai().chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "system", "content": "Be brief."}, *CHAT], max_tokens=32, stop=["\n\n"])
    completion = response.parse()
    assert response.headers["x-poolgate-account"] == "anthropic/good"
    assert completion.object == "chat.completion" and completion.model == MODEL
    choice = completion.choices[0]
    assert choice.message.content == TEXT and choice.finish_reason == "stop" and choice.message.tool_calls is None
    account = (await stack.accounts())["anthropic/good"]
    assert account["output_tokens_total"] == completion.usage.completion_tokens == 10  # type: ignore[union-attr]
    assert account["input_tokens_total"] == completion.usage.prompt_tokens > 0  # type: ignore[union-attr]


async def test_tool_call_round_trip(stack: Stack) -> None:
    client = stack.openai()
    first = await client.chat.completions.create(model=MODEL, messages=[ASK], tools=TOOLS, tool_choice="auto")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I will use the get_weather tool."
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.type == "function" and call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "poolgate"}  # type: ignore[union-attr]
    answer = await client.chat.completions.create(model=MODEL, tools=TOOLS, messages=[
        ASK, choice.message.model_dump(exclude_none=True),  # type: ignore[list-item]
        {"role": "tool", "tool_call_id": call.id, "content": "18 degrees"},
    ])
    assert answer.choices[0].message.content == "The tool returned: 18 degrees"


async def test_streamed_text_with_usage_chunk(stack: Stack) -> None:
    stream = await stack.openai().chat.completions.create(
        model=MODEL, messages=CHAT, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 10
    account = (await stack.accounts())["anthropic/good"]
    assert account["output_tokens_total"] == 10 and account["input_tokens_total"] == chunks[-1].usage.prompt_tokens


async def test_streamed_usage_is_reported_even_when_the_client_did_not_ask_for_it(stack: Stack) -> None:
    stream = await stack.openai().chat.completions.create(model=MODEL, messages=CHAT, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(c.choices and c.usage is None for c in chunks)
    assert (await stack.accounts())["anthropic/good"]["output_tokens_total"] == 10


async def test_streamed_tool_call(stack: Stack) -> None:
    async with stack.openai().chat.completions.stream(model=MODEL, messages=[ASK], tools=TOOLS) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_completion()
    assert "tool_calls.function.arguments.delta" in kinds and "content.delta" in kinds
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content == "I will use the get_weather tool."
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "poolgate"}  # type: ignore[union-attr]


@pytest.mark.parametrize(("extra", "words"), [
    ({"n": 2}, "n: 2 cannot be translated for Anthropic-format pools"),
    ({"logit_bias": {"50256": -100}}, "logit_bias: not supported by Anthropic-format pools"),
    ({"response_format": {"type": "json_object"}}, "JSON modes cannot be translated"),
    ({"temperature": 1.5}, "temperature: Anthropic-format pools take 0 to 1"),
    ({"messages": [*CHAT, {"role": "system", "content": "late"}]}, "after the conversation started"),
    ({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {
        "data": "AAAA", "format": "wav"}}]}]}, "'input_audio' part cannot be translated"),
])
async def test_untranslatable_requests_are_a_400(stack: Stack, extra: dict[str, Any], words: str) -> None:
    body = {"messages": CHAT, **extra}
    with pytest.raises(openai.BadRequestError) as caught:
        await stack.openai().chat.completions.create(model=MODEL, messages=body.pop("messages"), extra_body=body)
    assert caught.value.code == "untranslatable" and words in caught.value.message, caught.value.message
    assert stack.fake.stats.requests == {}


async def test_embeddings_cannot_reach_an_anthropic_pool(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await stack.openai().embeddings.create(model=MODEL, input="hi")
    assert caught.value.code == "untranslatable" and "whose upstream speaks messages, count_tokens" in (
        caught.value.message) and "/v1/embeddings cannot be translated" in caught.value.message
    assert stack.fake.stats.requests == {}


async def test_upstream_errors_come_back_in_openai_shape(make_stack: StackFactory) -> None:
    stack = await make_stack(anthropic_accounts="- {name: broken, key: sk-ant-broken-0001}")
    with pytest.raises(openai.InternalServerError) as caught:
        await stack.openai().chat.completions.create(model=MODEL, messages=CHAT)
    assert caught.value.body == {"message": "Internal error (fake upstream).", "type": "server_error",
                                 "param": None, "code": "api_error"}


async def test_stream_error_after_the_first_event_arrives_in_openai_shape(make_stack: StackFactory) -> None:
    stack = await make_stack(anthropic_accounts="- {name: late, key: sk-ant-lateerror-0001}")
    with pytest.raises(openai.APIError) as caught:
        stream = await stack.openai().chat.completions.create(model=MODEL, messages=CHAT, stream=True)
        async for _chunk in stream:
            pass
    assert "Overloaded (fake)." in caught.value.message

"""Responses API clients (the openai SDK, as Codex CLI speaks it) on pools whose upstream has no Responses API:
an Anthropic-format pool, and an OpenAI-format pool that speaks only Chat Completions (``apis: [chat]``)."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.edge.conftest import Stack

CHAT_ONLY = """
gemini:
  base_url: {fake}/v1
  apis: [chat]
  api_key: sk-chatonly-0001
"""
TOOLS: list[Any] = [{"type": "function", "name": "get_weather", "description": "Weather in a city.",
                     "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                    "required": ["city"]}}]
ASK = 'What is the weather in Paris? use the tool get_weather with {"city": "Paris"}'


@pytest.fixture(params=["anthropic", "chat-only"])
async def target(request: pytest.FixtureRequest, make_stack: Any) -> tuple[Stack, str, str, str]:
    """(stack, model, the key serving it, the upstream path it is translated to)."""
    stack = await make_stack(pools=CHAT_ONLY, models="gemini-2.5-flash: gemini")
    if request.param == "anthropic":
        return stack, "claude-sonnet-4-6", "sk-good-000001", "/v1/messages"
    return stack, "gemini-2.5-flash", "sk-chatonly-0001", "/v1/chat/completions"


async def test_a_plain_answer(target: tuple[Stack, str, str, str]) -> None:
    stack, model, key, path = target
    response = await stack.openai().responses.create(model=model, input="Say hello", instructions="Be brief.")
    assert response.status == "completed" and response.output_text.startswith("Hello!")
    assert response.usage is not None and response.usage.output_tokens > 0
    assert stack.fake.stats.paths[key] == {path: 1}


async def test_a_stream_event_by_event(target: tuple[Stack, str, str, str]) -> None:
    stack, model, key, path = target
    events = [event async for event in await stack.openai().responses.create(model=model, input="Say hello",
                                                                             stream=True)]
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    text = "".join(event.delta for event in events if event.type == "response.output_text.delta")
    final = events[-1].response  # type: ignore[union-attr]
    assert text and final.output_text == text and final.usage is not None
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert stack.fake.stats.paths[key] == {path: 1}


@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_call_and_its_result(target: tuple[Stack, str, str, str], stream: bool) -> None:
    stack, model, key, path = target
    client = stack.openai()
    if stream:
        events = [e async for e in await client.responses.create(model=model, input=ASK, tools=TOOLS, stream=True)]
        assert any(e.type == "response.function_call_arguments.delta" for e in events)
        first = events[-1].response  # type: ignore[union-attr]
    else:
        first = await client.responses.create(model=model, input=ASK, tools=TOOLS)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    second = await client.responses.create(model=model, tools=TOOLS, input=[
        {"role": "user", "content": ASK},
        {"type": "function_call", "call_id": calls[0].call_id, "name": "get_weather", "arguments": calls[0].arguments},
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18 C and sunny"}])
    assert "18 C and sunny" in second.output_text
    assert stack.fake.stats.paths[key] == {path: 2}


async def test_what_cannot_be_translated_is_a_400_naming_it(target: tuple[Stack, str, str, str]) -> None:
    stack, model, _key, _path = target
    with pytest.raises(openai.BadRequestError) as caught:
        await stack.openai().responses.create(model=model, input="hi", previous_response_id="resp_123")
    assert caught.value.code == "untranslatable" and "previous_response_id" in caught.value.message
    assert stack.fake.stats.requests == {}


@pytest.mark.parametrize(("pool", "model"), [("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-6")])
async def test_a_stream_cut_after_it_started_ends_with_response_failed(make_stack: Any, pool: str,
                                                                      model: str) -> None:
    """As OpenAI ends a failed response: an ``error`` event, then ``response.failed`` (Codex waits for one of
    ``response.completed`` and ``response.failed``)."""
    stack = await make_stack(**{f"{pool}_accounts": "- {name: cut, key: sk-midstream-0001}"})
    async with stack.http.post(f"{stack.url}/v1/responses", json={"model": model, "input": "hi", "stream": True},
                               headers={"Authorization": "Bearer test-edge-key-0001"}) as response:
        assert response.status == 200
        text = (await response.read()).decode()
    events = [block.split("\n") for block in text.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in events]
    assert names[-2:] == ["error", "response.failed"]
    failed = json.loads(events[-1][1].removeprefix("data: "))
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "upstream_stream_error"

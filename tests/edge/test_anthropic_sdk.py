"""The Anthropic SDK against the edge: messages (stream and not) and errors in Anthropic's shape."""

from __future__ import annotations

import anthropic
import pytest

from tests.edge.conftest import CHAT, EDGE_KEY, Stack


async def test_message_with_usage(stack: Stack) -> None:
    message = await stack.anthropic().messages.create(model="claude-sonnet-4-6", max_tokens=32, messages=CHAT)
    assert message.content[0].text.startswith("Hello!")  # type: ignore[union-attr]
    account = (await stack.accounts())["anthropic/good"]
    assert account["successes_total"] == 1
    assert account["output_tokens_total"] == message.usage.output_tokens == 10
    assert account["input_tokens_total"] == message.usage.input_tokens


async def test_streamed_message_usage_comes_from_the_stream_events(stack: Stack) -> None:
    async with stack.anthropic().messages.stream(model="claude-sonnet-4-6", max_tokens=32, messages=CHAT) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello! This is the poolgate fake upstream answering your request."
    account = (await stack.accounts())["anthropic/good"]
    assert account["output_tokens_total"] == final.usage.output_tokens == 10
    assert account["input_tokens_total"] == final.usage.input_tokens > 0


async def test_errors_come_in_anthropic_shape(stack: Stack) -> None:
    with pytest.raises(anthropic.AuthenticationError) as auth:
        await stack.anthropic(api_key="wrong").messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=CHAT)
    assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await stack.anthropic().messages.create(model="mistral-large", max_tokens=8, messages=CHAT)
    assert unknown.value.body == {"type": "error", "error": {"type": "not_found_error", "message": (
        "model 'mistral-large' is not served here; served models: alias, gpt-*, text-embedding-*, claude-*; "
        "or name a pool explicitly: openai/<model>, anthropic/<model>")}}
    status, body, _headers = await stack.post("/v1/messages", b'{"model": ', headers={"x-api-key": EDGE_KEY})
    assert status == 400 and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError) as untranslatable:  # gpt-4o is served by an OpenAI pool
        await stack.anthropic().messages.create(model="gpt-4o", max_tokens=8, messages=CHAT,
                                                extra_body={"container": "c-1"})
    assert "container: not supported by OpenAI-format pools" in untranslatable.value.message
    assert stack.fake.stats.requests == {}

"""Property tests: translating there and back gives the same request, answer or stream (up to the shapes both
APIs treat as equal, such as a string for a lone text part)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from proxy_edge.translate import anthropic_to_openai as a2o
from proxy_edge.translate import openai_to_anthropic as o2a
from proxy_edge.translate.stream import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from tests.translate import sse
from tests.translate.strategies import (
    anthropic_messages,
    anthropic_requests,
    openai_completions,
    openai_requests,
)

PROPERTY = settings(max_examples=200, deadline=None)
cuts = st.lists(st.integers(0, 10_000), max_size=6)


def _normal_anthropic(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    system = out.pop("system", None)
    if isinstance(system, list):
        system = "\n\n".join(b["text"] for b in system)
    if system:
        out["system"] = system
    messages = []
    for message in body["messages"]:
        content = message["content"]
        if message["role"] == "assistant" and isinstance(content, list):
            texts = "".join(b["text"] for b in content if b["type"] == "text")
            calls = [b for b in content if b["type"] == "tool_use"]
            content = ([{"type": "text", "text": texts}] if texts else []) + calls if calls else texts
        messages.append({"role": message["role"], "content": content})
    out["messages"] = messages
    return out


def _parts(content: Any) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _normal_openai(body: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in body.items() if k not in ("max_completion_tokens", "stream_options")}
    out["max_tokens"] = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(out.get("stop"), str):
        out["stop"] = [out["stop"]]
    system, messages = [], []
    for message in body["messages"]:
        content = message.get("content")
        if message["role"] in ("system", "developer"):
            system.append(content if isinstance(content, str) else "".join(p["text"] for p in content))
            continue
        message = dict(message)
        if message["role"] == "user":
            message["content"] = _parts(content)
        elif message["role"] == "assistant":
            if isinstance(content, list):
                message["content"] = "".join(p["text"] for p in content)
            for call in message.get("tool_calls") or []:
                call["function"]["arguments"] = json.loads(call["function"]["arguments"])
        messages.append(message)
    if system:
        messages.insert(0, {"role": "system", "content": "\n\n".join(system)})
    out["messages"] = messages
    for tool in out.get("tools") or []:
        tool["function"].setdefault("parameters", {"type": "object", "properties": {}})
    return out


@PROPERTY
@given(anthropic_requests())
def test_anthropic_request_round_trip(body: dict[str, Any]) -> None:
    back = o2a.request(a2o.request(body))
    assert _normal_anthropic(back) == _normal_anthropic(body)


@PROPERTY
@given(openai_requests())
def test_openai_request_round_trip(body: dict[str, Any]) -> None:
    back = a2o.request(o2a.request(body))
    assert _normal_openai(back) == _normal_openai(body)


@PROPERTY
@given(anthropic_messages())
def test_anthropic_answer_round_trip(message: dict[str, Any]) -> None:
    assert o2a.response(a2o.response(message)) == message


@PROPERTY
@given(openai_completions())
def test_openai_answer_round_trip(completion: dict[str, Any]) -> None:
    back = a2o.response(o2a.response(completion))
    for call in back["choices"][0]["message"].get("tool_calls") or []:
        call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    expected = json.loads(json.dumps(completion))
    for call in expected["choices"][0]["message"].get("tool_calls") or []:
        call["function"]["arguments"] = json.loads(call["function"]["arguments"])
    assert {**back, "created": 0} == {**expected, "created": 0}


def _parsed(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**c, "function": {**c["function"], "arguments": json.loads(c["function"]["arguments"])}} for c in calls]


def _translate(translator: Any, stream: bytes, network: list[int]) -> bytes:
    return b"".join(translator.feed(piece) for piece in sse.rechunk(stream, network))


@PROPERTY
@given(anthropic_messages(), cuts, cuts)
def test_anthropic_stream_round_trip(message: dict[str, Any], deltas: list[int], network: list[int]) -> None:
    """Anthropic events -> OpenAI chunks -> Anthropic events rebuild the message, however the bytes are cut; the
    OpenAI chunks add up to the translated whole answer."""
    upstream = sse.anthropic_events(message, deltas)
    chunks = _translate(AnthropicToOpenAIStream(include_usage=True), upstream, network)
    accumulated = sse.accumulate_openai(chunks)
    whole = a2o.response(message)
    assert accumulated["content"] == whole["choices"][0]["message"]["content"]
    assert _parsed(accumulated["tool_calls"]) == _parsed(whole["choices"][0]["message"].get("tool_calls", []))
    assert accumulated["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert accumulated["usage"] == whole["usage"]
    rebuilt = sse.accumulate_anthropic(_translate(OpenAIToAnthropicStream(), chunks, network))
    assert rebuilt.pop("_stopped") is True
    assert rebuilt["content"] == message["content"] and rebuilt["stop_reason"] == message["stop_reason"]
    assert rebuilt["usage"]["output_tokens"] == message["usage"]["output_tokens"]
    assert rebuilt["usage"]["input_tokens"] == message["usage"]["input_tokens"]
    assert rebuilt["usage"]["cache_read_input_tokens"] == message["usage"]["cache_read_input_tokens"]
    assert rebuilt["id"] == message["id"] and rebuilt["model"] == message["model"]


@PROPERTY
@given(openai_completions(), cuts, cuts)
def test_openai_stream_matches_the_whole_answer(completion: dict[str, Any], deltas: list[int],
                                                network: list[int]) -> None:
    """OpenAI chunks -> Anthropic events add up to the translated whole answer, however the bytes are cut."""
    events = _translate(OpenAIToAnthropicStream(), sse.openai_chunks(completion, deltas), network)
    rebuilt = sse.accumulate_anthropic(events)
    whole = o2a.response(completion)
    assert rebuilt.pop("_stopped") is True
    assert rebuilt["content"] == whole["content"] and rebuilt["stop_reason"] == whole["stop_reason"]
    assert {k: rebuilt["usage"][k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens")} == {
        k: whole["usage"][k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens")}

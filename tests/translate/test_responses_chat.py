"""A Responses client on an upstream that speaks only Chat Completions (Gemini's OpenAI-compatible endpoint):
requests, whole answers, streams event by event; and the bridge keyed by API names."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import Response

from proxy_edge.translate import TranslationError
from proxy_edge.translate.bridge import Translation, translate_request
from proxy_edge.translate.responses_stream import AnthropicToResponsesStream, ChatToResponsesStream
from proxy_edge.translate.stream import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from tests.translate.responses_sse import accumulate, codex_request, read_events
from tests.translate.sse import pieces, rechunk

PATCH = "*** Begin Patch\n*** Add File: b.txt\n+\"quoted\" é\n*** End Patch\n"


def _translate(body: dict[str, Any]) -> tuple[dict[str, Any], Translation]:
    return translate_request("responses", "chat", body)


def test_a_recorded_codex_request_becomes_a_chat_request() -> None:
    body = codex_request("codex_responses_tool_1")
    out, translation = _translate(body)
    roles = [m["role"] for m in out["messages"]]
    assert roles == ["system", "user", "assistant", "tool"]  # the developer parts joined into one system message
    call = next(item for item in body["input"] if item["type"] == "function_call")
    assert out["messages"][2] == {"role": "assistant", "content": None, "tool_calls": [{
        "id": call["call_id"], "type": "function", "function": {"name": "exec_command",
                                                                "arguments": call["arguments"]}}]}
    assert out["messages"][3]["tool_call_id"] == call["call_id"]
    assert out["reasoning_effort"] == "medium" and out["stream_options"] == {"include_usage": True}
    patch = next(t["function"] for t in out["tools"] if t["function"]["name"] == "apply_patch")
    assert patch["parameters"]["properties"]["input"]["type"] == "string"
    assert "parallel_tool_calls" not in out and "prompt_cache_key" not in out and "text" not in out
    assert translation.dropped == ("client_metadata", "include.reasoning.encrypted_content", "prompt_cache_key",
                                   "text.verbosity", "tools.tool_search", "tools.web_search")


def test_items_and_settings() -> None:
    out, translation = _translate({
        "model": "gpt-5-mini", "instructions": "Be brief.", "max_output_tokens": 500, "parallel_tool_calls": False,
        "tool_choice": {"type": "custom", "name": "patch"}, "reasoning": {"effort": "low", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
        "tools": [{"type": "custom", "name": "patch"}],
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Look"},
                                         {"type": "input_image", "image_url": "https://x/a.png", "detail": "low"}]},
            {"type": "reasoning", "id": "rs", "summary": [], "encrypted_content": "blob"},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Patching."}]},
            {"type": "custom_tool_call", "call_id": "c1", "name": "patch", "input": PATCH},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"},
            {"role": "assistant", "content": "Done."},
        ],
    })
    assert out["max_completion_tokens"] == 500 and "max_tokens" not in out  # an OpenAI reasoning model
    assert out["tool_choice"] == {"type": "function", "function": {"name": "patch"}}
    assert out["parallel_tool_calls"] is False and out["reasoning_effort"] == "low"
    assert out["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "out", "schema": {"type": "object"}, "strict": True}}
    assert out["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Look"},
                                     {"type": "image_url", "image_url": {"url": "https://x/a.png"}}]},
        {"role": "assistant", "content": "Patching.", "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "patch", "arguments": json.dumps({"input": PATCH}, ensure_ascii=False)}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        {"role": "assistant", "content": "Done."},
    ]
    assert {"input.reasoning", "reasoning.summary"} <= set(translation.dropped)
    assert _translate({"model": "gemini-2.5-pro", "input": "x", "max_output_tokens": 9})[0]["max_tokens"] == 9


@pytest.mark.parametrize(("body", "words"), [
    ({"previous_response_id": "resp_1"}, "previous_response_id"),
    ({"tools": [{"type": "code_interpreter"}]}, "hosted tool 'code_interpreter'"),
    ({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}, "tools": [{"type": "function",
                                                                                       "name": "f"}]},
     "tool_choice"),
    ({"input": [{"type": "function_call_output", "call_id": "c",
                 "output": [{"type": "input_image", "image_url": "https://x/a.png"}]}]}, "a 'image' part"),
])
def test_what_cannot_be_translated_for_chat(body: dict[str, Any], words: str) -> None:
    with pytest.raises(TranslationError, match=words):
        _translate({"model": "gemini-2.5-pro", "input": "hi", **body})


COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-9x", "object": "chat.completion", "created": 1, "model": "gemini-2.5-pro",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "Let me patch.", "reasoning_content": "Thinking it over.",
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "apply_patch",
                                                               "arguments": json.dumps({"input": PATCH})}},
            {"id": "call_b", "type": "function", "function": {"name": "exec_command",
                                                               "arguments": '{"cmd": "ls"}'}}]}}],
    "usage": {"prompt_tokens": 50, "completion_tokens": 30, "total_tokens": 80,
              "prompt_tokens_details": {"cached_tokens": 10}, "completion_tokens_details": {"reasoning_tokens": 12}},
}


def _codex_translation() -> Translation:
    return _translate(codex_request("codex_responses"))[1]


def test_a_chat_completion_as_a_response() -> None:
    status, raw = _codex_translation().response(200, json.dumps(COMPLETION).encode())
    body = json.loads(raw)
    Response.model_validate(body)
    assert status == 200
    reasoning, message, patch, call = body["output"]
    assert reasoning["summary"][0]["text"] == "Thinking it over." and "encrypted_content" not in reasoning
    assert message["content"][0]["text"] == "Let me patch."
    assert patch["type"] == "custom_tool_call" and patch["input"] == PATCH and patch["call_id"] == "call_a"
    assert call == {"id": "fc_9x_1", "call_id": "call_b", "type": "function_call", "name": "exec_command",
                    "arguments": '{"cmd": "ls"}', "status": "completed"}
    assert body["usage"] == {"input_tokens": 50, "input_tokens_details": {"cached_tokens": 10, "cache_write_tokens": 0},
                             "output_tokens": 30, "output_tokens_details": {"reasoning_tokens": 12},
                             "total_tokens": 80}
    cut = {**COMPLETION, "choices": [{"index": 0, "finish_reason": "length", "message": {"content": "Half"}}]}
    body = json.loads(_codex_translation().response(200, json.dumps(cut).encode())[1])
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}


def chat_stream(completion: dict[str, Any], cuts: list[int]) -> bytes:
    """The chunks a Chat upstream streams for ``completion`` (reasoning, content, tool calls, usage)."""
    base = {"id": completion["id"], "object": "chat.completion.chunk", "created": 1, "model": completion["model"]}
    choice = completion["choices"][0]
    message = choice["message"]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
        return f"data: {json.dumps(data)}\n\n".encode()

    out = [chunk({"role": "assistant"})]
    out += [chunk({"reasoning_content": p}) for p in pieces(message.get("reasoning_content") or "", cuts) if p]
    out += [chunk({"content": p}) for p in pieces(message.get("content") or "", cuts) if p]
    for i, call in enumerate(message.get("tool_calls") or []):
        out.append(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                          "function": {"name": call["function"]["name"], "arguments": ""}}]}))
        out += [chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
                for p in pieces(call["function"]["arguments"], cuts)]
    out.append(chunk({}, choice["finish_reason"]))
    out.append(f"data: {json.dumps({**base, 'choices': [], 'usage': completion['usage']})}\n\n".encode())
    return b"".join([*out, b"data: [DONE]\n\n"])


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(0, 10_000), max_size=6), net=st.lists(st.integers(0, 100_000), max_size=8))
def test_chat_streams_event_by_event_match_the_whole_answer(cuts: list[int], net: list[int]) -> None:
    translation = _codex_translation()
    whole = json.loads(translation.response(200, json.dumps(COMPLETION).encode())[1])
    stream = translation.stream()
    chunks = rechunk(chat_stream(COMPLETION, cuts), net)
    out = b"".join(stream.feed(chunk) for chunk in chunks[:-1]) + stream.feed(chunks[-1] + b"\n\n")
    final = accumulate(read_events(out))

    def strip(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in item.items() if k != "id"} for item in items]

    assert strip(final["output"]) == strip(whole["output"]) and final["usage"] == whole["usage"]
    assert stream.done


def test_chat_stream_errors_and_length_stops() -> None:
    stream = _codex_translation().stream()
    events = read_events(stream.feed(b'data: {"error": {"message": "quota", "type": "insufficient_quota"}}\n\n'))
    assert [e["type"] for e in events] == ["response.created", "response.in_progress", "error", "response.failed"]
    assert events[-1]["response"]["error"] == {"code": "insufficient_quota", "message": "quota"}
    cut = {**COMPLETION, "choices": [{"index": 0, "finish_reason": "length", "message": {"content": "Half"}}]}
    events = read_events(_codex_translation().stream().feed(chat_stream(cut, [])))
    assert events[-1]["type"] == "response.incomplete"


def test_bridge_keys_translations_by_api_names() -> None:
    assert isinstance(Translation("responses", "messages").stream(), AnthropicToResponsesStream)
    assert isinstance(Translation("responses", "chat").stream(), ChatToResponsesStream)
    assert isinstance(Translation("messages", "chat").stream(), OpenAIToAnthropicStream)
    assert isinstance(Translation("chat", "messages").stream(), AnthropicToOpenAIStream)
    legacy = Translation("anthropic", "openai")  # pool format names stand for their native API
    assert (legacy.client, legacy.upstream) == ("messages", "chat")
    with pytest.raises(TranslationError, match="no translation from the responses API to the responses API"):
        translate_request("responses", "responses", {})
    _, translation = translate_request("chat", "messages", {
        "model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}})
    assert translation.include_usage and translation.dropped == ()
    status, body = Translation("responses", "chat").response(200, b"[1]")
    assert status == 502 and json.loads(body)["error"]["code"] == "translation_failed"

"""Unit tests of the translators: exact shapes for each feature, the refusals (400s), errors and stream edges."""

from __future__ import annotations

import json
from typing import Any

import pytest

from proxy_edge.translate import TranslationError
from proxy_edge.translate import anthropic_to_openai as a2o
from proxy_edge.translate import openai_to_anthropic as o2a
from proxy_edge.translate.bridge import Translation, translate_request
from proxy_edge.translate.errors import to_client
from proxy_edge.translate.stream import AnthropicToOpenAIStream, OpenAIToAnthropicStream
from tests.translate import sse


def test_anthropic_request_as_openai() -> None:
    body = {
        "model": "m", "max_tokens": 100, "stream": True, "temperature": 0.2, "top_p": 0.9,
        "system": [{"type": "text", "text": "Preamble.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "Rules."}],
        "stop_sequences": ["END"], "metadata": {"user_id": "u-1"},
        "tools": [{"name": "look", "description": "Look it up", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Let me look."},
                                              {"type": "tool_use", "id": "toolu_1", "name": "look",
                                               "input": {"q": "thing"}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": True},
                {"type": "text", "text": "And now?"}]},
        ],
    }
    assert a2o.request(body) == {
        "model": "m", "max_tokens": 100, "temperature": 0.2, "top_p": 0.9, "stop": ["END"], "user": "u-1",
        "stream": True, "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "look", "description": "Look it up",
                                                    "parameters": {"type": "object"}}}],
        "tool_choice": "required", "parallel_tool_calls": False,
        "messages": [
            {"role": "system", "content": "Preamble.\n\nRules."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "toolu_1", "type": "function", "function": {"name": "look", "arguments": '{"q":"thing"}'}}]},
            {"role": "tool", "tool_call_id": "toolu_1", "content": "a cat"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "[error] boom"},
            {"role": "user", "content": [{"type": "text", "text": "And now?"}]},
        ],
    }


def test_openai_request_as_anthropic() -> None:
    body = {
        "model": "m", "max_completion_tokens": 50, "stop": "STOP", "user": "u", "parallel_tool_calls": False,
        "stream": True, "stream_options": {"include_usage": True}, "n": 1, "store": False,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "messages": [
            {"role": "system", "content": "One."}, {"role": "developer", "content": [{"type": "text", "text": "Two."}]},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call.1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
            {"role": "tool", "tool_call_id": "call.1", "content": "done"},
            {"role": "user", "content": "thanks"},
        ],
    }
    assert o2a.request(body) == {
        "model": "m", "max_tokens": 50, "stop_sequences": ["STOP"], "stream": True, "metadata": {"user_id": "u"},
        "system": "One.\n\nTwo.",
        "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "done"},
                                         {"type": "text", "text": "thanks"}]},
        ],
    }
    assert o2a.request({"model": "m", "messages": []})["max_tokens"] == o2a.DEFAULT_MAX_TOKENS


@pytest.mark.parametrize(("body", "words"), [
    ({"container": "c", "mcp_servers": []}, "container, mcp_servers: not supported"),
    ({"thinking": {"type": "mystery"}}, "thinking: type 'mystery'"),
    ({"output_config": {"effort": "extreme"}}, "output_config.effort: 'extreme'"),
    ({"output_config": {"format": {"type": "regex"}}}, "output_config.format"),
    ({"service_tier": "standard_only"}, "service_tier"),
    ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "server tools"),
    ({"tool_choice": {"type": "mystery"}}, "tool_choice: type 'mystery'"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}]}]}]},
     "a 'image' part cannot be translated"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]},
     "an image source of type 'file'"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "role 'user', 'assistant' or 'system'"),
    ({"messages": [{"role": "system", "content": [{"type": "image", "source": {}}]}]}, "a 'image' part"),
])
def test_what_anthropic_requests_cannot_take_to_openai(body: dict[str, Any], words: str) -> None:
    with pytest.raises(TranslationError, match=words.replace("[", r"\[").replace("]", r"\]")):
        a2o.request({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}], **body})


@pytest.mark.parametrize(("body", "words"), [
    ({"n": 3}, "n: 3 cannot be translated"), ({"seed": 1}, "seed: not supported by Anthropic-format pools"),
    ({"logprobs": True}, "logprobs"), ({"presence_penalty": 0.5}, "presence_penalty"),
    ({"response_format": {"type": "json_schema"}}, "JSON modes"), ({"temperature": 2}, "take 0 to 1"),
    ({"tools": [{"type": "function", "function": {"name": "f", "strict": True}}]}, "strict"),
    ({"tools": [{"type": "custom", "custom": {"name": "g"}}]}, "only function tools"),
    ({"tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
    ({"messages": [{"role": "function", "content": "x"}]}, "role 'function'"),
    ({"messages": [{"role": "user", "content": "x", "name": "bob"}]}, "messages\\[0\\]: name cannot"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "file:///x.png"}}]}]},
     "http\\(s\\) URL or a base64 data URL"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}, "must be a JSON object"),
])
def test_what_openai_requests_cannot_take_to_anthropic(body: dict[str, Any], words: str) -> None:
    with pytest.raises(TranslationError, match=words):
        o2a.request({"model": "m", "messages": [{"role": "user", "content": "x"}], **body})


def test_answers_stop_reasons_and_usage() -> None:
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "c", "stop_reason": "stop_sequence",
               "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}, {"type": "text", "text": "A"},
                           {"type": "text", "text": "B"}],
               "usage": {"input_tokens": 5, "output_tokens": 2, "cache_creation_input_tokens": 3,
                         "cache_read_input_tokens": 4}}
    out = a2o.response(message)
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "AB", "refusal": None}
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 12, "completion_tokens": 2, "total_tokens": 14,
                            "prompt_tokens_details": {"cached_tokens": 4}}
    completion = {"id": "c1", "model": "g", "choices": [{"message": {"content": None, "refusal": "No."},
                                                         "finish_reason": "content_filter"}], "usage": None}
    back = o2a.response(completion)
    assert back["content"] == [{"type": "text", "text": "No."}] and back["stop_reason"] == "refusal"
    assert back["usage"] == {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0}


def test_bridge_translates_answers_and_reports_unreadable_ones_as_502() -> None:
    translation = Translation("anthropic", "openai")
    status, body = translation.response(200, b"not json")
    assert status == 502 and json.loads(body)["error"]["type"] == "api_error"
    bad = {"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{"}}]}}]}
    status, body = translation.response(200, json.dumps(bad).encode())
    assert status == 502 and "tool call arguments must be a JSON object" in json.loads(body)["error"]["message"]
    # An OpenAI client gets OpenAI's whole error shape, so its SDK raises the right error class.
    status, body = Translation("openai", "anthropic").response(200, b"not json")
    assert status == 502 and json.loads(body) == {"error": {
        "message": "the upstream's answer could not be translated (the body is not JSON); retry the request",
        "type": "server_error", "param": None, "code": "translation_failed"}}
    with pytest.raises(TranslationError):
        translate_request("openai", "openai", {})
    _, openai_client = translate_request("openai", "anthropic", {
        "model": "m", "messages": [], "stream": True, "stream_options": {"include_usage": True}})
    assert openai_client.include_usage


@pytest.mark.parametrize(("client", "body", "status", "expected"), [
    ("anthropic", {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}, 429,
     {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
    ("anthropic", {"error": "plain"}, 503,
     {"type": "error", "error": {"type": "overloaded_error", "message": "plain"}}),
    ("openai", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}, 529,
     {"error": {"message": "busy", "type": "server_error", "param": None, "code": "overloaded_error"}}),
    ("openai", {"type": "error", "error": {"type": "not_found_error", "message": "no model"}}, 404,
     {"error": {"message": "no model", "type": "invalid_request_error", "param": None, "code": "not_found_error"}}),
])
def test_errors_in_the_clients_shape(client: str, body: Any, status: int, expected: Any) -> None:
    assert json.loads(to_client(json.dumps(body).encode(), status, client)) == expected
    assert to_client(json.dumps(expected).encode(), status, client) == json.dumps(expected).encode()  # as it is


def test_non_json_error_bodies_keep_their_text() -> None:
    body = json.loads(to_client(b"<html>Bad Gateway</html>", 502, "openai"))
    assert body["error"]["message"] == "<html>Bad Gateway</html>" and body["error"]["code"] == "api_error"


def test_stream_errors_become_the_clients_error_events() -> None:
    anthropic_side = OpenAIToAnthropicStream()
    out = anthropic_side.feed(b'data: {"error": {"message": "quota", "type": "insufficient_quota"}}\n\n')
    assert out.startswith(b"event: error\n") and json.loads(out.split(b"data: ")[1]) == {
        "type": "error", "error": {"type": "rate_limit_error", "message": "quota"}}
    assert anthropic_side.done and anthropic_side.feed(b"data: [DONE]\n\n") == b""
    openai_side = AnthropicToOpenAIStream(include_usage=False)
    out = openai_side.feed(b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
                           b'"message": "busy"}}\n\n')
    assert json.loads(out.removeprefix(b"data: ")) == {"error": {"message": "busy", "type": "server_error",
                                                                 "param": None, "code": "overloaded_error"}}


def test_streams_keep_partial_events_until_they_are_whole() -> None:
    translator = OpenAIToAnthropicStream()
    first = translator.feed(b'data: {"id": "c", "model": "g", "choices": [{"index": 0, "delta": {"content": "Hi')
    assert first == b""
    out = translator.feed(b'"}}]}\r\n\r\ndata: [DONE]\r\n\r\n')
    message = sse.accumulate_anthropic(out)
    assert message["content"] == [{"type": "text", "text": "Hi"}] and message["stop_reason"] == "end_turn"


def test_openai_stream_without_usage_chunk_still_ends_properly() -> None:
    translator = AnthropicToOpenAIStream(include_usage=False)
    completion = {"id": "m", "type": "message", "role": "assistant", "model": "c", "stop_reason": "max_tokens",
                  "content": [{"type": "text", "text": "cut"}],
                  "usage": {"input_tokens": 1, "output_tokens": 2, "cache_creation_input_tokens": 0,
                            "cache_read_input_tokens": 0}}
    out = translator.feed(sse.anthropic_events(completion, []))
    accumulated = sse.accumulate_openai(out)
    assert accumulated["usage"] is None and accumulated["finish_reason"] == "length" and accumulated["content"] == "cut"
    assert b'"usage"' not in out


@pytest.mark.parametrize(("model", "field"), [
    ("gpt-4o", "max_tokens"), ("gpt-4.1-mini", "max_tokens"), ("gemini-2.5-flash", "max_tokens"),
    ("o1", "max_completion_tokens"), ("o3-mini", "max_completion_tokens"), ("o4-mini", "max_completion_tokens"),
    ("gpt-5", "max_completion_tokens"), ("gpt-5-mini", "max_completion_tokens"),
    ("openai/o3", "max_completion_tokens"), ("omni-moderation", "max_tokens"),
])
def test_the_token_limit_goes_by_the_name_the_upstream_model_takes(model: str, field: str) -> None:
    """OpenAI's reasoning models refuse max_tokens; every other OpenAI-format upstream gets the classic name."""
    out = a2o.request({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": "x"}]})
    assert out[field] == 64
    assert ({"max_tokens", "max_completion_tokens"} - {field}).isdisjoint(out)

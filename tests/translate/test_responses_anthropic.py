"""A Responses client (Codex CLI) on an Anthropic-format pool: requests, whole answers, streams event by event,
and what is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import Response

from proxy_edge.translate import TranslationError
from proxy_edge.translate import responses_to_anthropic as r2a
from proxy_edge.translate.bridge import Translation, translate_request
from proxy_edge.translate.responses_tools import InputStringStream
from tests.translate.responses_sse import accumulate, anthropic_stream, codex_request, read_events
from tests.translate.sse import rechunk

PATCH = "*** Begin Patch\n*** Update File: a.py\n@@\n-print('hi')\n+print(\"h\\u00e9 😀\")\n*** End Patch\n"
MESSAGE: dict[str, Any] = {
    "id": "msg_01abc", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "stop_reason": "tool_use",
    "content": [
        {"type": "thinking", "thinking": "The user wants a patch.", "signature": "EqQBCkYIBxgCKkA="},
        {"type": "text", "text": "Patching now."},
        {"type": "tool_use", "id": "toolu_01", "name": "apply_patch", "input": {"input": PATCH}},
        {"type": "tool_use", "id": "toolu_02", "name": "exec_command", "input": {"cmd": "ls -la", "yield_time_ms": 9}},
    ],
    "usage": {"input_tokens": 100, "output_tokens": 40, "cache_read_input_tokens": 1000,
              "cache_creation_input_tokens": 20},
}


def _translate(body: dict[str, Any]) -> tuple[dict[str, Any], Translation]:
    return translate_request("responses", "messages", body)


def test_a_recorded_codex_request_becomes_an_anthropic_request() -> None:
    body = codex_request("codex_responses")
    out, translation = _translate(body)
    # Codex 0.171 sends its instructions as developer messages: they lead the conversation, so they are the system.
    assert out["system"][0]["text"].startswith("You are Codex")
    assert len(out["system"]) == 4 and out["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert [m["role"] for m in out["messages"]] == ["user"]
    assert out["messages"][0]["content"][-1] == {"type": "text", "text": body["input"][-1]["content"][0]["text"],
                                                 "cache_control": {"type": "ephemeral"}}
    assert out["max_tokens"] == r2a.DEFAULT_MAX_TOKENS and out["stream"] is True
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 8192}  # effort medium
    names = [tool["name"] for tool in out["tools"]]
    assert "apply_patch" in names and "exec_command" in names and "web_search" not in names
    patch_tool = out["tools"][names.index("apply_patch")]
    assert patch_tool["input_schema"]["required"] == ["input"] and "lark grammar" in patch_tool["description"]
    assert out["tool_choice"] == {"type": "auto"}
    assert translation.dropped == ("client_metadata", "text.verbosity", "tools.tool_search", "tools.web_search")
    assert "store" not in out and "include" not in out and "prompt_cache_key" not in out


def test_codex_tool_loop_pairs_the_call_with_its_output() -> None:
    body = codex_request("codex_responses_tool_1")
    out, translation = _translate(body)
    call = next(item for item in body["input"] if item["type"] == "function_call")
    assert [m["role"] for m in out["messages"]] == ["user", "assistant", "user"]
    assert out["messages"][1]["content"] == [{"type": "tool_use", "id": call["call_id"], "name": "exec_command",
                                              "input": json.loads(call["arguments"])}]
    result = out["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == call["call_id"]
    # The last assistant turn has no thinking block to send back, which Anthropic would refuse with thinking on.
    assert "thinking" not in out and "reasoning.effort" in translation.dropped


def test_items_of_every_kind() -> None:
    encrypted = r2a.encrypt_thinking({"type": "thinking", "thinking": "hmm", "signature": "sig"})
    out, translation = _translate({
        "model": "claude-opus-4-1", "instructions": "Be brief.", "max_output_tokens": 3000, "temperature": 0.5,
        "parallel_tool_calls": False, "reasoning": {"effort": "high"}, "user": "u-1",
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": False},
                  {"type": "custom", "name": "patch", "description": "Edit files."},
                  {"type": "namespace", "name": "mcp__docs", "tools": [{"type": "function", "name": "search"}]}],
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Look"},
                                         {"type": "input_image", "image_url": "data:image/png;base64,iVBO"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "hmm"}],
             "encrypted_content": encrypted},
            {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "gAAAA-openai-blob"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "On it."}]},
            {"type": "custom_tool_call", "call_id": "call.1", "name": "patch", "input": "*** Begin Patch"},
            {"type": "function_call", "call_id": "c2", "name": "search", "namespace": "mcp__docs",
             "arguments": '{"q": "x"}'},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "found"}]},
            {"type": "custom_tool_call_output", "call_id": "call.1", "output": "Done!"},
            {"role": "developer", "content": "Mind the sandbox."},
        ],
    })
    assert out["system"] == [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    assert out["max_tokens"] == 3000 and out["metadata"] == {"user_id": "u-1"}
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2999}  # high's 16384 kept under max_tokens
    assert "temperature" not in out and "temperature" in translation.dropped  # thinking needs the default
    assert [t["name"] for t in out["tools"]] == ["f", "patch", "mcp__docs__search"]
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    user, assistant, results = out["messages"]
    assert user["content"][1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                                             "data": "iVBO"}}
    assert assistant["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "On it."},
        {"type": "tool_use", "id": "call_1", "name": "patch", "input": {"input": "*** Begin Patch"}},
        {"type": "tool_use", "id": "c2", "name": "mcp__docs__search", "input": {"q": "x"}},
    ]
    assert results["content"][:2] == [
        {"type": "tool_result", "tool_use_id": "c2", "content": [{"type": "text", "text": "found"}]},
        {"type": "tool_result", "tool_use_id": "call_1", "content": "Done!"}]
    # A developer message in the middle of the conversation is user text (Anthropic has one system prompt).
    assert results["content"][2] == {"type": "text", "text": "Mind the sandbox.",
                                     "cache_control": {"type": "ephemeral"}}
    assert "input.reasoning" in translation.dropped  # the OpenAI reasoning item: no signature Anthropic accepts


@pytest.mark.parametrize(("model", "effort", "limit", "thinking"), [
    ("claude-sonnet-4-5", "minimal", None, None),
    ("claude-sonnet-4-5", "low", None, 2048),
    ("claude-sonnet-4-5", "xhigh", None, 24576),
    ("claude-sonnet-4-5", "medium", 1000, None),  # under Anthropic's smallest budget
    ("claude-3-5-haiku-latest", "high", None, None),  # no extended thinking before Claude 3.7
])
def test_reasoning_effort_as_a_thinking_budget(model: str, effort: str, limit: int | None,
                                               thinking: int | None) -> None:
    body = {"model": model, "input": "hi", "reasoning": {"effort": effort}, "max_output_tokens": limit}
    out, translation = _translate(body)
    assert out.get("thinking", {}).get("budget_tokens") == thinking
    assert ("reasoning.effort" in translation.dropped) == (thinking is None and effort != "minimal")


@pytest.mark.parametrize(("model", "limit"), [
    ("claude-sonnet-4-5", 32000), ("claude-opus-4-1", 32000), ("claude-3-5-sonnet-latest", 8192),
    ("claude-3-haiku-20240307", 4096), ("kimi-k2", 32000)])
def test_max_tokens_default_per_model(model: str, limit: int) -> None:
    assert _translate({"model": model, "input": "hi"})[0]["max_tokens"] == limit


def test_tool_choice_by_name_and_forced_tools_turn_thinking_off() -> None:
    body = {"model": "claude-sonnet-4-5", "input": "hi", "reasoning": {"effort": "high"},
            "tools": [{"type": "namespace", "name": "ns", "tools": [{"type": "custom", "name": "raw"}]}],
            "tool_choice": {"type": "custom", "name": "raw", "namespace": "ns"}}
    out, translation = _translate(body)
    assert out["tool_choice"] == {"type": "tool", "name": "ns__raw"}
    assert "thinking" not in out and "reasoning.effort" in translation.dropped
    assert _translate({**body, "tool_choice": "required"})[0]["tool_choice"] == {"type": "any"}


@pytest.mark.parametrize(("body", "words"), [
    ({"previous_response_id": "resp_1"}, "previous_response_id: the conversation state is kept at OpenAI"),
    ({"conversation": "conv_1"}, "send the whole conversation in input"),
    ({"background": True}, "background"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]: an item of type 'item_reference'"),
    ({"input": [{"type": "compaction", "encrypted_content": "x"}]}, "'compaction' cannot be translated"),
    ({"tools": [{"type": "file_search", "vector_store_ids": ["vs"]}]}, "tools[0]: the hosted tool 'file_search'"),
    ({"tools": [{"type": "function", "name": "f", "strict": True}]}, "tools[0].strict"),
    ({"tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "f"}]}, "declared twice"),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {}}}}, "text.format: JSON output"),
    ({"temperature": 1.5}, "temperature: Anthropic-format pools take 0 to 1"),
    ({"tool_choice": {"type": "function", "name": "nope"}, "tools": [{"type": "function", "name": "f"}]},
     "'nope' is not one of the declared tools"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]}, "not file_id"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_data": "data:text/csv;base64,YQ=="}]}]},
     "only PDF files"),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "call_id: a call and its output"),
])
def test_what_cannot_be_translated_is_refused_by_name(body: dict[str, Any], words: str) -> None:
    with pytest.raises(TranslationError, match=words.replace("[", r"\[").replace("]", r"\]")):
        _translate({"model": "claude-sonnet-4-5", "input": "hi", **body})


def _context_translation() -> Translation:
    _, translation = _translate(codex_request("codex_responses"))
    return translation


def test_an_anthropic_message_as_a_response() -> None:
    status, raw = _context_translation().response(200, json.dumps(MESSAGE).encode())
    body = json.loads(raw)
    Response.model_validate(body)
    assert status == 200 and body["id"] == "resp_01abc" and body["status"] == "completed"
    reasoning, message, patch, call = body["output"]
    assert reasoning["summary"] == [{"type": "summary_text", "text": "The user wants a patch."}]
    assert r2a.decrypt_thinking(reasoning["encrypted_content"]) == MESSAGE["content"][0]
    assert message["content"][0]["text"] == "Patching now."
    assert patch == {"id": "fc_01abc_2", "call_id": "toolu_01", "type": "custom_tool_call", "name": "apply_patch",
                     "input": PATCH, "status": "completed"}
    assert call["type"] == "function_call" and json.loads(call["arguments"]) == MESSAGE["content"][3]["input"]
    assert body["usage"] == {"input_tokens": 1120, "input_tokens_details": {"cached_tokens": 1000,
                                                                            "cache_write_tokens": 20},
                             "output_tokens": 40, "output_tokens_details": {"reasoning_tokens": 0},
                             "total_tokens": 1160}
    assert body["tools"] == codex_request("codex_responses")["tools"]  # repeated, as OpenAI does


def test_max_tokens_ends_the_response_as_incomplete() -> None:
    cut = {**MESSAGE, "stop_reason": "max_tokens", "content": [{"type": "text", "text": "Half"}]}
    body = json.loads(_context_translation().response(200, json.dumps(cut).encode())[1])
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    events = read_events(_context_translation().stream().feed(anthropic_stream(cut, [2])))
    final = accumulate(events)
    assert events[-1]["type"] == "response.incomplete" and final["incomplete_details"]["reason"] == "max_output_tokens"


def test_the_answer_comes_back_as_the_next_request_unchanged() -> None:
    """Reasoning (with its signature), custom and function calls keep their ids and content on a round trip."""
    translation = _context_translation()
    output = json.loads(translation.response(200, json.dumps(MESSAGE).encode())[1])["output"]
    tools = codex_request("codex_responses")["tools"]
    out, _ = _translate({"model": "claude-sonnet-4-5", "tools": tools, "input": [
        {"role": "user", "content": "patch it"}, *output,
        {"type": "custom_tool_call_output", "call_id": "toolu_01", "output": "ok"},
        {"type": "function_call_output", "call_id": "toolu_02", "output": "a.py"}]})
    assert out["messages"][1] == {"role": "assistant", "content": MESSAGE["content"]}
    assert [b["tool_use_id"] for b in out["messages"][2]["content"]] == ["toolu_01", "toolu_02"]


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(0, 10_000), max_size=6), net=st.lists(st.integers(0, 100_000), max_size=8))
def test_streams_event_by_event_match_the_whole_answer(cuts: list[int], net: list[int]) -> None:
    translation = _context_translation()
    whole = json.loads(translation.response(200, json.dumps(MESSAGE).encode())[1])
    stream = translation.stream()
    data = anthropic_stream(MESSAGE, cuts)
    chunks = rechunk(data, net)
    out = b"".join(stream.feed(chunk) for chunk in chunks[:-1])
    out += stream.feed(chunks[-1] + b"\n\n")  # the edge's last flush
    events = read_events(out)
    final = accumulate(events)

    def strip(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # The stream passes the upstream's argument text on as it is; the whole answer re-encodes it.
        return [{k: json.loads(v) if k == "arguments" else v for k, v in item.items() if k != "id"}
                for item in items]

    assert strip(final["output"]) == strip(whole["output"]) and final["usage"] == whole["usage"]
    assert final["id"] == "resp_msg_01abc" and stream.done


def test_custom_tool_input_streams_as_decoded_text() -> None:
    events = read_events(_context_translation().stream().feed(anthropic_stream(MESSAGE, list(range(0, 200, 5)))))
    deltas = [e["delta"] for e in events if e["type"] == "response.custom_tool_call_input.delta"]
    assert len(deltas) > 5 and "".join(deltas) == PATCH


def test_redacted_thinking_round_trips_opaquely() -> None:
    block = {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"}
    message = {**MESSAGE, "content": [block, {"type": "text", "text": "ok"}], "stop_reason": "end_turn"}
    final = accumulate(read_events(_context_translation().stream().feed(anthropic_stream(message, []))))
    item = final["output"][0]
    assert item["summary"] == [] and r2a.decrypt_thinking(item["encrypted_content"]) == block


def test_an_error_event_fails_the_response() -> None:
    stream = _context_translation().stream()
    start = anthropic_stream(MESSAGE, []).split(b"event: content_block_start")[0]
    error = b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    events = read_events(stream.feed(start + error))
    assert [e["type"] for e in events][-2:] == ["error", "response.failed"]
    assert events[-2]["code"] == "server_is_overloaded" and events[-2]["message"] == "Overloaded"
    assert events[-1]["response"]["status"] == "failed" and stream.done
    assert stream.feed(b'event: message_stop\ndata: {"type": "message_stop"}\n\n') == b""


def test_prompt_too_long_is_reported_as_a_context_window_error() -> None:
    """Codex compacts its history on context_length_exceeded (and only on that code)."""
    stream = _context_translation().stream()
    out = stream.feed(b'event: error\ndata: {"type": "error", "error": {"type": "invalid_request_error", '
                      b'"message": "prompt is too long: 210000 tokens > 200000 maximum"}}\n\n')
    assert read_events(out)[-1]["response"]["error"]["code"] == "context_length_exceeded"


def test_upstream_errors_in_openai_shape() -> None:
    body = b'{"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}'
    assert json.loads(_context_translation().error(429, body)) == {"error": {
        "message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limit_error"}}


@pytest.mark.parametrize("text", ["", "plain", 'quote " and \\ backslash', "é 😀 \u2028", "a\nb\tc"])
def test_input_string_stream_decodes_any_split(text: str) -> None:
    for ascii_only in (True, False):
        raw = json.dumps({"input": text}, ensure_ascii=ascii_only)
        for size in (1, 2, 3, 7):
            decoder = InputStringStream()
            assert "".join(decoder.feed(raw[i:i + size]) for i in range(0, len(raw), size)) == text


def test_tools_declared_in_an_additional_tools_item() -> None:
    """Codex with gpt-5.6-sol declares its tools (in namespaces) in an input item, not in tools."""
    out, translation = _translate(codex_request("codex_responses_sol"))
    names = [tool["name"] for tool in out["tools"]]
    assert "functions__exec" in names and "collaboration__spawn_agent" in names
    assert out["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "reasoning.context" in translation.dropped
    call = {"id": "toolu_9", "type": "tool_use", "name": "functions__exec", "input": {"input": "1 + 1"}}
    answer = {**MESSAGE, "content": [call]}
    item = json.loads(translation.response(200, json.dumps(answer).encode())[1])["output"][0]
    assert (item["type"], item["namespace"], item["name"], item["input"]) == (
        "custom_tool_call", "functions", "exec", "1 + 1")

"""An Anthropic client (Claude Code) on an upstream that speaks only the Responses API: requests (recorded Claude
Code requests among them), whole answers, streams cut anywhere, tool round trips and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy_edge.translate import TranslationError
from proxy_edge.translate.bridge import translate_request
from proxy_edge.translate.messages_stream import ResponsesToAnthropicStream
from proxy_edge.translate.messages_to_responses import request, response
from tests.translate import strategies as s
from tests.translate.sse import accumulate_anthropic, pieces, rechunk
from tests.translate.test_claude_code_requests import recorded

USER = [{"role": "user", "content": "hi"}]
WEATHER = {"name": "get_weather", "description": "Weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


def responses_stream(body: dict[str, Any], cuts: list[int]) -> bytes:
    """The SSE stream OpenAI sends for the response ``body``, text and arguments cut into deltas at ``cuts``."""
    head = {**body, "status": "in_progress", "output": [], "usage": None}
    out = [_sse("response.created", {"response": head}), _sse("response.in_progress", {"response": head})]
    for index, item in enumerate(body["output"]):
        at = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        partial = {**item, "status": "in_progress"}
        partial.update({"message": {"content": []}, "function_call": {"arguments": ""},
                        "custom_tool_call": {"input": ""}, "reasoning": {"summary": []}}[kind])
        out.append(_sse("response.output_item.added", {"output_index": index, "item": partial}))
        if kind == "message":
            text = item["content"][0]["text"]
            part = {"type": "output_text", "text": "", "annotations": []}
            out.append(_sse("response.content_part.added", {**at, "content_index": 0, "part": part}))
            out += [_sse("response.output_text.delta", {**at, "content_index": 0, "delta": p})
                    for p in pieces(text, cuts)]
            out.append(_sse("response.output_text.done", {**at, "content_index": 0, "text": text}))
            out.append(_sse("response.content_part.done", {**at, "content_index": 0, "part": {**part, "text": text}}))
        elif kind == "function_call":
            out += [_sse("response.function_call_arguments.delta", {**at, "delta": p})
                    for p in pieces(item["arguments"], cuts)]
            out.append(_sse("response.function_call_arguments.done", {**at, "arguments": item["arguments"]}))
        elif kind == "custom_tool_call":
            out += [_sse("response.custom_tool_call_input.delta", {**at, "delta": p})
                    for p in pieces(item["input"], cuts)]
            out.append(_sse("response.custom_tool_call_input.done", {**at, "input": item["input"]}))
        else:
            out.append(_sse("response.reasoning_summary_text.delta", {**at, "summary_index": 0, "delta": "Hm."}))
        out.append(_sse("response.output_item.done", {"output_index": index, "item": item}))
    return b"".join([*out, _sse(f"response.{body['status']}", {"response": body})])


def answer(output: list[dict[str, Any]], status: str = "completed", cached: int = 0) -> dict[str, Any]:
    """A Responses ``response`` object with ``output``."""
    return {"id": "resp_abc123", "object": "response", "created_at": 1, "model": "gpt-5-codex", "status": status,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "error": None, "output": output,
            "usage": {"input_tokens": 120, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": 30,
                      "output_tokens_details": {"reasoning_tokens": 10}, "total_tokens": 150}}


def text_item(text: str, n: int = 0) -> dict[str, Any]:
    return {"id": f"msg_{n}", "type": "message", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def call_item(call_id: str, name: str, arguments: str, n: int = 0) -> dict[str, Any]:
    return {"id": f"fc_{n}", "type": "function_call", "status": "completed", "call_id": call_id, "name": name,
            "arguments": arguments}


REASONING = {"id": "rs_0", "type": "reasoning", "summary": [{"type": "summary_text", "text": "Hm."}]}


def translated_stream(stream: bytes, cuts: list[int]) -> bytes:
    translator = ResponsesToAnthropicStream()
    out = b"".join(translator.feed(chunk) for chunk in rechunk(stream, cuts))
    assert translator.done
    return out


# --- requests ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["claude_code_messages.json", "claude_code_messages_tool_1.json"])
def test_recorded_claude_code_requests_become_responses_requests(fixture: str) -> None:
    body = recorded(fixture)
    out, translation = translate_request("messages", "responses", {**body, "model": "gpt-5-codex"})
    assert translation.dropped == ("context_management", "tools[].defer_loading")
    assert out["instructions"] == "\n\n".join(block["text"] for block in body["system"])
    # The mid-conversation system message stays where Claude Code put it, as a developer message.
    roles = [item.get("role", item["type"]) for item in out["input"]]
    assert roles[:2] == ["user", "developer"]
    note = body["messages"][1]["content"]
    assert (note if isinstance(note, str) else note[0]["text"])[:40] in out["input"][1]["content"][0]["text"]
    assert [tool["name"] for tool in out["tools"]] == [tool["name"] for tool in body["tools"]]
    assert all(tool["type"] == "function" and tool["strict"] is False and "defer_loading" not in tool
               for tool in out["tools"])
    assert out["reasoning"] == {"effort": "medium"} and out["max_output_tokens"] == body["max_tokens"]
    assert out["store"] is False and out["stream"] is True
    assert len(out["prompt_cache_key"]) == 64  # the digest of Claude Code's long metadata.user_id
    assert not {"messages", "system", "max_tokens", "thinking", "metadata", "context_management"} & set(out)


def test_a_recorded_tool_turn_becomes_a_function_call_and_its_output() -> None:
    body = recorded("claude_code_messages_tool_1.json")
    out = request({**body, "model": "gpt-5-codex"})
    use = body["messages"][2]["content"][1]
    assert out["input"][2:] == [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "I will use the Read "
                                                                                            "tool."}]},
        {"type": "function_call", "call_id": use["id"], "name": "Read",
         "arguments": json.dumps(use["input"], separators=(",", ":"))},
        {"type": "function_call_output", "call_id": use["id"], "output": "1\tpoolgate-ok\n2\t"}]


def test_a_model_without_reasoning_gets_none_and_the_request_says_so() -> None:
    body = recorded("claude_code_messages_gpt.json")
    dropped: list[str] = []
    out = request({**body, "model": "gpt-4.1", "temperature": 0.5}, dropped)
    assert "reasoning" not in out and out["temperature"] == 0.5
    assert set(dropped) >= {"thinking", "output_config.effort"}
    dropped = []
    out = request({"model": "gpt-5", "max_tokens": 5, "messages": USER, "temperature": 0.5, "top_p": 0.9}, dropped)
    assert "temperature" not in out and "top_p" not in out and dropped == ["temperature", "top_p"]
    assert out["max_output_tokens"] == 16  # OpenAI's minimum


def test_content_blocks_tools_and_settings() -> None:
    dropped: list[str] = []
    out = request({
        "model": "gpt-5-codex", "max_tokens": 1000, "system": "Be brief.", "top_k": 5, "stream": False,
        "tools": [WEATHER], "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "u1"}, "thinking": {"type": "enabled", "budget_tokens": 20000},
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Look"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"}},
                {"type": "image", "source": {"type": "url", "url": "https://x.example/a.png"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hm", "signature": "sig"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "and?"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True, "content": [
                    {"type": "text", "text": "no station"},
                    {"type": "image", "source": {"type": "url", "url": "https://x.example/b.png"}}]}]},
            {"role": "assistant", "content": "Paris: 18 C."},
        ]}, dropped)
    assert dropped == ["top_k", "thinking blocks"]
    assert out["instructions"] == "Be brief." and out["prompt_cache_key"] == "u1" and "stream" not in out
    assert out["reasoning"] == {"effort": "high"}
    assert out["text"] == {"format": {"type": "json_schema", "name": "output", "schema": {"type": "object"},
                                      "strict": True}}
    assert out["tools"] == [{"type": "function", "name": "get_weather", "description": "Weather in a city.",
                             "parameters": WEATHER["input_schema"], "strict": False}]
    assert out["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert out["parallel_tool_calls"] is False
    assert out["input"] == [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Look"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBO", "detail": "auto"},
            {"type": "input_image", "image_url": "https://x.example/a.png", "detail": "auto"}]},
        {"type": "function_call", "call_id": "toolu_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "toolu_2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "18 C"},
        {"type": "function_call_output", "call_id": "toolu_2", "output": [
            {"type": "input_text", "text": "[error] "}, {"type": "input_text", "text": "no station"},
            {"type": "input_image", "image_url": "https://x.example/b.png", "detail": "auto"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "and?"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Paris: 18 C."}]}]
    choices = {"auto": "auto", "any": "required", "none": "none"}
    for kind, expected in choices.items():
        assert request({"model": "m", "messages": USER, "tool_choice": {"type": kind}})["tool_choice"] == expected


@pytest.mark.parametrize(("extra", "named"), [
    ({"stop_sequences": ["END"]}, "stop_sequences"),
    ({"service_tier": "standard_only"}, "service_tier"),
    ({"container": "c1"}, "container"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}, "document"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
        {"type": "document", "source": {}}]}]}]}, "messages[0].content[0].content[0]"),
    ({"messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]},
     "image source"),
    ({"thinking": {"type": "sometimes"}}, "thinking"),
])
def test_what_responses_lacks_is_refused_by_name(extra: dict[str, Any], named: str) -> None:
    with pytest.raises(TranslationError) as caught:
        request({"model": "gpt-5-codex", "max_tokens": 10, "messages": USER, **extra})
    assert named in caught.value.message


def test_empty_stop_sequences_are_no_stop_sequences() -> None:
    assert "stop" not in request({"model": "m", "max_tokens": 10, "messages": USER, "stop_sequences": []})


# --- answers ----------------------------------------------------------------------------------------------------


def test_an_answer_becomes_a_message() -> None:
    message = response(answer([REASONING, text_item("Hello!", 1)], cached=100))
    assert message == {
        "id": "msg_abc123", "type": "message", "role": "assistant", "model": "gpt-5-codex",
        "content": [{"type": "text", "text": "Hello!"}], "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 20, "output_tokens": 30, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 100}}
    assert response(answer([text_item("Hel")], status="incomplete"))["stop_reason"] == "max_tokens"
    filtered = {**answer([]), "status": "incomplete", "incomplete_details": {"reason": "content_filter"}}
    assert response(filtered)["stop_reason"] == "refusal"


def test_tool_calls_round_trip() -> None:
    """A call the model makes comes back as tool_use; Claude Code sends it back with its result, which reaches the
    model as the same call and its output."""
    custom = {"id": "ctc_1", "type": "custom_tool_call", "status": "completed", "call_id": "call_P",
              "name": "apply_patch", "input": "*** Begin Patch\n\"x\"\n"}
    message = response(answer([text_item("Checking."), call_item("call_W", "get_weather", '{"city":"Paris"}', 1),
                               custom]))
    assert message["stop_reason"] == "tool_use"
    assert message["content"][1:] == [
        {"type": "tool_use", "id": "call_W", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_P", "name": "apply_patch", "input": {"input": custom["input"]}}]
    again = request({"model": "gpt-5-codex", "max_tokens": 100, "tools": [WEATHER], "messages": [
        *USER, {"role": "assistant", "content": message["content"][:2]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_W", "content": "18 C"}]}]})
    assert again["input"][1:] == [
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "function_call", "call_id": "call_W", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call_output", "call_id": "call_W", "output": "18 C"}]


def test_arguments_that_are_not_an_object_cannot_be_translated() -> None:
    with pytest.raises(TranslationError):
        response(answer([call_item("c", "f", "[1]")]))
    _, translation = translate_request("messages", "responses", {"model": "m", "max_tokens": 10, "messages": USER})
    status, body = translation.response(200, json.dumps(answer([call_item("c", "f", "[1]")])).encode())
    assert status == 502 and json.loads(body)["error"]["type"] == "api_error"


# --- streams ----------------------------------------------------------------------------------------------------

outputs = st.lists(st.one_of(
    st.builds(lambda t: text_item(t), s.text),
    st.builds(lambda i, n, v: call_item(f"call_{i}", n, json.dumps(v)), s.ids, s.names, s.tool_input),
    st.builds(lambda i, t: {"id": "ctc", "type": "custom_tool_call", "status": "completed", "call_id": f"call_{i}",
                            "name": "apply_patch", "input": t}, s.ids, s.text),
    st.just(REASONING)), max_size=4)


@settings(max_examples=150, deadline=None)
@given(outputs, st.sampled_from(["completed", "incomplete"]), st.lists(st.integers(0, 10_000), max_size=12),
       st.lists(st.integers(0, 100_000), max_size=12))
def test_a_stream_cut_anywhere_builds_the_same_message(output: list[dict[str, Any]], status: str,
                                                      cuts: list[int], chunk_cuts: list[int]) -> None:
    body = answer(output, status, cached=40)
    whole = response(body)
    built = accumulate_anthropic(translated_stream(responses_stream(body, cuts), chunk_cuts))
    assert built.pop("_stopped") is True
    assert built["content"] == whole["content"] and built["stop_reason"] == whole["stop_reason"]
    assert built["id"] == whole["id"] and built["model"] == whole["model"]
    assert {k: built["usage"][k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens")} == {
        k: whole["usage"][k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens")}


def test_items_sent_whole_without_deltas_are_sent_whole() -> None:
    body = answer([text_item("Hello!"), call_item("call_1", "f", '{"a":1}', 1)])
    stream = b"".join([
        _sse("response.created", {"response": {**body, "output": [], "status": "in_progress"}}),
        *(_sse("response.output_item.done", {"output_index": i, "item": item}) for i, item in
          enumerate(body["output"][:1])),
        _sse("response.output_item.added", {"output_index": 1, "item": {**body["output"][1], "arguments": ""}}),
        _sse("response.output_item.done", {"output_index": 1, "item": body["output"][1]}),
        _sse("response.completed", {"response": body})])
    built = accumulate_anthropic(translated_stream(stream, []))
    assert built["content"] == response(body)["content"] and built["stop_reason"] == "tool_use"


@pytest.mark.parametrize(("event", "kind"), [
    (_sse("error", {"code": "rate_limit_exceeded", "message": "Slow down.", "param": None}), "rate_limit_error"),
    (_sse("response.failed", {"response": {**answer([]), "status": "failed",
                                           "error": {"code": "server_error", "message": "Slow down."}}}), "api_error"),
])
def test_an_upstream_error_mid_stream_ends_with_an_anthropic_error_event(event: bytes, kind: str) -> None:
    body = answer([text_item("Hel")])
    head = responses_stream(body, [1]).split(b"event: response.output_text.done")[0]
    failed = _sse("response.failed", {"response": {**body, "status": "failed"}})
    translator = ResponsesToAnthropicStream()
    out = translator.feed(head + event + failed)
    assert translator.done
    events = out.decode().strip().split("\n\n")
    assert events[0].startswith("event: message_start") and events[-1].startswith("event: error")
    error = json.loads(events[-1].split("data: ", 1)[1])
    assert error == {"type": "error", "error": {"type": kind, "message": "Slow down."}}
    assert sum(e.startswith("event: error") for e in events) == 1


def test_the_bridge_translates_streams_answers_and_errors() -> None:
    body, translation = translate_request("messages", "responses", {"model": "gpt-5-codex", "max_tokens": 100,
                                                                   "messages": USER, "stream": True})
    assert body["stream"] is True and translation.dropped == ()
    assert isinstance(translation.stream(), ResponsesToAnthropicStream)
    status, out = translation.response(200, json.dumps(answer([text_item("Hi")])).encode())
    assert status == 200 and json.loads(out)["content"] == [{"type": "text", "text": "Hi"}]
    error = {"error": {"message": "Invalid 'input[0]'.", "type": "invalid_request_error", "param": None,
                       "code": None}}
    assert json.loads(translation.error(400, json.dumps(error).encode())) == {
        "type": "error", "error": {"type": "invalid_request_error", "message": "Invalid 'input[0]'."}}

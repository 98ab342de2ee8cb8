"""Tool calls for the fake upstream, in the shapes OpenAI and Anthropic really send (streamed and not).

When a request offers tools and its last user message asks to "use the tool", the answer calls the first tool with
input made from its schema; when the last turn is a tool result, the answer is text quoting it ("The tool returned:
...").
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

TRIGGER = "use the tool"


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def wants_tool(body: dict[str, Any]) -> bool:
    """The request offers tools and its last message is a user message asking to use one."""
    messages = body.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    return bool(body.get("tools")) and last.get("role") == "user" and TRIGGER in _text(last.get("content")).lower()


def tool_result(body: dict[str, Any]) -> str | None:
    """The text of the tool result the last turn carries (OpenAI ``tool`` message or Anthropic ``tool_result``)."""
    messages = body.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    if last.get("role") == "tool":
        return _text(last.get("content"))
    content = last.get("content")
    if last.get("role") == "user" and isinstance(content, list):
        results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            return " ".join(_text(b.get("content")) for b in results)
    return None


def reply_words(body: dict[str, Any]) -> list[str] | None:
    """The answer's words when the last turn is a tool result; None otherwise."""
    result = tool_result(body)
    if result is None:
        return None
    words = f"The tool returned: {result}".split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _value(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return "poolgate"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}, "null": None}.get(
        kind if isinstance(kind, str) else "", "poolgate")


def tool_input(schema: Any) -> dict[str, Any]:
    """Input for a tool: every required property (else every property) with a value of its type."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return {}
    names = schema.get("required") or list(schema["properties"])
    return {name: _value(schema["properties"].get(name)) for name in names}


def _first_tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    tool = body["tools"][0]
    if "function" in tool:  # OpenAI
        function = tool["function"]
        return function["name"], tool_input(function.get("parameters"))
    return tool["name"], tool_input(tool.get("input_schema"))


def _fragments(text: str) -> list[str]:
    step = max(1, len(text) // 3)
    return [text[i:i + step] for i in range(0, len(text), step)]


async def serve_openai(request: web.Request, key: str, body: dict[str, Any],
                       headers: dict[str, str]) -> web.StreamResponse:
    """A chat completion that calls the first tool."""
    from poolgate import fake_upstream as fake

    name, arguments = _first_tool(body)
    text = json.dumps(arguments)
    call_id, cid = f"call_{uuid.uuid4().hex[:24]}", f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created, model = int(time.time()), body["model"]
    prompt = fake._prompt_tokens(body)
    usage = {"prompt_tokens": prompt, "completion_tokens": 12, "total_tokens": prompt + 12}
    if not body.get("stream"):
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": text}}]}
        return await fake._serve_json(request, key, {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls", "logprobs": None}],
            "usage": usage}, headers)
    first = {"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}
    parts = [{"tool_calls": [{"index": 0, "function": {"arguments": part}}]} for part in _fragments(text)]
    deltas: list[tuple[dict[str, Any], str | None]] = [(first, None), *((part, None) for part in parts)]
    events = fake.openai_chat_stream(body, cid, created, [*deltas, ({}, "tool_calls")], usage)
    error = fake._sse(None, {"error": {"message": "The server had an error (fake).", "type": "server_error",
                                       "param": None, "code": "server_error"}})
    return await fake._serve_stream(request, key, headers, events, error)


async def serve_anthropic(request: web.Request, key: str, body: dict[str, Any],
                          headers: dict[str, str]) -> web.StreamResponse:
    """A message that says what it does, then calls the first tool (``stop_reason: tool_use``)."""
    from poolgate import fake_upstream as fake

    name, arguments = _first_tool(body)
    preface = f"I will use the {name} tool."
    tool_use_id, mid, model = f"toolu_{uuid.uuid4().hex[:24]}", f"msg_{uuid.uuid4().hex[:24]}", body["model"]
    usage = {"input_tokens": fake._prompt_tokens(body), "output_tokens": 20, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0}
    if not body.get("stream"):
        return await fake._serve_json(request, key, {
            "id": mid, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": preface},
                        {"type": "tool_use", "id": tool_use_id, "name": name, "input": arguments}],
            "stop_reason": "tool_use", "stop_sequence": None, "usage": usage}, headers)

    def event(kind: str, **fields: Any) -> bytes:
        return fake._sse(kind, {"type": kind, **fields})

    events = [
        event("message_start", message={"id": mid, "type": "message", "role": "assistant", "model": model,
                                        "content": [], "stop_reason": None, "stop_sequence": None,
                                        "usage": {**usage, "output_tokens": 1}}),
        event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        event("content_block_delta", index=0, delta={"type": "text_delta", "text": preface}),
        event("content_block_stop", index=0),
        event("content_block_start", index=1,
              content_block={"type": "tool_use", "id": tool_use_id, "name": name, "input": {}}),
        event("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": ""}),
    ]
    events += [event("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": part})
               for part in _fragments(json.dumps(arguments))]
    events += [
        event("content_block_stop", index=1),
        event("message_delta", delta={"stop_reason": "tool_use", "stop_sequence": None},
              usage={"output_tokens": usage["output_tokens"]}),
        event("message_stop"),
    ]
    error = event("error", error={"type": "overloaded_error", "message": "Overloaded (fake)."})
    return await fake._serve_stream(request, key, headers, events, error)

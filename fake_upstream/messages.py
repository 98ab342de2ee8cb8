"""Anthropic's ``/v1/messages`` (text, or the ``tool_use`` a request asks for) and ``/v1/messages/count_tokens``."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from fake_upstream import tools
from fake_upstream.prologue import prologue
from fake_upstream.wire import answer_words, prompt_tokens, serve_json, serve_stream, sse

NO_MESSAGES = "messages: at least one message is required"


async def messages(request: web.Request) -> web.StreamResponse:
    start = await prologue(request, anthropic=True, no_messages=NO_MESSAGES)
    if isinstance(start, web.StreamResponse):
        return start
    key, body, headers = start
    if tools.wants_tool(body):
        return await _serve_tool_use(request, key, body, headers)
    words = answer_words(body)
    mid, model, prompt = f"msg_{uuid.uuid4().hex[:24]}", body["model"], prompt_tokens(body)
    usage = {"input_tokens": prompt, "output_tokens": len(words), "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0}
    if not body.get("stream"):
        return await serve_json(request, key, {
            "id": mid, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "".join(words)}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": usage,
        }, headers)
    events = [
        sse("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}}),
        sse("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "text", "text": ""}}),
        sse("ping", {"type": "ping"}),
    ]
    events += [sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": w}}) for w in words]
    events += [
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                              "usage": {"output_tokens": len(words)}}),
        sse("message_stop", {"type": "message_stop"}),
    ]
    error = sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded (fake)."}})
    return await serve_stream(request, key, headers, events, error)


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """Anthropic's ``/v1/messages/count_tokens``: ``{"input_tokens": N}`` for the messages, system and tools."""
    start = await prologue(request, anthropic=True, no_messages=NO_MESSAGES)
    if isinstance(start, web.StreamResponse):
        return start
    key, body, headers = start
    tool_tokens = len(json.dumps(body.get("tools") or [])) // 4
    return await serve_json(request, key, {"input_tokens": prompt_tokens(body) + tool_tokens}, headers)


async def _serve_tool_use(request: web.Request, key: str, body: dict[str, Any],
                          headers: dict[str, str]) -> web.StreamResponse:
    """A message that says what it does, then calls the requested tool (``stop_reason: tool_use``)."""
    call = tools.requested_call(body)
    assert call is not None
    arguments = call.input if isinstance(call.input, dict) else {"input": call.input}
    preface = f"I will use the {call.name} tool."
    tool_use_id, mid, model = f"toolu_{uuid.uuid4().hex[:24]}", f"msg_{uuid.uuid4().hex[:24]}", body["model"]
    usage = {"input_tokens": prompt_tokens(body), "output_tokens": 20, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0}
    if not body.get("stream"):
        return await serve_json(request, key, {
            "id": mid, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": preface},
                        {"type": "tool_use", "id": tool_use_id, "name": call.name, "input": arguments}],
            "stop_reason": "tool_use", "stop_sequence": None, "usage": usage}, headers)

    def event(kind: str, **fields: Any) -> bytes:
        return sse(kind, {"type": kind, **fields})

    events = [
        event("message_start", message={"id": mid, "type": "message", "role": "assistant", "model": model,
                                        "content": [], "stop_reason": None, "stop_sequence": None,
                                        "usage": {**usage, "output_tokens": 1}}),
        event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        event("content_block_delta", index=0, delta={"type": "text_delta", "text": preface}),
        event("content_block_stop", index=0),
        event("content_block_start", index=1,
              content_block={"type": "tool_use", "id": tool_use_id, "name": call.name, "input": {}}),
        event("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": ""}),
    ]
    events += [event("content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": part})
               for part in tools.fragments(json.dumps(arguments))]
    events += [
        event("content_block_stop", index=1),
        event("message_delta", delta={"stop_reason": "tool_use", "stop_sequence": None},
              usage={"output_tokens": usage["output_tokens"]}),
        event("message_stop"),
    ]
    error = event("error", error={"type": "overloaded_error", "message": "Overloaded (fake)."})
    return await serve_stream(request, key, headers, events, error)

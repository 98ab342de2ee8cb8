"""OpenAI's ``/v1/chat/completions`` (text, or the tool call a request asks for) and ``/v1/embeddings``."""

from __future__ import annotations

import base64
import struct
import time
import uuid
from typing import Any

from aiohttp import web

from fake_upstream import tools
from fake_upstream.prologue import prologue
from fake_upstream.wire import answer_words, prompt_tokens, serve_json, serve_stream, sse, text_of

EMBEDDING_DIMENSIONS = 8


async def chat_completions(request: web.Request) -> web.StreamResponse:
    start = await prologue(request, anthropic=False, no_messages="messages: must be a non-empty array")
    if isinstance(start, web.StreamResponse):
        return start
    key, body, headers = start
    if tools.wants_tool(body):
        return await _serve_tool_call(request, key, body, headers)
    model, created, cid = body["model"], int(time.time()), f"chatcmpl-{uuid.uuid4().hex[:24]}"
    words = answer_words(body)
    prompt = prompt_tokens(body)
    usage = {"prompt_tokens": prompt, "completion_tokens": len(words), "total_tokens": prompt + len(words)}
    if not body.get("stream"):
        return await serve_json(request, key, {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": usage, "system_fingerprint": "fp_fake",
        }, headers)
    deltas = [{"role": "assistant", "content": ""}, *({"content": w} for w in words)]
    events = openai_chat_stream(body, cid, created, [(delta, None) for delta in deltas] + [({}, "stop")], usage)
    error = sse(None, {"error": {"message": "The server had an error while processing your request (fake).",
                                 "type": "server_error", "param": None, "code": "server_error"}})
    return await serve_stream(request, key, headers, events, error)


def openai_chat_stream(body: dict[str, Any], cid: str, created: int, deltas: list[tuple[dict[str, Any], str | None]],
                       usage: dict[str, int]) -> list[bytes]:
    """A streamed chat completion's SSE events: a chunk per (delta, finish_reason), then the usage chunk when the
    request asked for it (``stream_options.include_usage``), then ``[DONE]``."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": body["model"]}
    events = []
    for delta, finish in deltas:
        data: dict[str, Any] = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                                                     "logprobs": None}]}
        if include_usage:
            data["usage"] = None
        events.append(sse(None, data))
    if include_usage:
        events.append(sse(None, {**head, "choices": [], "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return events


async def embeddings(request: web.Request) -> web.StreamResponse:
    start = await prologue(request, anthropic=False)
    if isinstance(start, web.StreamResponse):
        return start
    key, body, headers = start
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    data = []
    for index, item in enumerate(items):
        vector = [((hash(str(item)) >> (i * 4)) % 1000) / 1000.0 for i in range(EMBEDDING_DIMENSIONS)]
        encoded: Any = vector
        if body.get("encoding_format") == "base64":
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    tokens = max(1, len(text_of(items)) // 4)
    return await serve_json(request, key, {"object": "list", "data": data, "model": body["model"],
                                           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}, headers)


async def _serve_tool_call(request: web.Request, key: str, body: dict[str, Any],
                           headers: dict[str, str]) -> web.StreamResponse:
    """A chat completion that calls the requested tool."""
    call = tools.requested_call(body)
    assert call is not None
    text = tools.call_arguments(call)
    call_id, cid = f"call_{uuid.uuid4().hex[:24]}", f"chatcmpl-{uuid.uuid4().hex[:24]}"
    created, model = int(time.time()), body["model"]
    prompt = prompt_tokens(body)
    usage = {"prompt_tokens": prompt, "completion_tokens": 12, "total_tokens": prompt + 12}
    if not body.get("stream"):
        message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": call.name, "arguments": text}}]}
        return await serve_json(request, key, {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls", "logprobs": None}],
            "usage": usage}, headers)
    first = {"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": call_id, "type": "function", "function": {"name": call.name, "arguments": ""}}]}
    parts = [{"tool_calls": [{"index": 0, "function": {"arguments": part}}]} for part in tools.fragments(text)]
    deltas: list[tuple[dict[str, Any], str | None]] = [(first, None), *((part, None) for part in parts)]
    events = openai_chat_stream(body, cid, created, [*deltas, ({}, "tool_calls")], usage)
    error = sse(None, {"error": {"message": "The server had an error (fake).", "type": "server_error",
                                 "param": None, "code": "server_error"}})
    return await serve_stream(request, key, headers, events, error)

"""OpenAI's ``/v1/responses``: a message, or the ``function_call`` / ``custom_tool_call`` item a request asks for."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from fake_upstream import tools
from fake_upstream.prologue import caller_key, prologue
from fake_upstream.state import count_request
from fake_upstream.wire import answer_words, prompt_tokens, serve_json, serve_stream, sse


async def responses(request: web.Request) -> web.StreamResponse:
    if "chatonly" in caller_key(request):
        count_request(request, caller_key(request))
        return web.json_response({"error": {"message": "Not found (fake upstream: this key's upstream has no "
                                            "Responses API).", "type": "invalid_request_error", "param": None,
                                            "code": "not_found"}}, status=404)
    start = await prologue(request, anthropic=False)
    if isinstance(start, web.StreamResponse):
        return start
    key, body, headers = start
    rid = f"resp_{uuid.uuid4().hex[:24]}"
    prompt = prompt_tokens(body)
    call = tools.requested_call(body)
    if call is not None:
        item, inner = tools.responses_call_item(call)
        partial = {**item, "status": "in_progress", "arguments" if "arguments" in item else "input": ""}
        written = 12
    else:
        words = answer_words(body)
        text, mid = "".join(words), f"msg_{uuid.uuid4().hex[:24]}"
        item = {"type": "message", "id": mid, "status": "completed", "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]}
        partial = {**item, "status": "in_progress", "content": []}
        part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        at = {"item_id": mid, "content_index": 0}
        inner = [("response.content_part.added", {**at, "part": part}),
                 *(("response.output_text.delta", {**at, "delta": w, "logprobs": []}) for w in words),
                 ("response.output_text.done", {**at, "text": text, "logprobs": []}),
                 ("response.content_part.done", {**at, "part": {**part, "text": text}})]
        written = len(words)
    usage = {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": written,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": prompt + written}
    created = int(time.time())

    def response_object(status: str, output: list[Any], with_usage: bool) -> dict[str, Any]:
        return {"id": rid, "object": "response", "created_at": created, "status": status,
                "model": body["model"], "output": output, "parallel_tool_calls": True, "tool_choice": "auto",
                "tools": body.get("tools") or [], "error": None, "incomplete_details": None,
                "instructions": body.get("instructions"), "metadata": {}, "temperature": 1.0, "top_p": 1.0,
                "usage": usage if with_usage else None}

    if not body.get("stream"):
        return await serve_json(request, key, response_object("completed", [item], True), headers)
    seq = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> bytes:
        return sse(kind, {"type": kind, "sequence_number": next(seq), **fields})

    events = [event("response.created", response=response_object("in_progress", [], False)),
              event("response.in_progress", response=response_object("in_progress", [], False)),
              event("response.output_item.added", output_index=0, item=partial)]
    events += [event(kind, output_index=0, **fields) for kind, fields in inner]
    events += [event("response.output_item.done", output_index=0, item=item),
               event("response.completed", response=response_object("completed", [item], True))]
    error = sse("error", {"type": "error", "code": "server_error", "message": "The server had an error (fake).",
                          "param": None, "sequence_number": 0})
    return await serve_stream(request, key, headers, events, error)

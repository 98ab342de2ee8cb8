"""What every endpoint but the model list does first: count the request, find the words that script its answer,
and answer the scripted failures, stalls and malformed bodies."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from typing import Any

from aiohttp import web

from fake_upstream.errors import Asked, error_answer, scripted_failure
from fake_upstream.limits import ratelimit_headers
from fake_upstream.state import LATENCY, STATS, count_request, minute_window, words_for
from fake_upstream.wire import serve_oddity

_SLOW = re.compile(r"slow(\d+)?")
STALL_SECONDS = 3600.0
"""How long ``silent`` and ``stall`` keep a request open (in practice: until the caller gives up)."""


def caller_key(request: web.Request) -> str:
    """The API key the request carries (``Authorization: Bearer`` or ``x-api-key``)."""
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "messages": (list,), "stream": (bool,), "stream_options": (dict,), "tools": (list,), "max_tokens": (int,),
    "system": (str, list), "input": (str, list), "encoding_format": (str,),
}


def _shape_problem(body: dict[str, Any]) -> str:
    """Why a real upstream would refuse the body with a 400 (a well-known field of the wrong type); empty if none."""
    for name, kinds in _FIELD_TYPES.items():
        value = body.get(name)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool) is not (bool in kinds)):
            return f"{name}: must be of type {' or '.join(kind.__name__ for kind in kinds)}"
    if any(not isinstance(message, dict) for message in body.get("messages") or []):
        return "messages: every item must be an object"
    return ""


async def _read_json(request: web.Request) -> Any:
    """The request's JSON body; _NOT_JSON if it is not JSON. A body over aiohttp's size limit (1 MiB) raises its 413,
    whatever the key's words."""
    try:
        return json.loads(await request.read())
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


async def _delay(request: web.Request, key: str) -> None:
    latency = request.app[LATENCY]
    match = _SLOW.search(key)
    if match:
        latency += int(match.group(1)) / 1000 if match.group(1) else 2.0
    if latency > 0:
        await asyncio.sleep(latency)


async def prologue(
    request: web.Request, anthropic: bool, no_messages: str = ""
) -> tuple[str, dict[str, Any], dict[str, str]] | web.StreamResponse:
    """What every endpoint but the model list does first: count the request, find the words that script its answer
    (the key's, or its script's for the model asked), and answer the scripted failures and malformed bodies (with
    ``no_messages``, the provider's message for a body without messages). Returns the words (which the handlers read
    as the key), the body and the headers of an answer; or the answer."""
    key = caller_key(request)
    age = count_request(request, key)
    parsed = await _read_json(request)
    model = parsed.get("model") if isinstance(parsed, dict) and isinstance(parsed.get("model"), str) else None
    if model is not None:
        request.app[STATS].models.setdefault(key, Counter())[model] += 1
    words = words_for(request.app, key, model)
    window = minute_window(request.app, key, 1.0 if "persecond" in words else 60.0)
    headers = ratelimit_headers(anthropic, *window, words)
    if not key:
        return error_answer(anthropic, 401, "authentication_error" if anthropic else "invalid_api_key",
                            "No API key provided (fake upstream).", headers)
    await _delay(request, words)
    if "hangup" in words or "silent" in words:
        if "silent" in words:
            await asyncio.sleep(STALL_SECONDS)
        assert request.transport is not None
        request.transport.close()
        return web.Response()  # never reaches the caller: the connection is gone
    failure = scripted_failure(words, anthropic, headers, age, Asked(request.path, model, parsed))
    if failure is not None:
        return failure
    if parsed is _NOT_JSON:
        return error_answer(anthropic, 400, "invalid_request_error", "The body is not valid JSON.", headers)
    body = parsed
    if not isinstance(body, dict) or model is None:
        return error_answer(anthropic, 400, "invalid_request_error", "model: field required", headers)
    problem = _shape_problem(body)
    if problem:
        return error_answer(anthropic, 400, "invalid_request_error", problem, headers)
    if "stall" in words:
        stream = bool(body.get("stream"))
        response = web.StreamResponse(headers={
            **headers, "Content-Type": "text/event-stream" if stream else "application/json"})
        await response.prepare(request)
        await asyncio.sleep(STALL_SECONDS)
        assert request.transport is not None
        request.transport.close()
        return web.Response()
    oddity = await serve_oddity(request, words, body, headers)
    if oddity is not None:
        return oddity
    if no_messages and not body.get("messages"):
        return error_answer(anthropic, 400, "invalid_request_error", no_messages, headers)
    if "jsonstream" in words:
        body = {**body, "stream": False}
    return words, body, headers

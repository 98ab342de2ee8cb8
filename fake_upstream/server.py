"""The fake upstream's application: its endpoints, stats and scripts (see the package's docstring)."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import struct
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from fake_upstream import tools as fake_tools
from poolgate.http_site import Site, start_site

REPLY = "Hello! This is the poolgate fake upstream answering your request."
EMBEDDING_DIMENSIONS = 8
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-5.5", "text-embedding-3-small", "claude-opus-5-5", "claude-sonnet-4-6",
          "claude-haiku-4-5")
"""What ``/v1/models`` lists (any model name is served); gpt-5.5 and claude-opus-5-5 are Codex CLI's and Claude
Code's defaults."""
CLAUDE_MODELS = tuple(m for m in MODELS if m.startswith("claude"))
_SLOW = re.compile(r"slow(\d+)?")
_DRIP = re.compile(r"drip(\d+)")
_RATE_LIMITED = re.compile(r"ratelimited(\d+)?")
_THROTTLED = re.compile(r"throttled(\d+)?")
_HUGE_EVENT = re.compile(r"hugeevent(\d+)?")
_HUGE_BODY = re.compile(r"hugebody(\d+)?")
_WINDOW = re.compile(r"window(\d+)")
_MIB = 1024 * 1024
_WRITE = 64 * 1024
STALL_SECONDS = 3600.0
"""How long ``silent`` and ``stall`` keep a request open (in practice: until the caller gives up)."""
_RANDOM = random.Random()


@dataclass
class FakeStats:
    requests: Counter[str] = field(default_factory=Counter)
    paths: dict[str, Counter[str]] = field(default_factory=dict)
    """key -> path (``/v1/responses`` …) -> requests."""
    models: dict[str, Counter[str]] = field(default_factory=dict)
    """key -> the model asked for (requests whose JSON body names one) -> requests."""
    first_seen: dict[str, float] = field(default_factory=dict)
    """When each key's first request arrived (monotonic seconds)."""
    arrivals: dict[str, deque[float]] = field(default_factory=dict)
    """When each key's latest requests arrived (monotonic seconds, the last ARRIVALS_KEPT)."""
    cancelled: int = 0
    in_flight: int = 0


ARRIVALS_KEPT = 1000
STATS = web.AppKey("stats", FakeStats)
SCRIPT = web.AppKey("script", dict[tuple[str, str | None], str])
"""(key, model) -> the words that script the key's answers for that model instead of the key's own; model None: for
every model without a script of its own."""
LATENCY = web.AppKey("latency", float)


def _key(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def _text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(_text_of(v) for v in value)
    if isinstance(value, dict):
        return " ".join(_text_of(v) for k, v in value.items() if k in ("content", "text", "input", "system"))
    return ""


def _prompt_tokens(body: dict[str, Any]) -> int:
    text = _text_of(body.get("messages")) + _text_of(body.get("input")) + _text_of(body.get("system"))
    return max(1, len(text) // 4)


def _ratelimit_headers(anthropic: bool, served: int, words: str) -> dict[str, str]:
    """The rate-limit headers of an answer: the per-minute limits, or the subscription window ``windowN`` /
    ``lowwindow`` in ``words`` describe."""
    quota = _window(words)
    if anthropic:
        if quota is not None:  # a subscription account: the unified window headers instead of the per-minute ones
            return {**_unified_headers(*quota), "request-id": f"req_{uuid.uuid4().hex[:24]}"}
        reset = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "anthropic-ratelimit-requests-limit": "4000",
            "anthropic-ratelimit-requests-remaining": str(max(0, 3999 - served)),
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-input-tokens-limit": "400000",
            "anthropic-ratelimit-input-tokens-remaining": "399000",
            "anthropic-ratelimit-input-tokens-reset": reset,
            "anthropic-ratelimit-output-tokens-limit": "80000",
            "anthropic-ratelimit-output-tokens-remaining": "79000",
            "anthropic-ratelimit-output-tokens-reset": reset,
            "request-id": f"req_{uuid.uuid4().hex[:24]}",
        }
    remaining, reset_requests = max(0, 9999 - served), "6ms"
    if quota is not None:
        status, _utilization, reset_in = quota
        remaining = 0 if status == "rejected" else OPENAI_REQUESTS_LIMIT * 5 // 100
        reset_requests = go_duration(reset_in)
    return {
        "x-ratelimit-limit-requests": str(OPENAI_REQUESTS_LIMIT),
        "x-ratelimit-remaining-requests": str(remaining),
        "x-ratelimit-reset-requests": reset_requests,
        "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-tokens": "1999000",
        "x-ratelimit-reset-tokens": "30ms",
        "x-request-id": f"req_{uuid.uuid4().hex[:24]}",
    }


OPENAI_REQUESTS_LIMIT = 10000
"""``x-ratelimit-limit-requests`` of every OpenAI answer."""
LOW_WINDOW = ("allowed_warning", 0.95, 3600)
"""``lowwindow``: the window's status, utilization and seconds to its reset."""


def _window(words: str) -> tuple[str, float, int] | None:
    """The subscription window ``words`` script (status, utilization, seconds to its reset); None for none."""
    exhausted = _WINDOW.search(words)
    if exhausted:
        return "rejected", 1.0, int(exhausted.group(1))
    return LOW_WINDOW if "lowwindow" in words else None


def _unified_headers(status: str, utilization: float, reset_in: int) -> dict[str, str]:
    """Anthropic's subscription-window headers, as its API sends them to Claude subscription (OAuth) accounts: the
    five-hour window is the representative claim, at ``status`` (allowed, allowed_warning, rejected) and
    ``utilization``, resetting in ``reset_in`` seconds; the seven-day window is allowed; overage is off."""
    now = int(time.time())
    reset = str(now + reset_in)
    headers = {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-reset": reset,
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-5h-status": status,
        "anthropic-ratelimit-unified-5h-reset": reset,
        "anthropic-ratelimit-unified-5h-utilization": str(utilization),
        "anthropic-ratelimit-unified-7d-status": "allowed",
        "anthropic-ratelimit-unified-7d-reset": str(now + 4 * 24 * 3600),
        "anthropic-ratelimit-unified-7d-utilization": "0.4",
        "anthropic-ratelimit-unified-fallback-percentage": "0.5",
        "anthropic-ratelimit-unified-overage-status": "rejected",
        "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
    }
    if status != "allowed":
        headers["anthropic-ratelimit-unified-5h-surpassed-threshold"] = "1.0" if status == "rejected" else "0.9"
    return headers


def go_duration(seconds: int) -> str:
    """``90`` -> ``1m30s``: a whole number of seconds as OpenAI writes its reset times (Go's ``time.Duration``)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _error(anthropic: bool, status: int, kind: str, message: str, headers: dict[str, str]) -> web.Response:
    """An error in the API's shape; Anthropic's body repeats the ``request-id`` header as ``request_id``."""
    if anthropic:
        request_id = headers.get("request-id") or f"req_{uuid.uuid4().hex[:24]}"
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
        return web.json_response(body, status=status, headers={**headers, "request-id": request_id})
    return _openai_error(status, message, kind, kind, None, headers)


def _openai_error(status: int, message: str, kind: str, code: str | None, param: str | None,
                  headers: dict[str, str]) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


@dataclass(frozen=True)
class _Asked:
    """What a request asked, for the answers that quote it."""

    path: str
    model: str | None
    body: Any
    """The parsed JSON body (anything, or _NOT_JSON)."""

    @property
    def prompt_tokens(self) -> int:
        return _prompt_tokens(self.body) if isinstance(self.body, dict) else 1


def _failure(key: str, anthropic: bool, headers: dict[str, str], age: float, asked: _Asked) -> web.Response | None:
    """The scripted error answer for ``key`` (its words), if any; ``age`` is the seconds since the key's first
    request."""
    if "flaky" in key:
        roll = _RANDOM.random()
        if roll < 0.10:
            return _error(anthropic, 429, "rate_limit_error", "Rate limit reached (fake upstream, flaky).",
                          {**headers, "retry-after": "1"})
        if roll < 0.12:
            return _error(anthropic, 500, "api_error" if anthropic else "server_error",
                          "Internal error (fake upstream, flaky).", headers)
    limited = _RATE_LIMITED.search(key)
    if limited:
        return _error(anthropic, 429, "rate_limit_error", "Rate limit reached for requests (fake upstream).",
                      {**headers, "retry-after": limited.group(1) or "30"})
    throttled = _THROTTLED.search(key)
    if throttled and (not throttled.group(1) or age * 1000 < int(throttled.group(1))):
        return _error(anthropic, 429, "rate_limit_error", "Rate limit reached for requests (fake upstream).", headers)
    if "overloaded" in key:
        return _error(anthropic, 529 if anthropic else 503, "overloaded_error", "Overloaded (fake upstream).", headers)
    if "unauthorized" in key:
        kind = "authentication_error" if anthropic else "invalid_api_key"
        return _error(anthropic, 401, kind, "Invalid API key (fake upstream).", headers)
    if "forbidden" in key:
        return _error(anthropic, 403, "permission_error", "This key may not use this model (fake upstream).", headers)
    if "echokey" in key:
        message = (f"Incorrect API key provided: {key[:8]}{'*' * max(0, len(key) - 12)}{key[-4:]}. You can find "
                   "your API key at https://platform.openai.com/account/api-keys.")
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                          "code": "invalid_api_key"}}
        return web.json_response(body, status=401, headers=headers)
    if "leakkey" in key:
        middle = len(key) // 2
        return _error(anthropic, 500, "api_error" if anthropic else "server_error",
                      f"Internal error for the key with {key[middle - 8:middle + 8]} (fake upstream).", headers)
    if "broken" in key:
        return _error(anthropic, 500, "api_error" if anthropic else "server_error", "Internal error (fake upstream).",
                      headers)
    return _quota_failure(key, anthropic, headers, asked)


def _quota_failure(key: str, anthropic: bool, headers: dict[str, str], asked: _Asked) -> web.Response | None:
    """The answers of ``nocredit``, ``contextlimit``, ``gemini429`` and ``windowN`` keys, in the real providers'
    words; None for other keys."""
    if "nocredit" in key:
        if anthropic:
            return _error(True, 400, "invalid_request_error", ANTHROPIC_NO_CREDIT, headers)
        return _openai_error(429, OPENAI_NO_CREDIT, "insufficient_quota", "insufficient_quota", None, headers)
    if "contextlimit" in key:
        if anthropic:
            return _error(True, 400, "invalid_request_error",
                          f"prompt is too long: {200_000 + asked.prompt_tokens} tokens > 200000 maximum", headers)
        if asked.path.endswith("/responses"):
            return _openai_error(400, "Your input exceeds the context window of this model. Please adjust your input "
                                 "and try again.", "invalid_request_error", "context_length_exceeded", "input", headers)
        return _openai_error(400, f"This model's maximum context length is 128000 tokens. However, your messages "
                             f"resulted in {128_000 + asked.prompt_tokens} tokens. Please reduce the length of the "
                             "messages.", "invalid_request_error", "context_length_exceeded", "messages", headers)
    if "gemini429" in key:
        return web.json_response(GEMINI_EXHAUSTED, status=429)
    window = _WINDOW.search(key)
    if window:
        if anthropic:
            return _error(True, 429, "rate_limit_error", "This request would exceed your account's rate limit. "
                          "Please try again later.", {**headers, "retry-after": window.group(1)})
        message = (f"Rate limit reached for {asked.model or 'this model'} in organization org-fake on requests per "
                   f"day (RPD): Limit {OPENAI_REQUESTS_LIMIT}, Used {OPENAI_REQUESTS_LIMIT}, Requested 1. Please try "
                   f"again in {go_duration(int(window.group(1)))}. Visit https://platform.openai.com/account/"
                   "rate-limits to learn more.")
        return _openai_error(429, message, "requests", "rate_limit_exceeded", None, headers)
    return None


OPENAI_NO_CREDIT = ("You exceeded your current quota, please check your plan and billing details. For more information "
                    "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.")
ANTHROPIC_NO_CREDIT = ("Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
                       "upgrade or purchase credits.")
GEMINI_EXHAUSTED = [{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                               "status": "RESOURCE_EXHAUSTED"}}]
"""The body of a 429 from Gemini's OpenAI-compatible endpoint: a list holding one Google API error."""


async def _delay(request: web.Request, key: str) -> None:
    latency = request.app[LATENCY]
    match = _SLOW.search(key)
    if match:
        latency += int(match.group(1)) / 1000 if match.group(1) else 2.0
    if latency > 0:
        await asyncio.sleep(latency)


def _sse(event: str | None, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\ndata: {payload}\n\n" if event else f"data: {payload}\n\n").encode()


async def _serve_stream(request: web.Request, key: str, headers: dict[str, str], events: list[bytes],
                        error_event: bytes) -> web.StreamResponse:
    """Write ``events``; the key's script may drop the connection or slip in ``error_event``."""
    response = web.StreamResponse(headers={**headers, "Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    if "errorevent" in key:
        await response.write(error_event)
        await response.write_eof()
        return response
    drip = _DRIP.search(key)
    pause = int(drip.group(1)) / 1000 if drip else 0.0
    huge = _HUGE_EVENT.search(key)
    for index, event in enumerate(events):
        if pause and index:
            await asyncio.sleep(pause)
        if index == 1 and huge:
            await _write_huge(response, b'data: {"huge": "', int(huge.group(1) or 100) * _MIB, b'"}\n\n')
        await response.write(event)
        if index == 0 and "midstream" in key:
            await asyncio.sleep(0.05)  # as a real drop: some time after the stream started
            assert request.transport is not None
            request.transport.close()
            return response
        if index == 1 and "lateerror" in key:
            await asyncio.sleep(0.05)
            await response.write(error_event)
            break
    await response.write_eof()
    return response


async def _write_huge(response: web.StreamResponse, head: bytes, size: int, tail: bytes) -> None:
    """``head``, ``size`` bytes of ``x``, ``tail``: a huge JSON string written in 64 KiB pieces."""
    await response.write(head)
    piece = b"x" * _WRITE
    for _ in range(size // _WRITE):
        await response.write(piece)
    await response.write(b"x" * (size % _WRITE) + tail)


async def _serve_oddity(request: web.Request, key: str, body: dict[str, Any],
                        headers: dict[str, str]) -> web.StreamResponse | None:
    """The answer of ``hugebody``, ``notjson`` and ``jsonstream`` keys; None for other keys."""
    if "notjson" in key:
        return web.Response(body=b"<html><body>502 Bad Gateway</body></html>", headers=headers,
                            content_type="application/json")
    huge = _HUGE_BODY.search(key)
    if huge and not body.get("stream"):
        response = web.StreamResponse(headers={**headers, "Content-Type": "application/json"})
        await response.prepare(request)
        await _write_huge(response, b'{"object": "chat.completion", "huge": "', int(huge.group(1) or 100) * _MIB,
                          b'", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}')
        await response.write_eof()
        return response
    return None


async def _serve_json(
    request: web.Request, key: str, body: dict[str, Any], headers: dict[str, str]
) -> web.StreamResponse:
    data = json.dumps(body).encode()
    if "midstream" not in key:
        return web.Response(body=data, headers=headers, content_type="application/json")
    response = web.StreamResponse(headers={**headers, "Content-Type": "application/json"})
    response.content_length = len(data)
    await response.prepare(request)
    await response.write(data[: len(data) // 2])
    assert request.transport is not None
    request.transport.close()
    return response


def _words() -> list[str]:
    words = REPLY.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


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


def _count(request: web.Request, key: str) -> float:
    """Count the request in the stats; returns the seconds since the key's first request."""
    stats = request.app[STATS]
    stats.requests[key] += 1
    stats.paths.setdefault(key, Counter())[request.path] += 1
    now = time.monotonic()
    stats.arrivals.setdefault(key, deque(maxlen=ARRIVALS_KEPT)).append(now)
    return now - stats.first_seen.setdefault(key, now)


def _words_for(app: web.Application, key: str, model: str | None) -> str:
    """The words that script ``key``'s answers for ``model``: its per-model script, else its key-wide one, else the
    key itself."""
    scripts = app[SCRIPT]
    if model is not None and (key, model) in scripts:
        return scripts[key, model]
    return scripts.get((key, None), key)


async def _read_json(request: web.Request) -> Any:
    """The request's JSON body; _NOT_JSON if it is not JSON. A body over aiohttp's size limit (1 MiB) raises its 413,
    whatever the key's words."""
    try:
        return json.loads(await request.read())
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


async def _prologue(
    request: web.Request, anthropic: bool
) -> tuple[str, dict[str, Any], dict[str, str]] | web.StreamResponse:
    """What every endpoint but the model list does first: count the request, find the words that script its answer
    (the key's, or its script's for the model asked), and answer the scripted failures and malformed bodies. Returns
    the words (which the handlers read as the key), the body and the headers of an answer; or the answer."""
    key = _key(request)
    age = _count(request, key)
    parsed = await _read_json(request)
    model = parsed.get("model") if isinstance(parsed, dict) and isinstance(parsed.get("model"), str) else None
    if model is not None:
        request.app[STATS].models.setdefault(key, Counter())[model] += 1
    words = _words_for(request.app, key, model)
    headers = _ratelimit_headers(anthropic, request.app[STATS].requests[key], words)
    if not key:
        return _error(anthropic, 401, "authentication_error" if anthropic else "invalid_api_key",
                      "No API key provided (fake upstream).", headers)
    await _delay(request, words)
    if "hangup" in words or "silent" in words:
        if "silent" in words:
            await asyncio.sleep(STALL_SECONDS)
        assert request.transport is not None
        request.transport.close()
        return web.Response()  # never reaches the caller: the connection is gone
    failure = _failure(words, anthropic, headers, age, _Asked(request.path, model, parsed))
    if failure is not None:
        return failure
    if parsed is _NOT_JSON:
        return _error(anthropic, 400, "invalid_request_error", "The body is not valid JSON.", headers)
    body = parsed
    if not isinstance(body, dict) or model is None:
        return _error(anthropic, 400, "invalid_request_error", "model: field required", headers)
    problem = _shape_problem(body)
    if problem:
        return _error(anthropic, 400, "invalid_request_error", problem, headers)
    if "stall" in words:
        stream = bool(body.get("stream"))
        response = web.StreamResponse(headers={
            **headers, "Content-Type": "text/event-stream" if stream else "application/json"})
        await response.prepare(request)
        await asyncio.sleep(STALL_SECONDS)
        assert request.transport is not None
        request.transport.close()
        return web.Response()
    oddity = await _serve_oddity(request, words, body, headers)
    if oddity is not None:
        return oddity
    if "jsonstream" in words:
        body = {**body, "stream": False}
    return words, body, headers


async def chat_completions(request: web.Request) -> web.StreamResponse:
    start = await _prologue(request, anthropic=False)
    if isinstance(start, web.StreamResponse):
        return start
    key, body, headers = start
    if not body.get("messages"):
        return _error(False, 400, "invalid_request_error", "messages: must be a non-empty array", headers)
    if fake_tools.wants_tool(body):
        return await fake_tools.serve_openai(request, key, body, headers)
    model, created, cid = body["model"], int(time.time()), f"chatcmpl-{uuid.uuid4().hex[:24]}"
    words = fake_tools.reply_words(body) or _words()
    prompt = _prompt_tokens(body)
    usage = {"prompt_tokens": prompt, "completion_tokens": len(words), "total_tokens": prompt + len(words)}
    if not body.get("stream"):
        return await _serve_json(request, key, {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)},
                         "finish_reason": "stop", "logprobs": None}],
            "usage": usage, "system_fingerprint": "fp_fake",
        }, headers)
    deltas = [{"role": "assistant", "content": ""}, *({"content": w} for w in words)]
    events = openai_chat_stream(body, cid, created, [(delta, None) for delta in deltas] + [({}, "stop")], usage)
    error = _sse(None, {"error": {"message": "The server had an error while processing your request (fake).",
                                  "type": "server_error", "param": None, "code": "server_error"}})
    return await _serve_stream(request, key, headers, events, error)


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
        events.append(_sse(None, data))
    if include_usage:
        events.append(_sse(None, {**head, "choices": [], "usage": usage}))
    events.append(b"data: [DONE]\n\n")
    return events


async def responses(request: web.Request) -> web.StreamResponse:
    if "chatonly" in _key(request):
        _count(request, _key(request))
        return web.json_response({"error": {"message": "Not found (fake upstream: this key's upstream has no "
                                            "Responses API).", "type": "invalid_request_error", "param": None,
                                            "code": "not_found"}}, status=404)
    start = await _prologue(request, anthropic=False)
    if isinstance(start, web.StreamResponse):
        return start
    key, body, headers = start
    rid = f"resp_{uuid.uuid4().hex[:24]}"
    prompt = _prompt_tokens(body)
    call = fake_tools.requested_call(body)
    if call is not None:
        item, inner = fake_tools.responses_call_item(call)
        partial = {**item, "status": "in_progress", "arguments" if "arguments" in item else "input": ""}
        written = 12
    else:
        words = fake_tools.reply_words(body) or _words()
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
        return await _serve_json(request, key, response_object("completed", [item], True), headers)
    seq = iter(range(1_000_000))

    def event(kind: str, **fields: Any) -> bytes:
        return _sse(kind, {"type": kind, "sequence_number": next(seq), **fields})

    events = [event("response.created", response=response_object("in_progress", [], False)),
              event("response.in_progress", response=response_object("in_progress", [], False)),
              event("response.output_item.added", output_index=0, item=partial)]
    events += [event(kind, output_index=0, **fields) for kind, fields in inner]
    events += [event("response.output_item.done", output_index=0, item=item),
               event("response.completed", response=response_object("completed", [item], True))]
    error = _sse("error", {"type": "error", "code": "server_error", "message": "The server had an error (fake).",
                           "param": None, "sequence_number": 0})
    return await _serve_stream(request, key, headers, events, error)


async def embeddings(request: web.Request) -> web.StreamResponse:
    start = await _prologue(request, anthropic=False)
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
    tokens = max(1, len(_text_of(items)) // 4)
    return await _serve_json(request, key, {"object": "list", "data": data, "model": body["model"],
                                            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}, headers)


async def messages(request: web.Request) -> web.StreamResponse:
    start = await _prologue(request, anthropic=True)
    if isinstance(start, web.StreamResponse):
        return start
    key, body, headers = start
    if not body.get("messages"):
        return _error(True, 400, "invalid_request_error", "messages: at least one message is required", headers)
    if fake_tools.wants_tool(body):
        return await fake_tools.serve_anthropic(request, key, body, headers)
    words = fake_tools.reply_words(body) or _words()
    mid, model, prompt = f"msg_{uuid.uuid4().hex[:24]}", body["model"], _prompt_tokens(body)
    usage = {"input_tokens": prompt, "output_tokens": len(words), "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 0}
    if not body.get("stream"):
        return await _serve_json(request, key, {
            "id": mid, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "".join(words)}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": usage,
        }, headers)
    events = [
        _sse("message_start", {"type": "message_start", "message": {
            "id": mid, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": None,
            "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}}),
        _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
        _sse("ping", {"type": "ping"}),
    ]
    events += [_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": w}}) for w in words]
    events += [
        _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        _sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": len(words)}}),
        _sse("message_stop", {"type": "message_stop"}),
    ]
    error = _sse("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded (fake)."}})
    return await _serve_stream(request, key, headers, events, error)


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """Anthropic's ``/v1/messages/count_tokens``: ``{"input_tokens": N}`` for the messages, system and tools."""
    start = await _prologue(request, anthropic=True)
    if isinstance(start, web.StreamResponse):
        return start
    key, body, headers = start
    if not body.get("messages"):
        return _error(True, 400, "invalid_request_error", "messages: at least one message is required", headers)
    tools = len(json.dumps(body.get("tools") or [])) // 4
    return await _serve_json(request, key, {"input_tokens": _prompt_tokens(body) + tools}, headers)


def _display_name(model: str) -> str:
    """``claude-sonnet-4-6`` -> ``Claude Sonnet 4.6``."""
    words = model.split("-")
    numbers = [w for w in words if w.isdigit()]
    return " ".join([*(w.capitalize() for w in words if not w.isdigit()), ".".join(numbers)]).strip()


def _model_entry(model: str, anthropic: bool) -> dict[str, Any]:
    if anthropic:
        return {"type": "model", "id": model, "display_name": _display_name(model),
                "created_at": "2025-10-01T00:00:00Z"}
    return {"id": model, "object": "model", "created": 1700000000, "owned_by": "fake"}


async def models(request: web.Request) -> web.Response:
    """The model list in the shape of the API asked: Anthropic's when the request carries ``anthropic-version``."""
    if "anthropic-version" not in request.headers:
        return web.json_response({"object": "list", "data": [_model_entry(m, False) for m in MODELS]})
    return web.json_response({"data": [_model_entry(m, True) for m in CLAUDE_MODELS],
                              "has_more": False, "first_id": CLAUDE_MODELS[0], "last_id": CLAUDE_MODELS[-1]})


async def model(request: web.Request) -> web.Response:
    """One model (``/v1/models/{id}``); an unknown id is a 404 in the real error shape."""
    anthropic = "anthropic-version" in request.headers
    name = request.match_info["model"]
    if name in (CLAUDE_MODELS if anthropic else MODELS):
        return web.json_response(_model_entry(name, anthropic))
    if anthropic:
        return _error(True, 404, "not_found_error", f"model: {name}", {})
    return web.json_response({"error": {"message": f"The model '{name}' does not exist", "type":
                                        "invalid_request_error", "param": "model", "code": "model_not_found"}},
                             status=404)


async def stats(request: web.Request) -> web.Response:
    s = request.app[STATS]
    return web.json_response({"requests": dict(s.requests), "paths": {key: dict(c) for key, c in s.paths.items()},
                              "models": {key: dict(c) for key, c in s.models.items()},
                              "cancelled": s.cancelled, "in_flight": s.in_flight,
                              "arrivals": {key: list(times) for key, times in s.arrivals.items()}})


async def script(request: web.Request) -> web.Response:
    """``POST /_fake/script`` ``{"key": ..., "words": ... or null, "model": ... (optional)}``."""
    try:
        body = await request.json()
        key, words, model = body["key"], body["words"], body.get("model")
        if not isinstance(key, str) or any(v is not None and not isinstance(v, str) for v in (words, model)):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        return web.json_response({"error": 'send {"key": "...", "words": "..." or null, "model": "..." (optional)}'},
                                 status=400)
    _set_script(request.app, key, words, model)
    return web.json_response({"scripted": len(request.app[SCRIPT])})


def _set_script(app: web.Application, key: str, words: str | None, model: str | None) -> None:
    if words is None:
        app[SCRIPT].pop((key, model), None)
    else:
        app[SCRIPT][key, model] = words


@web.middleware
async def _track(request: web.Request, handler: Any) -> web.StreamResponse:
    s = request.app[STATS]
    s.in_flight += 1
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except asyncio.CancelledError:
        s.cancelled += 1
        raise
    finally:
        s.in_flight -= 1


def create_fake_app(latency: float = 0.0) -> web.Application:
    """The fake upstream's application; ``latency`` seconds pass before every answer."""
    app = web.Application(middlewares=[_track])
    app[STATS] = FakeStats()
    app[SCRIPT] = {}
    app[LATENCY] = latency
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_post(f"{prefix}/responses", responses)
        app.router.add_post(f"{prefix}/embeddings", embeddings)
        app.router.add_post(f"{prefix}/messages", messages)
        app.router.add_post(f"{prefix}/messages/count_tokens", count_tokens)
        app.router.add_get(f"{prefix}/models", models)
        app.router.add_get(f"{prefix}/models/{{model}}", model)
    app.router.add_get("/_fake/stats", stats)
    app.router.add_post("/_fake/script", script)
    return app


class FakeUpstream(Site):
    """A running fake upstream; ``url`` is its base URL without a path."""

    @property
    def stats(self) -> FakeStats:
        return self.runner.app[STATS]

    def script(self, key: str, words: str | None, model: str | None = None) -> None:
        """Answer ``key``'s requests as if the key held ``words`` (``throttled``, ``unauthorized``, ``ok`` …); with
        ``model``, only its requests for that model (a model's script wins over the key-wide one). None undoes that
        one script: the key-wide one, or with ``model`` that model's."""
        _set_script(self.runner.app, key, words, model)


async def start_fake_upstream(host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> FakeUpstream:
    """Start the fake upstream in this event loop (port 0 picks a free port)."""
    runner, bound = await start_site(create_fake_app(latency), host, port, shutdown_timeout=2,
                                     handler_cancellation=True)
    return FakeUpstream(runner, host, bound)

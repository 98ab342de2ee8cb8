"""How the fake writes an answer: JSON bodies and SSE events, with the key's stream scripts (``midstream``,
``dripN``, ``hugeevent`` …) and odd bodies (``hugebody``, ``notjson``); the reply text and token counts."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from aiohttp import web

from fake_upstream import tools

REPLY = "Hello! This is the poolgate fake upstream answering your request."
_DRIP = re.compile(r"drip(\d+)")
_HUGE_EVENT = re.compile(r"hugeevent(\d+)?")
_HUGE_BODY = re.compile(r"hugebody(\d+)?")
_MIB = 1024 * 1024
_WRITE = 64 * 1024


def text_of(value: Any) -> str:
    """The text in a request's ``messages``, ``input`` or ``system`` (strings, lists and content blocks)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(text_of(v) for v in value)
    if isinstance(value, dict):
        return " ".join(text_of(v) for k, v in value.items() if k in ("content", "text", "input", "system"))
    return ""


def prompt_tokens(body: dict[str, Any]) -> int:
    """A request's prompt tokens, as the fake counts them: four characters of text a token."""
    text = text_of(body.get("messages")) + text_of(body.get("input")) + text_of(body.get("system"))
    return max(1, len(text) // 4)


def _words() -> list[str]:
    words = REPLY.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def sse(event: str | None, data: Any) -> bytes:
    """One server-sent event: ``data`` (JSON unless a string), named ``event`` when given."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\ndata: {payload}\n\n" if event else f"data: {payload}\n\n").encode()


async def serve_stream(request: web.Request, key: str, headers: dict[str, str], events: list[bytes],
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


async def serve_oddity(request: web.Request, key: str, body: dict[str, Any],
                       headers: dict[str, str]) -> web.StreamResponse | None:
    """The answer of ``hugebody`` and ``notjson`` keys; None for other keys."""
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


async def serve_json(
    request: web.Request, key: str, body: dict[str, Any], headers: dict[str, str]
) -> web.StreamResponse:
    """``body`` as JSON; a ``midstream`` key's connection drops halfway through it."""
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


def answer_words(body: dict[str, Any]) -> list[str]:
    """The words of a text answer: quoting the tool result the request ends with, else the fake's reply."""
    return tools.reply_words(body) or _words()

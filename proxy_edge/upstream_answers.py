"""An upstream's answer: read within the edge's limits, its error message, and the headers the client gets."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import orjson
from multidict import CIMultiDict

from proxy_edge.endpoints import Job
from proxy_edge.errors import ApiShape, error_body_message
from proxy_edge.headers import client_response_headers
from proxy_edge.streaming import json_or_none

__all__ = ["ACCOUNT_HEADER", "FULL_JSON_CHECK", "client_headers", "is_json", "network_detail", "read_body",
           "read_capped", "upstream_message", "upstream_shape"]

ACCOUNT_HEADER = "x-poolgate-account"
"""Response header naming the account that served (``pool/name``; never a credential)."""


async def read_body(upstream: aiohttp.ClientResponse, limit: int, idle: float | None = None) -> bytes | None:
    """The whole body, or None as soon as it proves longer than ``limit`` bytes (the rest is not read);
    ``idle``: the longest pause between chunks (None: the request's own ``sock_read``)."""
    length = upstream.content_length
    if length is not None and length > limit and not upstream.headers.get("Content-Encoding"):
        return None
    body, cut = await read_capped(upstream, limit, idle, keep_cut=False)
    return None if cut else body


async def read_capped(upstream: aiohttp.ClientResponse, cap: int, idle: float | None = None,
                      keep_cut: bool = True) -> tuple[bytes, bool]:
    """At most ``cap`` bytes of the body, and whether there was more (then the rest is not read; with
    ``keep_cut=False`` nothing is returned of a body that was cut, so it is never joined in memory)."""
    content = upstream.content
    parts: list[bytes] = []
    size = 0
    while True:
        if idle is None:
            chunk = await content.readany()
        else:
            async with asyncio.timeout(idle):
                chunk = await content.readany()
        if not chunk:
            return b"".join(parts), False
        size += len(chunk)
        if size > cap:
            if not keep_cut:
                return b"", True
            parts.append(chunk[:len(chunk) - (size - cap)])
            return b"".join(parts), True
        parts.append(chunk)


FULL_JSON_CHECK = 1024 * 1024
"""Bodies up to this size are parsed to check they are JSON; larger ones (embeddings) only for their frame."""


def is_json(body: bytes) -> bool:
    """Whether ``body`` is a JSON answer: parsed in full up to :data:`FULL_JSON_CHECK` bytes; beyond that, valid
    UTF-8 that holds one object or array from its first byte to its last (a cut or foreign body fails this too)."""
    if len(body) <= FULL_JSON_CHECK:
        try:
            orjson.loads(body)
            return True
        except orjson.JSONDecodeError:
            pass
        try:  # what orjson refuses but the standard library reads (NaN, Infinity, lone surrogates) is JSON too
            json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return False
        return True
    framed = body.strip()
    if (framed[:1], framed[-1:]) not in ((b"{", b"}"), (b"[", b"]")):
        return False
    try:
        framed.decode()
    except UnicodeDecodeError:
        return False
    return True


def upstream_message(body: bytes, status: int) -> str:
    """The upstream's error message from an OpenAI-, Anthropic- or Gemini-shaped body (for logs and the selector)."""
    data = json_or_none(body)
    if isinstance(data, list) and data:
        data = data[0]
    message = error_body_message(data)
    if message is not None:
        return f"{status} {message}"[:300]
    text = body[:200].decode(errors="replace").strip()
    return f"{status} {text}" if text else f"HTTP {status}"


def network_detail(exc: BaseException) -> str:
    """A network failure in a few words (its type and message, at most 200 characters)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def client_headers(upstream: aiohttp.ClientResponse, job: Job, account_id: str) -> CIMultiDict[str]:
    """The headers of the client's response: the upstream's that pass on, the serving account, the job's own."""
    headers = client_response_headers(upstream.headers.items())
    headers[ACCOUNT_HEADER] = account_id
    headers.update(job.response_headers)
    return headers


def upstream_shape(job: Job) -> ApiShape:
    """The API shape of the pool's upstream (a translated request's errors are translated for the client)."""
    return ApiShape.ANTHROPIC if job.upstream.pool_format == "anthropic" else ApiShape.OPENAI

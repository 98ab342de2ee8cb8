"""The forwarded endpoints and how a client's request body becomes an upstream job.

The body is parsed once for what the edge needs (model, stream, session key) and forwarded as received, unless the
edge has to change it: another upstream model name, or asking an OpenAI upstream for stream usage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from proxy_edge.errors import ApiShape
from proxy_edge.routing import Route, Router
from proxy_edge.streaming import StreamKind


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str
    client_path: str
    upstream_path: str
    """Appended to the pool's base URL (OpenAI base URLs end in /v1, Anthropic's do not)."""
    shape: ApiShape
    pool_format: str
    stream_kind: StreamKind | None
    """None when the endpoint does not stream."""


CHAT = Endpoint("chat", "/v1/chat/completions", "/chat/completions", ApiShape.OPENAI, "openai", StreamKind.CHAT)
RESPONSES = Endpoint("responses", "/v1/responses", "/responses", ApiShape.OPENAI, "openai", StreamKind.RESPONSES)
EMBEDDINGS = Endpoint("embeddings", "/v1/embeddings", "/embeddings", ApiShape.OPENAI, "openai", None)
MESSAGES = Endpoint("messages", "/v1/messages", "/v1/messages", ApiShape.ANTHROPIC, "anthropic", StreamKind.ANTHROPIC)
FORWARDED = (CHAT, RESPONSES, EMBEDDINGS, MESSAGES)
_ENDPOINT_FOR_FORMAT = {"openai": CHAT.client_path, "anthropic": MESSAGES.client_path}


class InputError(Exception):
    """The client's request cannot be served as sent; nothing was forwarded."""

    def __init__(self, status: int, message: str, code: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass(slots=True)
class Job:
    """One client request, ready to forward to whichever account the selector leases."""

    endpoint: Endpoint
    route: Route
    requested_model: str
    body: bytes
    stream: bool
    strip_usage: bool
    """The edge added ``stream_options.include_usage``; the usage-only chunk is not passed to the client."""
    session_key: str


def parse_job(raw: bytes, endpoint: Endpoint, router: Router, session_header: str | None) -> Job:
    """Validate the body and route it; raises :class:`InputError` (400/404) in words the client can act on."""
    if not raw.strip():
        raise InputError(400, 'the request body is empty: send a JSON object with at least "model"', "empty_body")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        message = f"the request body is not valid JSON{where}: send a JSON object"
        raise InputError(400, message, "invalid_json") from None
    if not isinstance(data, dict):
        raise InputError(400, f"the request body must be a JSON object, got a JSON {type(data).__name__}",
                         "invalid_body")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InputError(400, 'missing "model": name the model to use (GET /v1/models lists them)', "missing_model")
    route = router.resolve(model)
    if route is None:
        raise InputError(404, f"model {model!r} is not served here; {router.describe_served()}", "model_not_found")
    if route.format != endpoint.pool_format:
        hint = _ENDPOINT_FOR_FORMAT.get(route.format, "")
        raise InputError(400, (
            f"model {model!r} is served by pool {route.pool!r}, which speaks the {route.format} API, but "
            f"{endpoint.client_path} needs a {endpoint.pool_format} pool" + (f"; call {hint} instead" if hint else "")
        ), "wrong_endpoint")
    stream = endpoint.stream_kind is not None and data.get("stream") is True
    changed = False
    if route.upstream_model != model:
        data["model"] = route.upstream_model
        changed = True
    strip_usage = False
    if stream and endpoint.stream_kind is StreamKind.CHAT:
        options = data.get("stream_options")
        if not (isinstance(options, dict) and options.get("include_usage") is True):
            data["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            strip_usage = changed = True
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() if changed else raw
    return Job(endpoint, route, model, body, stream, strip_usage, session_key(data, session_header))


def session_key(data: dict[str, Any], session_header: str | None) -> str:
    """``x-session-id`` header, else OpenAI ``user`` / ``prompt_cache_key``, else Anthropic ``metadata.user_id``."""
    if session_header:
        return session_header
    for field in ("user", "prompt_cache_key"):
        value = data.get(field)
        if isinstance(value, str) and value:
            return value
    metadata = data.get("metadata")
    if isinstance(metadata, dict):
        value = metadata.get("user_id")
        if isinstance(value, str) and value:
            return value
    return ""

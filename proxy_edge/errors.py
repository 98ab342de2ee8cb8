"""Errors in the client's API shape: OpenAI or Anthropic, as a JSON response or as an SSE event."""

from __future__ import annotations

import json
from enum import Enum

from aiohttp import web


class ApiShape(Enum):
    """Which provider's API the client speaks (decided by the endpoint it called)."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"


_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def anthropic_type(status: int) -> str:
    """Anthropic's error ``type`` for an HTTP status."""
    return _ANTHROPIC_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(shape: ApiShape, status: int, message: str, code: str | None = None) -> dict[str, object]:
    """The JSON error object a client of ``shape`` expects for ``status``."""
    if shape is ApiShape.ANTHROPIC:
        return {"type": "error", "error": {"type": anthropic_type(status), "message": message}}
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def error_body_message(data: object) -> str | None:
    """The message of a parsed OpenAI- or Anthropic-shaped error body (``error.message``, or ``error`` when it is a
    string); None when it has none."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return error if isinstance(error, str) else None


SHOULD_RETRY = "x-should-retry"
"""The header the official SDKs (and the coding agents built on them) obey over their own retry rules."""
RETRYABLE = frozenset({408, 409, 429})
"""Client errors a retry can fix (as for the SDKs); every 5xx is retryable unless the answer says otherwise."""


def error_response(
    shape: ApiShape,
    status: int,
    message: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    retry: bool | None = None,
) -> web.Response:
    """A JSON error response in the client's API shape.

    An answer that a retry cannot fix (``retry=False``, and by default every 4xx but 408, 409 and 429) carries
    ``x-should-retry: false``: clients that retry even a 401 (Claude Code does) stop at once instead of looping."""
    if retry is None:
        retry = status >= 500 or status in RETRYABLE
    response = web.Response(
        status=status,
        body=json.dumps(error_body(shape, status, message, code)).encode(),
        content_type="application/json",
        headers=headers,
    )
    if not retry:
        response.headers[SHOULD_RETRY] = "false"
    return response


def param_error(param: str | None, message: str, code: str = "invalid_parameter", status: int = 400) -> web.Response:
    """An error in OpenAI's shape whose ``param`` names the query parameter at fault."""
    body = error_body(ApiShape.OPENAI, status, message, code)
    body["error"]["param"] = param  # type: ignore[index]
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")


def sse_error_event(shape: ApiShape, status: int, message: str, code: str | None = None,
                    responses: bool = False) -> bytes:
    """An error ending a stream: ``event: error`` (Anthropic), a ``data: {"error": …}`` chunk (OpenAI Chat), or for
    the Responses API (``responses``) an ``error`` event then ``response.failed``, as OpenAI ends a failed response
    (clients such as Codex CLI wait for ``response.completed`` or ``response.failed``)."""
    if responses:
        code = code or _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        error = json.dumps({"type": "error", "code": code, "message": message, "param": None})
        failed = json.dumps({"type": "response.failed", "response": {
            "id": "resp_failed", "object": "response", "status": "failed", "output": [],
            "error": {"code": code, "message": message}}})
        return f"event: error\ndata: {error}\n\nevent: response.failed\ndata: {failed}\n\n".encode()
    data = json.dumps(error_body(shape, status, message, code))
    if shape is ApiShape.ANTHROPIC:
        return f"event: error\ndata: {data}\n\n".encode()
    return f"data: {data}\n\n".encode()


def unauthorized(shape: ApiShape = ApiShape.OPENAI) -> web.Response:
    """401: the client presented none of the edge's keys."""
    return error_response(shape, 401, (
        "missing or wrong API key: send one of the edge's keys (edge.api_keys) as "
        "'Authorization: Bearer <key>' or 'x-api-key: <key>'"), "invalid_api_key")

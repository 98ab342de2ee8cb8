"""Upstream errors in the client's shape: OpenAI ``{"error": {...}}`` <-> Anthropic ``{"type": "error", ...}``.

The HTTP status is kept; only the body changes. A body already in the client's shape (an error the edge made
itself) is left as it is.
"""

from __future__ import annotations

import json
from typing import Any

from proxy_edge.errors import ApiShape, anthropic_type, error_body, error_body_message, sse_error_event
from proxy_edge.streaming import error_status, json_or_none

_OPENAI_TYPES = {
    "authentication_error": "invalid_request_error", "permission_error": "invalid_request_error",
    "not_found_error": "invalid_request_error", "request_too_large": "invalid_request_error",
    "api_error": "server_error", "overloaded_error": "server_error",
}


def _message(data: Any, body: bytes, status: int) -> str:
    message = error_body_message(data)
    if message is not None:
        return message
    text = body[:500].decode(errors="replace").strip()
    return text or f"the upstream answered HTTP {status}"


def is_anthropic_error(data: Any) -> bool:
    return isinstance(data, dict) and data.get("type") == "error" and isinstance(data.get("error"), dict)


def is_openai_error(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("error"), dict) and "type" not in data


def _error_text(error: dict[str, Any]) -> str:
    """An error object's ``message``, or a stand-in when it has none."""
    message = error.get("message")
    return message if isinstance(message, str) else "upstream error"


def anthropic_error(error: dict[str, Any], status: int) -> dict[str, object]:
    """An OpenAI error object as Anthropic's error body."""
    return error_body(ApiShape.ANTHROPIC, status, _error_text(error))


def openai_error(error: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic error object as OpenAI's error body (the Anthropic type is kept as ``code``)."""
    kind = str(error.get("type") or "api_error")
    return {"error": {"message": _error_text(error), "type": _OPENAI_TYPES.get(kind, kind), "param": None,
                      "code": kind}}


def to_client(body: bytes, status: int, client: str) -> bytes:
    """An upstream error body in the shape of the ``client`` API ("openai" or "anthropic")."""
    data = json_or_none(body)
    if client == "anthropic":
        if is_anthropic_error(data):
            return body
        error = data["error"] if is_openai_error(data) else {"message": _message(data, body, status)}
        return json.dumps(anthropic_error(error, status)).encode()
    if is_openai_error(data):
        return body
    if is_anthropic_error(data):
        return json.dumps(openai_error(data["error"])).encode()
    return json.dumps(openai_error({"type": anthropic_type(status), "message": _message(data, body, status)})).encode()


def stream_error_to_anthropic(error: dict[str, Any]) -> bytes:
    """An OpenAI in-stream error object as Anthropic's ``event: error``."""
    return sse_error_event(ApiShape.ANTHROPIC, error_status(error), _error_text(error))


def stream_error_to_openai(error: dict[str, Any]) -> bytes:
    """An Anthropic in-stream error object as OpenAI's ``data: {"error": ...}`` chunk."""
    return f"data: {json.dumps(openai_error(error))}\n\n".encode()

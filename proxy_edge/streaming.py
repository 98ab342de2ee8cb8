"""Reading upstream responses on the way through: SSE event splitting, usage, in-stream errors, end of stream.

Bytes are forwarded as received; only events that can carry usage, an error or the end of the stream are decoded,
so a stream costs a few substring searches per event.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import Enum
from typing import Any

_DECODER = json.JSONDecoder()


class StreamKind(Enum):
    """The event vocabulary of an upstream stream."""

    CHAT = "chat"
    """OpenAI chat completions: ``data: {chunk}`` lines ending in ``data: [DONE]``."""
    RESPONSES = "responses"
    """OpenAI responses: named events ending in ``response.completed`` (or ``.incomplete`` / ``.failed``)."""
    ANTHROPIC = "anthropic"
    """Anthropic messages: ``message_start`` … ``message_delta`` (usage) … ``message_stop``."""


def usage_tokens(usage: Any) -> tuple[int, int]:
    """(input, output) tokens from an OpenAI or Anthropic ``usage`` object; 0 for what it lacks.

    Anthropic input counts the tokens that count towards its input rate limit: ``input_tokens`` plus
    ``cache_creation_input_tokens``.
    """
    if not isinstance(usage, dict):
        return 0, 0
    inp = usage.get("prompt_tokens")
    if not isinstance(inp, int):
        inp = usage.get("input_tokens")
        inp = inp if isinstance(inp, int) else 0
        cached = usage.get("cache_creation_input_tokens")
        if isinstance(cached, int):
            inp += cached
    out = usage.get("completion_tokens")
    if not isinstance(out, int):
        out = usage.get("output_tokens")
        out = out if isinstance(out, int) else 0
    return inp, out


def json_or_none(text: str | bytes) -> Any:
    """``text`` parsed as JSON; None when it is not JSON (or not UTF-8)."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return None


def body_usage(body: bytes) -> tuple[int, int]:
    """(input, output) tokens from a JSON response body's top-level ``usage``.

    Decodes only the ``usage`` value found from the end of the body (it is last in OpenAI and Anthropic
    responses, and cannot occur unescaped inside strings), so large bodies such as embeddings are not parsed whole.
    """
    at = body.rfind(b'"usage"')
    if at < 0:
        return 0, 0
    colon = body.find(b":", at + 7)
    if colon < 0:
        return 0, 0
    try:
        text = body[colon + 1:].decode()
        value, _end = _DECODER.raw_decode(text, len(text) - len(text.lstrip()))
    except (ValueError, UnicodeDecodeError):
        return 0, 0
    return usage_tokens(value)


def error_status(error: Any) -> int:
    """The HTTP status an in-stream error event stands for (for the outcome and for failover decisions)."""
    if not isinstance(error, dict):
        return 500
    text = " ".join(str(error.get(k, "")) for k in ("type", "code")).lower()
    if "overloaded" in text:
        return 529
    if "rate_limit" in text or "insufficient_quota" in text or "rate limit" in text:
        return 429
    if "authentication" in text or "invalid_api_key" in text:
        return 401
    if "permission" in text:
        return 403
    if "invalid_request" in text:
        return 400
    return 500


MAX_ERROR_FIELD = 100


def error_kind(error: Any) -> tuple[str, str]:
    """The provider's error type and code of an error object (OpenAI ``type``/``code``, Anthropic ``type``, Gemini
    ``status``), for the selector's error classes; empty strings when absent."""
    if not isinstance(error, dict):
        return "", ""
    kind = error.get("type") or error.get("status")
    code = error.get("code")
    return (str(kind)[:MAX_ERROR_FIELD] if isinstance(kind, str) else "",
            str(code)[:MAX_ERROR_FIELD] if isinstance(code, str) else "")


def body_error(data: Any) -> Any:
    """The error object of a parsed error body: ``{"error": {...}}`` (OpenAI, Anthropic inside ``type: error``),
    or Gemini's ``[{"error": {...}}]``; None when there is none."""
    if isinstance(data, list) and data:
        data = data[0]
    if isinstance(data, dict):
        error = data.get("error")
        return error if isinstance(error, dict) else None
    return None


def error_message(error: Any) -> str:
    """The message of an error object, shortened for logs and outcome reports."""
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message[:300]
    return "error event in the upstream stream"


def _event_name(event: bytes) -> bytes:
    if event.startswith(b"event:"):
        line = event[6:event.find(b"\n")]
    else:
        at = event.find(b"\nevent:")
        if at < 0:
            return b""
        line = event[at + 7:event.find(b"\n", at + 7)]
    return line.strip()


def _event_data(event: bytes) -> Any:
    parts = []
    for line in event.splitlines():
        if line.startswith(b"data:"):
            parts.append(line[6:] if line[5:6] == b" " else line[5:])
    try:
        return json.loads(b"\n".join(parts))
    except ValueError:
        return None


DEFAULT_MAX_EVENT = 8 * 1024 * 1024


class StreamInspector:
    """Splits an upstream SSE stream into whole events and notes usage, errors and the end of the stream.

    ``feed`` returns the bytes to send to the client: whole events only (a partial event waits for its end),
    minus the usage-only chunk the edge asked an OpenAI upstream for when the client did not. An error event is
    passed through ``scrub`` (which removes credentials the upstream may echo) before it goes on.

    Linear and bounded: a partial event is kept as a list of chunks (each new chunk is searched for the event's
    end, and the chunks are joined once, when it comes), and an event longer than ``max_event`` bytes sets
    :attr:`too_large` and is dropped; what the inspector holds never exceeds ``max_event`` plus one chunk.
    """

    __slots__ = ("_kind", "_max_event", "_parts", "_pending", "_scrub", "_strip_usage", "_tail", "error",
                 "finished", "input_tokens", "output_tokens", "too_large")

    def __init__(self, kind: StreamKind, strip_usage: bool = False, max_event: int = DEFAULT_MAX_EVENT,
                 scrub: Callable[[bytes], bytes] | None = None) -> None:
        self._kind = kind
        self._strip_usage = strip_usage
        self._max_event = max_event
        self._scrub = scrub
        self._parts: list[bytes] = []
        """The partial event so far, as received."""
        self._pending = 0
        """Bytes in ``_parts``."""
        self._tail = b""
        """The last 3 bytes of ``_parts``: an event's end may begin in them."""
        self.input_tokens = 0
        self.output_tokens = 0
        self.error: dict[str, Any] | None = None
        """The first error event's error object, if the upstream sent one."""
        self.finished = False
        """The upstream sent its end-of-stream event."""
        self.too_large = False
        """An event was longer than ``max_event``: the stream must end (nothing more is returned)."""

    def feed(self, chunk: bytes) -> bytes:
        if self.too_large:
            return b""
        if self._parts:
            window = self._tail + chunk
            if window.find(b"\n\n") < 0 and (b"\r" not in window or window.find(b"\r\n\r\n") < 0):
                self._hold(chunk)  # the event goes on: keep the chunk, join nothing
                return b""
            chunk = b"".join(self._parts) + chunk
            self._parts.clear()
            self._pending = 0
        return self._split(chunk)

    def _hold(self, part: bytes) -> None:
        self._pending += len(part)
        if self._pending > self._max_event:
            self._oversized()
            return
        self._parts.append(part)
        self._tail = (self._tail + part)[-3:] if len(part) < 3 else part[-3:]

    def _oversized(self) -> None:
        self.too_large = True
        self._parts.clear()
        self._pending = 0
        self._tail = b""

    def _split(self, data: bytes) -> bytes:
        start = 0
        out: list[bytes] | None = None
        crlf = b"\r" in data
        while True:
            end = data.find(b"\n\n", start)
            if crlf:
                alt = data.find(b"\r\n\r\n", start)
                if alt >= 0 and (end < 0 or alt < end):
                    end = alt + 2
            if end < 0:
                break
            end += 2
            if end - start > self._max_event:
                self._oversized()
                return data[:start] if out is None else b"".join(out)
            event = data[start:end]
            error_before = self.error
            drop = self._inspect(event)
            replace = self.error is not error_before and self._scrub is not None
            if drop or replace:
                if out is None:
                    out = [data[:start]] if start else []
                if replace and not drop:
                    assert self._scrub is not None
                    out.append(self._scrub(event))
            elif out is not None:
                out.append(event)
            start = end
        if start < len(data):
            self._tail = b""
            self._hold(data[start:])
            if self.too_large:
                return data[:start] if out is None else b"".join(out)
        if out is None:
            return data[:start] if start else b""
        return b"".join(out)

    def flush(self) -> bytes:
        """What is left of an unterminated last event."""
        rest = b"".join(self._parts)
        self._parts.clear()
        self._pending = 0
        self._tail = b""
        if rest.strip():
            error_before = self.error
            self._inspect(rest)
            if self.error is not error_before and self._scrub is not None:
                rest = self._scrub(rest)
        return rest

    def _inspect(self, event: bytes) -> bool:
        """Note what the event says; True when it is to be left out of the client's stream."""
        if self._kind is StreamKind.ANTHROPIC:
            self._inspect_anthropic(event)
            return False
        if self._kind is StreamKind.RESPONSES:
            self._inspect_responses(event)
            return False
        return self._inspect_chat(event)

    def _inspect_chat(self, event: bytes) -> bool:
        if b"[DONE]" in event:
            self.finished = True
            return False
        has_usage = b'"usage"' in event and b'"usage":null' not in event and b'"usage": null' not in event
        if not has_usage and b'"error"' not in event:
            return False
        data = _event_data(event)
        if not isinstance(data, dict):
            return False
        if "error" in data and self.error is None:
            self.error = data["error"] if isinstance(data["error"], dict) else {"message": str(data["error"])}
            return False
        usage = data.get("usage")
        if isinstance(usage, dict):
            self._note_usage(usage)
            return self._strip_usage and data.get("choices") == []
        return False

    def _inspect_anthropic(self, event: bytes) -> None:
        name = _event_name(event)
        if name in (b"message_start", b"message_delta"):
            data = _event_data(event)
            if isinstance(data, dict):
                usage = data.get("usage")
                if usage is None and isinstance(data.get("message"), dict):
                    usage = data["message"].get("usage")
                if isinstance(usage, dict):
                    self._note_usage(usage)
        elif name == b"message_stop":
            self.finished = True
        elif name == b"error" and self.error is None:
            data = _event_data(event)
            error = data.get("error") if isinstance(data, dict) else None
            self.error = error if isinstance(error, dict) else {"type": "api_error", "message": "error event"}

    def _inspect_responses(self, event: bytes) -> None:
        name = _event_name(event)
        if name in (b"response.completed", b"response.incomplete", b"response.failed"):
            self.finished = True
            data = _event_data(event)
            response = data.get("response") if isinstance(data, dict) else None
            if isinstance(response, dict):
                self._note_usage(response.get("usage") or {})
                if name == b"response.failed" and self.error is None:
                    error = response.get("error")
                    self.error = error if isinstance(error, dict) else {"type": "server_error", "message": "failed"}
        elif name == b"error" and self.error is None:
            data = _event_data(event)
            if isinstance(data, dict):
                error = data.get("error") if isinstance(data.get("error"), dict) else data
                self.error = error
            else:
                self.error = {"type": "server_error", "message": "error event"}

    def _note_usage(self, usage: dict[str, Any]) -> None:
        inp, out = usage_tokens(usage)
        if inp:
            self.input_tokens = inp
        if out:
            self.output_tokens = out

"""Responses API answers built the way OpenAI sends them: the ``response`` object and its SSE event sequence.

A stream is ``response.created``, ``response.in_progress``, then per output item ``response.output_item.added``,
its own events (``content_part`` and ``output_text`` for a message, ``reasoning_summary_part`` and
``reasoning_summary_text`` for reasoning, ``function_call_arguments`` or ``custom_tool_call_input`` for calls) and
``response.output_item.done``, and last ``response.completed`` or ``response.incomplete`` with the whole response
and its usage. Every event has ``event:`` and a ``sequence_number``. An error is an ``error`` event followed by
``response.failed`` (Codex reads only the latter). Clients such as Codex treat a stream without a final
``response.completed`` as failed, so :class:`ResponseStreamWriter` always ends with one of the final events.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from proxy_edge.json_codec import encode_text
from proxy_edge.translate.responses_tools import ToolMap

ECHOED = ("instructions", "max_output_tokens", "parallel_tool_calls", "previous_response_id", "prompt_cache_key",
          "reasoning", "service_tier", "store", "temperature", "text", "tool_choice", "tools", "top_p", "truncation",
          "user", "metadata")
"""Request fields a response object repeats (as OpenAI's do)."""
_DEFAULTS: dict[str, Any] = {
    "instructions": None, "max_output_tokens": None, "parallel_tool_calls": True, "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None}, "service_tier": "auto", "store": False, "temperature": 1.0,
    "text": {"format": {"type": "text"}}, "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled",
    "user": None, "metadata": {},
}
INCOMPLETE_REASONS = {"max_tokens": "max_output_tokens", "model_context_window_exceeded": "max_output_tokens",
                      "length": "max_output_tokens", "refusal": "content_filter", "content_filter": "content_filter"}
"""Anthropic stop reasons and Chat finish reasons that end a response as ``incomplete``, with the reason."""


def echo(request: Mapping[str, Any]) -> dict[str, Any]:
    """What a response repeats of its request (the client's fields, not the translated ones)."""
    return {name: request[name] for name in ECHOED if request.get(name) is not None}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def usage(input_tokens: int, output_tokens: int, cached: int = 0, reasoning: int = 0,
          cache_write: int = 0) -> dict[str, Any]:
    """A Responses ``usage`` object (``input_tokens`` includes the cached and cache-written ones, as OpenAI counts
    them)."""
    return {"input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": cache_write},
            "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input_tokens + output_tokens}


def response_object(echoed: Mapping[str, Any], response_id: str, model: str, output: list[dict[str, Any]],
                    status: str = "completed", usage_: dict[str, Any] | None = None, incomplete: str | None = None,
                    error: dict[str, Any] | None = None, created_at: int | None = None) -> dict[str, Any]:
    """A whole ``response`` object (``incomplete``: the ``incomplete_details.reason``)."""
    body: dict[str, Any] = {
        "id": response_id, "object": "response", "created_at": created_at or int(time.time()), "status": status,
        "background": False, "error": error, "incomplete_details": {"reason": incomplete} if incomplete else None,
        "model": model, "output": output,
    }
    body.update({name: echoed.get(name, default) for name, default in _DEFAULTS.items()})
    body["usage"] = usage_
    return body


def status_of(stop: str | None) -> tuple[str, str | None]:
    """``(status, incomplete reason)`` for an upstream stop or finish reason."""
    reason = INCOMPLETE_REASONS.get(stop or "")
    return ("incomplete", reason) if reason else ("completed", None)


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status,
            "content": [_text_part(text)] if status == "completed" else []}


def reasoning_item(item_id: str, summary: str, encrypted: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": "reasoning",
                            "summary": [{"type": "summary_text", "text": summary}] if summary else []}
    if encrypted is not None:
        item["encrypted_content"] = encrypted
    return item


def call_item(item_id: str, call_id: str, fields: Mapping[str, Any], status: str = "completed") -> dict[str, Any]:
    """A ``function_call`` or ``custom_tool_call`` item; ``fields`` from :func:`~.responses_tools.call_item_fields`."""
    return {"id": item_id, "call_id": call_id, **fields, "status": status}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def error_code(error: Mapping[str, Any]) -> str:
    """The Responses error code for an upstream error object (Anthropic's ``type`` or OpenAI's ``code``)."""
    text = " ".join(str(error.get(k) or "") for k in ("type", "code")).lower()
    message = str(error.get("message") or "").lower()
    if "prompt is too long" in message or "context_length" in text or "context window" in message:
        return "context_length_exceeded"
    if "rate_limit" in text:
        return "rate_limit_exceeded"
    if "insufficient_quota" in text:
        return "insufficient_quota"
    if "overloaded" in text:
        return "server_is_overloaded"
    if "invalid_request" in text:
        return "invalid_prompt"
    return "server_error"


class ResponseStreamWriter:
    """Writes one response's events; the stream translators drive it item by item.

    Items are addressed by their ``output_index``. ``finish`` closes what is still open and writes the final
    event; after it (or ``fail``) nothing more is written.
    """

    def __init__(self, echoed: Mapping[str, Any]) -> None:
        self._echo = echoed
        self._sequence = 0
        self._id = new_id("resp")
        self._model = ""
        self._created = int(time.time())
        self._items: list[dict[str, Any]] = []
        self._open: dict[int, str] = {}
        """output_index -> what the item accumulates (text, summary, arguments or input)."""
        self._buffers: dict[int, list[str]] = {}
        self.started = False
        self.done = False

    def event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return f"event: {kind}\ndata: {encode_text(data)}\n\n".encode()

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(self._echo, self._id, self._model, list(self._items), status,
                               created_at=self._created, **extra)

    def start(self, response_id: str | None = None, model: str = "") -> bytes:
        """``response.created`` and ``response.in_progress`` (once)."""
        if self.started:
            return b""
        self.started = True
        self._id = response_id or self._id
        self._model = model
        snapshot = self._response("in_progress")
        return (self.event("response.created", response=snapshot)
                + self.event("response.in_progress", response=snapshot))

    def _add(self, item: dict[str, Any], kind: str) -> tuple[int, bytes]:
        index = len(self._items)
        self._items.append(item)
        self._open[index] = kind
        self._buffers[index] = []
        return index, self.event("response.output_item.added", output_index=index, item=dict(item))

    def open_message(self) -> tuple[int, bytes]:
        index, out = self._add(message_item(new_id("msg"), "", "in_progress"), "message")
        item_id = self._items[index]["id"]
        return index, out + self.event("response.content_part.added", item_id=item_id, output_index=index,
                                       content_index=0, part=_text_part(""))

    def open_reasoning(self, summary: bool = True) -> tuple[int, bytes]:
        """A reasoning item; with ``summary``, its summary part is opened for :meth:`delta`."""
        index, out = self._add(reasoning_item(new_id("rs"), "", None), "reasoning" if summary else "opaque")
        if summary:
            out += self.event("response.reasoning_summary_part.added", item_id=self._items[index]["id"],
                              output_index=index, summary_index=0, part={"type": "summary_text", "text": ""})
        return index, out

    def open_call(self, call_id: str, fields: Mapping[str, Any]) -> tuple[int, bytes]:
        """A call item; ``fields`` as :func:`call_item` takes them, with empty arguments or input."""
        kind = "function" if fields["type"] == "function_call" else "custom"
        return self._add(call_item(new_id("fc" if kind == "function" else "ctc"), call_id, fields, "in_progress"),
                         kind)

    def delta(self, index: int, text: str) -> bytes:
        """More text, summary, arguments or (decoded) custom input for the open item at ``index``."""
        kind = self._open.get(index)
        if not text or kind is None or kind == "opaque":
            return b""
        self._buffers[index].append(text)
        item_id = self._items[index]["id"]
        if kind == "message":
            return self.event("response.output_text.delta", item_id=item_id, output_index=index, content_index=0,
                              delta=text, logprobs=[])
        if kind == "reasoning":
            return self.event("response.reasoning_summary_text.delta", item_id=item_id, output_index=index,
                              summary_index=0, delta=text)
        name = "function_call_arguments" if kind == "function" else "custom_tool_call_input"
        return self.event(f"response.{name}.delta", item_id=item_id, output_index=index, delta=text)

    def close(self, index: int, final: str | None = None, encrypted: str | None = None) -> bytes:
        """The done events of the item at ``index``; ``final`` replaces what the deltas gave (a call's whole
        arguments or input), ``encrypted`` is a reasoning item's ``encrypted_content``."""
        kind = self._open.pop(index, None)
        if kind is None:
            return b""
        item = self._items[index]
        text = "".join(self._buffers.pop(index)) if final is None else final
        item_id = item["id"]
        out = b""
        if kind == "message":
            part = _text_part(text)
            out += self.event("response.output_text.done", item_id=item_id, output_index=index, content_index=0,
                              text=text, logprobs=[])
            out += self.event("response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                              part=part)
            item.update(status="completed", content=[part])
        elif kind in ("reasoning", "opaque"):
            if kind == "reasoning":
                part = {"type": "summary_text", "text": text}
                out += self.event("response.reasoning_summary_text.done", item_id=item_id, output_index=index,
                                  summary_index=0, text=text)
                out += self.event("response.reasoning_summary_part.done", item_id=item_id, output_index=index,
                                  summary_index=0, part=part)
                item["summary"] = [part] if text else []
            if encrypted is not None:
                item["encrypted_content"] = encrypted
        elif kind == "function":
            text = text.strip() or "{}"
            out += self.event("response.function_call_arguments.done", item_id=item_id, output_index=index,
                              arguments=text)
            item.update(arguments=text, status="completed")
        else:
            out += self.event("response.custom_tool_call_input.done", item_id=item_id, output_index=index, input=text)
            item.update(input=text, status="completed")
        return out + self.event("response.output_item.done", output_index=index, item=dict(item))

    def close_all(self) -> bytes:
        return b"".join(self.close(index) for index in sorted(self._open))

    def finish(self, stop: str | None, usage_: dict[str, Any]) -> bytes:
        """Close what is open and end with ``response.completed`` or ``response.incomplete``."""
        if self.done:
            return b""
        out = self.start() + self.close_all()
        self.done = True
        status, reason = status_of(stop)
        final = self._response(status, usage_=usage_, incomplete=reason)
        return out + self.event(f"response.{status}", response=final)

    def fail(self, error: Mapping[str, Any]) -> bytes:
        """An ``error`` event and ``response.failed`` for an upstream error object; the stream ends."""
        if self.done:
            return b""
        self.done = True
        code = error_code(error)
        message = str(error.get("message") or "the upstream failed")
        out = self.start() + self.event("error", code=code, message=message, param=None)
        return out + self.event("response.failed", response=self._response(
            "failed", error={"code": code, "message": message}))


@dataclass(frozen=True, slots=True)
class ResponsesContext:
    """What answering a Responses client needs of its request: the fields a response repeats, and which upstream
    tool stands for which client tool."""

    echo: Mapping[str, Any]
    names: ToolMap

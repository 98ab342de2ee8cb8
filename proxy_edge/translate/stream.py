"""Incremental SSE translators: each upstream event becomes the client's events as it arrives (nothing is held
back but an unfinished event).

- :class:`OpenAIToAnthropicStream`: OpenAI chat chunks -> Anthropic ``message_start``, ``content_block_start/delta/
  stop``, ``message_delta``, ``message_stop``. The upstream is always asked for its usage chunk, which becomes the
  usage of ``message_delta``.
- :class:`AnthropicToOpenAIStream`: Anthropic events -> OpenAI chunks with ``delta.content`` and
  ``delta.tool_calls``, the usage chunk when the client asked for it, and ``data: [DONE]``.
"""

from __future__ import annotations

import time
from typing import Any

from proxy_edge.json_codec import encode_text
from proxy_edge.streaming import json_or_none
from proxy_edge.translate import anthropic_to_openai, openai_to_anthropic
from proxy_edge.translate.common import finish_reason, input_to_arguments, stop_reason, tool_id
from proxy_edge.translate.errors import stream_error_to_anthropic, stream_error_to_openai


def _dumps(data: Any) -> str:
    return encode_text(data)


def anthropic_event(name: str, data: dict[str, Any]) -> bytes:
    """One Anthropic SSE event (``type`` is the event's name)."""
    return f"event: {name}\ndata: {_dumps({'type': name, **data})}\n\n".encode()


class EventFeed:
    """The loop every stream translator shares: the upstream's bytes in, whole events parsed, the client's bytes out.

    A translator says what one parsed event becomes (:meth:`on_event`, given the event's name, else its ``type``)
    and, for chat-completion streams, what their ``data: [DONE]`` line becomes (:meth:`on_done`). An event that is not
    a JSON object is skipped; once the translator is ``done`` the rest is ignored.
    """

    done: bool

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> bytes:
        """The client's bytes for the whole upstream events in ``chunk`` (and any left from before)."""
        events, self._buffer = split_events(self._buffer, chunk)
        out: list[bytes] = []
        for name, data in events:
            if self.done:
                break
            if data[:1] != "{" and data.strip() == "[DONE]":
                out.append(self.on_done())
                continue
            parsed = json_or_none(data)
            if isinstance(parsed, dict):
                out.append(self.on_event(name or str(parsed.get("type", "")), parsed))
        return b"".join(out)

    def on_event(self, name: str, data: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def on_done(self) -> bytes:
        return b""


def split_events(buffer: bytes, chunk: bytes) -> tuple[list[tuple[str, str]], bytes]:
    """Whole SSE events in ``buffer + chunk`` as ``(event name, data)``, and what is left of an unfinished one."""
    data = (buffer + chunk).replace(b"\r\n", b"\n")
    events: list[tuple[str, str]] = []
    while True:
        end = data.find(b"\n\n")
        if end < 0:
            return events, data
        raw, data = data[:end], data[end + 2:]
        name, lines = "", []
        for line in raw.decode(errors="replace").split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                lines.append(line[6:] if line[5:6] == " " else line[5:])
        if lines or name:
            events.append((name, "\n".join(lines)))


class OpenAIToAnthropicStream(EventFeed):
    """OpenAI chat completion chunks in, Anthropic message events out."""

    def __init__(self) -> None:
        super().__init__()
        self._started = False
        self._open: int | None = None
        """Index of the content block now open."""
        self._open_kind = ""
        self._blocks = 0
        self._tools: dict[int, int] = {}
        """OpenAI tool call index -> Anthropic content block index."""
        self._finish: Any = None
        self._usage: dict[str, Any] = {}
        self.done = False

    def on_event(self, name: str, data: dict[str, Any]) -> bytes:
        if isinstance(data.get("error"), dict):
            self.done = True
            return stream_error_to_anthropic(data["error"])
        return b"".join(self._chunk(data))

    def on_done(self) -> bytes:
        return b"".join(self._finish_message())

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        self._started = True
        return [anthropic_event("message_start", {"message": {
            "id": chunk.get("id") or "msg_translated", "type": "message", "role": "assistant",
            "model": chunk.get("model") or "", "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}})]

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        index, self._open = self._open, None
        return [anthropic_event("content_block_stop", {"index": index})]

    def _open_block(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._open, self._open_kind = self._blocks, kind
        self._blocks += 1
        return [*out, anthropic_event("content_block_start", {"index": self._open, "content_block": block})]

    def _chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        out = [] if self._started else self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = (delta.get("content") or "") + (delta.get("refusal") or "")
            if text:
                if self._open_kind != "text" or self._open is None:
                    out += self._open_block("text", {"type": "text", "text": ""})
                out.append(anthropic_event("content_block_delta", {
                    "index": self._open, "delta": {"type": "text_delta", "text": text}}))
            for call in delta.get("tool_calls") or []:
                out += self._tool_delta(call)
            if choice.get("finish_reason") is not None:
                self._finish = choice["finish_reason"]
        return out

    def _tool_delta(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        function = call.get("function") or {}
        position = call.get("index", 0)
        index = self._tools.get(position)
        if index is None:
            out += self._open_block("tool", {"type": "tool_use", "id": tool_id(call.get("id")),
                                             "name": function.get("name") or "", "input": {}})
            index = self._tools[position] = self._open  # type: ignore[assignment]
        arguments = function.get("arguments")
        if arguments:
            out.append(anthropic_event("content_block_delta", {
                "index": index, "delta": {"type": "input_json_delta", "partial_json": arguments}}))
        return out

    def _finish_message(self) -> list[bytes]:
        out = [] if self._started else self._start({})
        out += self._close()
        usage = openai_to_anthropic.usage(self._usage)
        out.append(anthropic_event("message_delta", {
            "delta": {"stop_reason": stop_reason(self._finish) or "end_turn", "stop_sequence": None},
            "usage": {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"],
                      "cache_read_input_tokens": usage["cache_read_input_tokens"]}}))
        out.append(anthropic_event("message_stop", {}))
        self.done = True
        return out


class AnthropicToOpenAIStream(EventFeed):
    """Anthropic message events in, OpenAI chat completion chunks out."""

    def __init__(self, include_usage: bool) -> None:
        super().__init__()
        self._include_usage = include_usage
        self._id = "chatcmpl-translated"
        self._model = ""
        self._created = int(time.time())
        self._tools: dict[int, int] = {}
        """Anthropic content block index -> OpenAI tool call index."""
        self._usage: dict[str, Any] = {}
        self.done = False

    def on_event(self, name: str, data: dict[str, Any]) -> bytes:
        return b"".join(self._event(name, data))

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        if self._include_usage:
            data["usage"] = None
        return f"data: {_dumps(data)}\n\n".encode()

    def _event(self, name: str, data: dict[str, Any]) -> list[bytes]:
        if name == "message_start":
            message = data.get("message") or {}
            self._id = message.get("id") or self._id
            self._model = message.get("model") or ""
            self._usage.update(message.get("usage") or {})
            return [self._chunk({"role": "assistant", "content": ""})]
        if name == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                position = self._tools[data.get("index", 0)] = len(self._tools)
                arguments = input_to_arguments(block["input"]) if block.get("input") else ""
                call = {"index": position, "id": block.get("id"), "type": "function",
                        "function": {"name": block.get("name"), "arguments": arguments}}
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if name == "content_block_delta":
            delta = data.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if delta.get("type") == "input_json_delta" and data.get("index", 0) in self._tools:
                position = self._tools[data.get("index", 0)]
                return [self._chunk({"tool_calls": [{"index": position,
                                                     "function": {"arguments": delta.get("partial_json", "")}}]})]
            return []  # thinking and signatures are never asked for through a translation
        if name == "message_delta":
            self._usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            finish = finish_reason((data.get("delta") or {}).get("stop_reason"))
            return [self._chunk({}, finish or "stop")]
        if name == "message_stop":
            self.done = True
            out = []
            if self._include_usage:
                usage = {"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                         "model": self._model, "choices": [], "usage": anthropic_to_openai.usage(self._usage)}
                out.append(f"data: {_dumps(usage)}\n\n".encode())
            return [*out, b"data: [DONE]\n\n"]
        if name == "error":
            self.done = True
            error = data.get("error")
            return [stream_error_to_openai(error if isinstance(error, dict) else {"type": "api_error"})]
        return []  # ping, content_block_stop

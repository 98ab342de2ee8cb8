"""Incremental SSE translator for Anthropic clients on a Responses upstream: each Responses event becomes Anthropic
message events as it arrives (nothing is held back but an unfinished event).

- ``response.created`` -> ``message_start`` (usage comes at the end, as Responses gives it);
- a ``message`` item -> a text block (``output_text`` and ``refusal`` deltas -> ``text_delta``);
- a ``function_call`` item -> a ``tool_use`` block, its ``function_call_arguments.delta`` events ->
  ``input_json_delta``; a ``custom_tool_call`` item -> a ``tool_use`` block whose input is ``{"input": text}``,
  streamed as JSON text;
- ``reasoning`` items -> nothing (their summaries are not Anthropic thinking, which comes signed);
- ``response.completed`` / ``response.incomplete`` -> ``message_delta`` (stop reason and usage) and
  ``message_stop``; ``error`` / ``response.failed`` -> Anthropic's ``error`` event, which ends the stream.

An item the upstream sends whole, without deltas, is sent whole when it is done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from proxy_edge.translate.common import tool_id
from proxy_edge.translate.errors import stream_error_to_anthropic
from proxy_edge.translate.messages_to_responses import message_id, stop_reason, usage
from proxy_edge.translate.stream import EventFeed, anthropic_event

_DELTAS = {
    "response.output_text.delta": "message", "response.refusal.delta": "message",
    "response.function_call_arguments.delta": "function_call", "response.custom_tool_call_input.delta":
    "custom_tool_call",
}


@dataclass(slots=True)
class _Block:
    """The Anthropic content block an output item became."""

    index: int
    kind: str
    """The item's type: ``message``, ``function_call`` or ``custom_tool_call``."""
    sent: bool = False
    """Some of its text or input has been sent."""


class ResponsesToAnthropicStream(EventFeed):
    """Responses API events in, Anthropic message events out."""

    def __init__(self) -> None:
        super().__init__()
        self._started = False
        self._blocks: dict[int, _Block] = {}
        """Responses output index -> its block."""
        self._open: _Block | None = None
        self._count = 0
        self._called = False
        self.done = False

    def on_event(self, name: str, data: dict[str, Any]) -> bytes:
        return b"".join(self._event(name, data))

    def _event(self, name: str, data: dict[str, Any]) -> list[bytes]:
        if name == "error":
            nested = data.get("error")
            return self._fail(nested if isinstance(nested, dict) else data)
        response: dict[str, Any] = data["response"] if isinstance(data.get("response"), dict) else {}
        if name == "response.failed":
            error = response.get("error")
            return self._fail(error if isinstance(error, dict) else {"type": "api_error",
                                                                     "message": "the upstream failed"})
        out = self._start(response)
        if name in ("response.completed", "response.incomplete"):
            return out + self._finish(response)
        index = data.get("output_index", 0)
        item: dict[str, Any] = data["item"] if isinstance(data.get("item"), dict) else {}
        if name == "response.output_item.added":
            return out + self._added(index, item)
        if name == "response.output_item.done":
            return out + self._done(index, item)
        kind = _DELTAS.get(name)
        if kind is not None and isinstance(data.get("delta"), str) and data["delta"]:
            return out + self._delta(index, kind, data["delta"])
        return out  # in_progress, content parts, the .done of texts and arguments, reasoning

    def _start(self, response: dict[str, Any]) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [anthropic_event("message_start", {"message": {
            "id": message_id(response.get("id")), "type": "message", "role": "assistant",
            "model": response.get("model") or "", "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0}}})]

    def _open_block(self, position: int, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._open = self._blocks[position] = _Block(self._count, kind)
        self._count += 1
        return [*out, anthropic_event("content_block_start", {"index": self._open.index, "content_block": block})]

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        block, self._open = self._open, None
        return [anthropic_event("content_block_stop", {"index": block.index})]

    def _added(self, position: int, item: dict[str, Any]) -> list[bytes]:
        kind = item.get("type")
        if kind not in ("function_call", "custom_tool_call"):
            return []  # a message opens its block with its first text; reasoning has none
        self._called = True
        return self._open_block(position, str(kind), {"type": "tool_use", "id": tool_id(item.get("call_id")),
                                                      "name": item.get("name") or "", "input": {}})

    def _delta(self, position: int, kind: str, text: str) -> list[bytes]:
        out: list[bytes] = []
        block = self._blocks.get(position)
        if block is None and kind == "message":
            out = self._open_block(position, kind, {"type": "text", "text": ""})
            block = self._open
        if block is None or block is not self._open or block.kind != kind:
            return out  # a delta for an item never opened, or one already closed
        if kind == "message":
            delta = {"type": "text_delta", "text": text}
        else:
            if kind == "custom_tool_call":  # the string input as the JSON text of {"input": ...}
                text = ('{"input":"' if not block.sent else "") + json.dumps(text, ensure_ascii=False)[1:-1]
            delta = {"type": "input_json_delta", "partial_json": text}
        block.sent = True
        return [*out, anthropic_event("content_block_delta", {"index": block.index, "delta": delta})]

    def _done(self, position: int, item: dict[str, Any]) -> list[bytes]:
        kind = item.get("type")
        block = self._blocks.get(position)
        out: list[bytes] = []
        if kind == "message" and block is None:
            text = "".join(str(part.get("text") or part.get("refusal") or "") for part in item.get("content") or []
                           if isinstance(part, dict))
            if not text:
                return []
            out = self._delta(position, "message", text)  # a message sent whole
            block = self._blocks[position]
        if block is None or block is not self._open:
            return out
        if kind == "function_call" and not block.sent:
            out.append(self._input(block, str(item.get("arguments") or "")))
        elif kind == "custom_tool_call":
            whole = json.dumps({"input": str(item.get("input") or "")}, ensure_ascii=False)
            out.append(self._input(block, '"}' if block.sent else whole))
        return out + self._close()

    def _input(self, block: _Block, text: str) -> bytes:
        block.sent = True
        return anthropic_event("content_block_delta", {"index": block.index,
                                                       "delta": {"type": "input_json_delta", "partial_json": text}})

    def _finish(self, response: dict[str, Any]) -> list[bytes]:
        self.done = True
        counted = usage(response.get("usage"))
        reason = stop_reason(response.get("status"), response.get("incomplete_details"), self._called)
        return [*self._close(), anthropic_event("message_delta", {
            "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": {"input_tokens": counted["input_tokens"], "output_tokens": counted["output_tokens"],
                      "cache_read_input_tokens": counted["cache_read_input_tokens"]}}),
            anthropic_event("message_stop", {})]

    def _fail(self, error: dict[str, Any]) -> list[bytes]:
        self.done = True
        return [stream_error_to_anthropic(error)]

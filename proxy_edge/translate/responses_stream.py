"""Incremental SSE translators for Responses clients: each upstream event becomes Responses events as it arrives.

- :class:`AnthropicToResponsesStream`: Anthropic message events -> Responses events. Text blocks become message
  items, thinking blocks reasoning items (summary deltas; text and signature in ``encrypted_content`` at the end),
  tool_use blocks ``function_call`` items (argument deltas) or ``custom_tool_call`` items (the ``input`` string
  decoded from the JSON deltas as they come).
- :class:`ChatToResponsesStream`: OpenAI chat completion chunks -> Responses events, the same way; ``content`` is
  the message, ``reasoning_content`` / ``reasoning`` (as DeepSeek, vLLM and OpenRouter send it) a reasoning item.

Both end with ``response.completed`` (or ``.incomplete`` after a length stop), and an upstream error becomes an
``error`` event and ``response.failed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from proxy_edge.translate.responses_out import ResponsesContext, ResponseStreamWriter
from proxy_edge.translate.responses_to_anthropic import encrypt_thinking, response_usage
from proxy_edge.translate.responses_to_chat import chat_usage
from proxy_edge.translate.responses_tools import InputStringStream, call_item_fields, custom_input
from proxy_edge.translate.stream import EventFeed


@dataclass(slots=True)
class _Open:
    """An upstream block or call being translated: its output item, and what its end needs."""

    index: int
    kind: str
    """``text``, ``thinking``, ``redacted``, ``function`` or ``custom``."""
    parts: list[str] = field(default_factory=list)
    signature: str = ""
    decoder: InputStringStream | None = None


class _Translator(EventFeed):
    """What both translators share: the writer, the open items, and turning call deltas into item deltas."""

    def __init__(self, context: ResponsesContext) -> None:
        super().__init__()
        self._context = context
        self._writer = ResponseStreamWriter(context.echo)

    @property
    def done(self) -> bool:  # type: ignore[override]
        return self._writer.done

    def _open_call(self, call_id: str, name: str) -> tuple[_Open, bytes]:
        fields = call_item_fields(self._context.names, name, "")
        custom = fields["type"] == "custom_tool_call"
        fields["input" if custom else "arguments"] = ""
        index, out = self._writer.open_call(call_id, fields)
        if custom:
            return _Open(index, "custom", decoder=InputStringStream()), out
        return _Open(index, "function"), out

    def _call_delta(self, block: _Open, piece: str) -> bytes:
        block.parts.append(piece)
        if block.decoder is not None:
            return self._writer.delta(block.index, block.decoder.feed(piece))
        return self._writer.delta(block.index, piece)

    def _close(self, block: _Open) -> bytes:
        if block.kind == "custom":
            return self._writer.close(block.index, final=custom_input("".join(block.parts)))
        if block.kind in ("thinking", "redacted"):
            if block.kind == "thinking":
                thinking = {"type": "thinking", "thinking": "".join(block.parts), "signature": block.signature}
            else:
                thinking = {"type": "redacted_thinking", "data": block.signature}
            return self._writer.close(block.index, encrypted=encrypt_thinking(thinking))
        return self._writer.close(block.index)


class AnthropicToResponsesStream(_Translator):
    """Anthropic message events in, Responses events out."""

    def __init__(self, context: ResponsesContext) -> None:
        super().__init__(context)
        self._blocks: dict[int, _Open] = {}
        """Anthropic content block index -> its item."""
        self._usage: dict[str, Any] = {}
        self._stop: str | None = None

    def on_event(self, name: str, data: dict[str, Any]) -> bytes:
        writer = self._writer
        if name == "message_start":
            message = data.get("message") or {}
            self._usage.update(message.get("usage") or {})
            return writer.start(f"resp_{message.get('id') or 'translated'}", str(message.get("model") or ""))
        if name == "content_block_start":
            return writer.start() + self._block_start(data.get("index", 0), data.get("content_block") or {})
        if name == "content_block_delta":
            return self._block_delta(data.get("index", 0), data.get("delta") or {})
        if name == "content_block_stop":
            block = self._blocks.pop(data.get("index", 0), None)
            return self._close(block) if block is not None else b""
        if name == "message_delta":
            self._usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
            self._stop = (data.get("delta") or {}).get("stop_reason") or self._stop
            return b""
        if name == "message_stop":
            return b"".join(self._close(b) for b in self._blocks.values()) + writer.finish(
                self._stop, response_usage(self._usage))
        if name == "error":
            error = data.get("error")
            return writer.fail(error if isinstance(error, dict) else {"type": "api_error"})
        return b""  # ping

    def _block_start(self, position: int, block: dict[str, Any]) -> bytes:
        kind = block.get("type")
        if kind == "text":
            index, out = self._writer.open_message()
            self._blocks[position] = _Open(index, "text")
            return out + self._writer.delta(index, str(block.get("text") or ""))
        if kind == "thinking":
            index, out = self._writer.open_reasoning()
            opened = self._blocks[position] = _Open(index, "thinking", signature=str(block.get("signature") or ""))
            if block.get("thinking"):
                opened.parts.append(block["thinking"])
                out += self._writer.delta(index, block["thinking"])
            return out
        if kind == "redacted_thinking":
            index, out = self._writer.open_reasoning(summary=False)
            self._blocks[position] = _Open(index, "redacted", signature=str(block.get("data") or ""))
            return out
        if kind == "tool_use":
            opened, out = self._open_call(str(block.get("id")), str(block.get("name")))
            self._blocks[position] = opened
            if block.get("input"):
                out += self._call_delta(opened, json.dumps(block["input"], ensure_ascii=False))
            return out
        return b""  # server tool blocks are never asked for through a translation

    def _block_delta(self, position: int, delta: dict[str, Any]) -> bytes:
        block = self._blocks.get(position)
        if block is None:
            return b""
        kind = delta.get("type")
        if kind == "text_delta":
            return self._writer.delta(block.index, str(delta.get("text") or ""))
        if kind == "thinking_delta":
            block.parts.append(str(delta.get("thinking") or ""))
            return self._writer.delta(block.index, block.parts[-1])
        if kind == "signature_delta":
            block.signature += str(delta.get("signature") or "")
            return b""
        if kind == "input_json_delta" and block.kind in ("function", "custom"):
            return self._call_delta(block, str(delta.get("partial_json") or ""))
        return b""


class ChatToResponsesStream(_Translator):
    """OpenAI chat completion chunks in, Responses events out."""

    def __init__(self, context: ResponsesContext) -> None:
        super().__init__(context)
        self._text: _Open | None = None
        self._reasoning: _Open | None = None
        self._calls: dict[Any, _Open] = {}
        """Tool call index (or id) -> its item."""
        self._usage: dict[str, Any] = {}
        self._finish: str | None = None

    def on_event(self, name: str, data: dict[str, Any]) -> bytes:
        if isinstance(data.get("error"), dict):
            return self._writer.fail(data["error"])
        return self._chunk(data)

    def on_done(self) -> bytes:
        return self._end()

    def _chunk(self, chunk: dict[str, Any]) -> bytes:
        out = [self._writer.start(f"resp_{chunk.get('id') or 'translated'}", str(chunk.get("model") or ""))]
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            thought = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(thought, str) and thought:
                if self._reasoning is None:
                    out.append(self._close_text())
                    index, opened = self._writer.open_reasoning()
                    self._reasoning = _Open(index, "thinking")
                    out.append(opened)
                out.append(self._writer.delta(self._reasoning.index, thought))
            text = (delta.get("content") or "") + (delta.get("refusal") or "")
            if text:
                out.append(self._close_reasoning())
                if self._text is None:
                    index, opened = self._writer.open_message()
                    self._text = _Open(index, "text")
                    out.append(opened)
                out.append(self._writer.delta(self._text.index, text))
            for position, call in enumerate(delta.get("tool_calls") or []):
                out.append(self._tool_delta(position, call))
            if choice.get("finish_reason") is not None:
                self._finish = choice["finish_reason"]
        return b"".join(out)

    def _close_text(self) -> bytes:
        text, self._text = self._text, None
        return self._writer.close(text.index) if text is not None else b""

    def _close_reasoning(self) -> bytes:
        reasoning, self._reasoning = self._reasoning, None
        return self._writer.close(reasoning.index) if reasoning is not None else b""

    def _tool_delta(self, position: int, call: dict[str, Any]) -> bytes:
        key = call.get("index", call.get("id") or position)
        function = call.get("function") or {}
        out = b""
        block = self._calls.get(key)
        if block is None:
            out = self._close_text() + self._close_reasoning()
            call_id = call.get("id") or f"call_{len(self._calls)}"
            block, opened = self._open_call(str(call_id), str(function.get("name") or ""))
            self._calls[key] = block
            out += opened
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out += self._call_delta(block, arguments)
        return out

    def _end(self) -> bytes:
        out = self._close_text() + self._close_reasoning()
        out += b"".join(self._close(block) for block in self._calls.values())
        self._calls.clear()
        return out + self._writer.finish(self._finish, chat_usage(self._usage))

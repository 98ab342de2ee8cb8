"""Test helpers: Anthropic and OpenAI streams made from whole answers, and accumulated back into whole answers."""

from __future__ import annotations

import itertools
import json
from typing import Any

from proxy_edge.translate.stream import split_events


def _sse(name: str | None, data: Any) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {name}\ndata: {payload}\n\n" if name else f"data: {payload}\n\n").encode()


def pieces(text: str, cuts: list[int]) -> list[str]:
    """``text`` cut at the given offsets (taken modulo its length)."""
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a] or [""]


def anthropic_events(message: dict[str, Any], cuts: list[int]) -> bytes:
    """The SSE stream Anthropic sends for ``message``, text and tool input cut into deltas at ``cuts``."""
    usage = message["usage"]
    out = [_sse("message_start", {"type": "message_start", "message": {
        **{k: message[k] for k in ("id", "type", "role", "model")}, "content": [], "stop_reason": None,
        "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}}), _sse("ping", {"type": "ping"})]
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            out.append(_sse("content_block_start", {"type": "content_block_start", "index": index,
                                                    "content_block": {"type": "text", "text": ""}}))
            out += [_sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                 "delta": {"type": "text_delta", "text": p}})
                    for p in pieces(block["text"], cuts)]
        else:
            out.append(_sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
                "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}}))
            out += [_sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                 "delta": {"type": "input_json_delta", "partial_json": p}})
                    for p in pieces(json.dumps(block["input"]), cuts)]
        out.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    out.append(_sse("message_delta", {"type": "message_delta", "usage": {"output_tokens": usage["output_tokens"]},
                                      "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None}}))
    out.append(_sse("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def openai_chunks(completion: dict[str, Any], cuts: list[int]) -> bytes:
    """The SSE stream OpenAI sends for ``completion`` (with the usage chunk), content cut at ``cuts``."""
    base = {k: completion[k] for k in ("id", "object", "created", "model")} | {"object": "chat.completion.chunk"}
    message, choice = completion["choices"][0]["message"], completion["choices"][0]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _sse(None, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": None})

    out = [chunk({"role": "assistant", "content": ""})]
    if message.get("content"):
        out += [chunk({"content": p}) for p in pieces(message["content"], cuts)]
    for i, call in enumerate(message.get("tool_calls") or []):
        out.append(chunk({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                          "function": {"name": call["function"]["name"], "arguments": ""}}]}))
        out += [chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
                for p in pieces(call["function"]["arguments"], cuts)]
    out.append(chunk({}, choice["finish_reason"]))
    out.append(_sse(None, {**base, "choices": [], "usage": completion["usage"]}))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def accumulate_anthropic(stream: bytes) -> dict[str, Any]:
    """The message an Anthropic client builds from ``stream`` (checking the event order as it goes)."""
    events, rest = split_events(b"", stream)
    assert rest == b""
    message: dict[str, Any] = {}
    buffers: dict[int, str] = {}
    open_blocks: set[int] = set()
    for name, data in events:
        event = json.loads(data)
        assert event["type"] == name
        if name == "message_start":
            assert not message
            message = {**event["message"], "content": []}
        elif name == "content_block_start":
            assert event["index"] == len(message["content"]) and not open_blocks
            message["content"].append(dict(event["content_block"]))
            open_blocks.add(event["index"])
        elif name == "content_block_delta":
            assert event["index"] in open_blocks
            block, delta = message["content"][event["index"]], event["delta"]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            else:
                buffers[event["index"]] = buffers.get(event["index"], "") + delta["partial_json"]
        elif name == "content_block_stop":
            open_blocks.remove(event["index"])
        elif name == "message_delta":
            message["stop_reason"] = event["delta"]["stop_reason"]
            message["usage"] = {**message["usage"], **event["usage"]}
        elif name == "message_stop":
            assert not open_blocks
            message["_stopped"] = True
    for index, text in buffers.items():
        message["content"][index]["input"] = json.loads(text) if text else {}
    return message


def accumulate_openai(stream: bytes) -> dict[str, Any]:
    """The chat completion an OpenAI client builds from ``stream``."""
    events, rest = split_events(b"", stream)
    assert rest == b"" and events[-1][1] == "[DONE]"
    out: dict[str, Any] = {"content": None, "tool_calls": [], "finish_reason": None, "usage": None}
    for _name, data in events[:-1]:
        chunk = json.loads(data)
        out["id"], out["model"] = chunk["id"], chunk["model"]
        if chunk.get("usage"):
            out["usage"] = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            if delta.get("content"):
                out["content"] = (out["content"] or "") + delta["content"]
            for call in delta.get("tool_calls") or []:
                if call["index"] == len(out["tool_calls"]):
                    out["tool_calls"].append({"id": call["id"], "type": "function",
                                              "function": {"name": call["function"]["name"], "arguments": ""}})
                out["tool_calls"][call["index"]]["function"]["arguments"] += call["function"].get("arguments") or ""
            if choice.get("finish_reason"):
                out["finish_reason"] = choice["finish_reason"]
    return out


def rechunk(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut into network chunks at ``cuts``."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]

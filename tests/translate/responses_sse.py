"""Test helpers for Responses clients: upstream streams with thinking and tools, Responses event streams read back
(each event checked against the official ``openai`` SDK types), and the recorded Codex requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

from openai.types.responses import Response, ResponseStreamEvent

from proxy_edge.translate.stream import split_events
from tests.translate.sse import pieces

FIXTURES = Path(__file__).parent.parent / "fixtures" / "agents"
_EVENTS = {cls.model_fields["type"].annotation.__args__[0]: cls for cls in get_args(get_args(ResponseStreamEvent)[0])}
"""Event type -> the SDK's class for it."""


def codex_request(name: str) -> dict[str, Any]:
    """The body of a request Codex CLI really sent (``tests/fixtures/agents/<name>.json``)."""
    body: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())["body"]
    return body


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()


def anthropic_stream(message: dict[str, Any], cuts: list[int]) -> bytes:
    """The SSE stream Anthropic sends for ``message`` (text, thinking, redacted thinking and tool_use blocks), its
    deltas cut at ``cuts``."""
    usage = message["usage"]
    out = [_sse("message_start", {"message": {**{k: message[k] for k in ("id", "type", "role", "model")},
                                              "content": [], "stop_reason": None, "stop_sequence": None,
                                              "usage": {**usage, "output_tokens": 1}}}), _sse("ping", {})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        start = {"text": {"type": "text", "text": ""},
                 "thinking": {"type": "thinking", "thinking": "", "signature": ""},
                 "redacted_thinking": block, "tool_use": {**block, "input": {}}}[kind]
        out.append(_sse("content_block_start", {"index": index, "content_block": start}))
        if kind == "text":
            out += [_sse("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": p}})
                    for p in pieces(block["text"], cuts)]
        elif kind == "thinking":
            out += [_sse("content_block_delta", {"index": index, "delta": {"type": "thinking_delta", "thinking": p}})
                    for p in pieces(block["thinking"], cuts)]
            out.append(_sse("content_block_delta", {"index": index, "delta": {
                "type": "signature_delta", "signature": block["signature"]}}))
        elif kind == "tool_use":
            out += [_sse("content_block_delta", {"index": index, "delta": {"type": "input_json_delta",
                                                                             "partial_json": p}})
                    for p in pieces(json.dumps(block["input"]), cuts)]
        out.append(_sse("content_block_stop", {"index": index}))
    out.append(_sse("message_delta", {"usage": {"output_tokens": usage["output_tokens"]},
                                      "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None}}))
    out.append(_sse("message_stop", {}))
    return b"".join(out)


def read_events(stream: bytes) -> list[dict[str, Any]]:
    """The events of a Responses stream, each checked: SDK type, ``event:`` name, sequence numbers from 0."""
    events, rest = split_events(b"", stream)
    assert rest == b""
    out = []
    for number, (name, data) in enumerate(events):
        event = json.loads(data)
        assert event["type"] == name and event["sequence_number"] == number, (name, event)
        if name != "response.failed" or event["response"]["error"]["code"] in ("server_error", "rate_limit_exceeded"):
            _EVENTS[name].model_validate(event)  # the SDK lists fewer error codes than the API sends
        out.append(event)
    return out


def accumulate(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The response a client builds from the events, checked against the final event's ``response``: each item
    opened before its deltas, done with what its deltas said, and the final output made of the done items."""
    names = [e["type"] for e in events]
    assert names[:2] == ["response.created", "response.in_progress"]
    assert names[-1] in ("response.completed", "response.incomplete", "response.failed")
    items: dict[int, dict[str, Any]] = {}
    texts: dict[int, str] = {}
    done: dict[int, dict[str, Any]] = {}
    for event in events[2:-1]:
        kind, index = event["type"], event.get("output_index")
        if kind == "response.output_item.added":
            assert index == len(items)
            items[index] = event["item"]
            texts[index] = ""
        elif kind.endswith(".delta"):
            assert index in items and index not in done
            texts[index] += event["delta"]
        elif kind == "response.output_item.done":
            item = done[index] = event["item"]
            streamed = texts[index]
            if item["type"] == "message":
                assert item["content"][0]["text"] == streamed
            elif item["type"] == "reasoning":
                assert "".join(s["text"] for s in item["summary"]) == streamed
            elif item["type"] == "function_call":
                assert item["arguments"] == (streamed or "{}")
            elif item["type"] == "custom_tool_call":
                assert item["input"] == streamed
    final = events[-1]["response"]
    if final["status"] != "failed":
        assert final["output"] == [done[i] for i in sorted(done)]
        Response.model_validate(final)
    return final

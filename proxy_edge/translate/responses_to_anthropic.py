"""OpenAI Responses API <-> Anthropic Messages: a Responses client (Codex CLI) served by an Anthropic-format pool.

:func:`request` translates the request (what is carried, dropped or refused: see
:mod:`~proxy_edge.translate.responses_request` and :mod:`~proxy_edge.translate.responses_tools`); :func:`response`
translates a whole answer back. Decisions particular to Anthropic:

- ``max_output_tokens`` -> ``max_tokens``, which Anthropic requires: without one, :func:`default_max_tokens`
  (32000, which every Claude model since 3.7 accepts; 8192 for Claude 3.5 and 4096 for Claude 3).
- ``reasoning.effort`` -> ``thinking`` with the budget in :data:`THINKING_BUDGET` (minimal and none: no thinking),
  kept below ``max_tokens`` (OpenAI also counts reasoning in the output limit). Thinking is left out, and
  ``reasoning.effort`` reported as dropped, where Anthropic would refuse it: a budget under 1024 tokens, a forced
  tool choice, a Claude 3 model before 3.7, or a tool loop whose last assistant turn has no thinking to send back.
  With thinking on, ``temperature`` (other than 1) and ``top_p`` (under 0.95) are dropped, as Anthropic requires.
- Thinking comes back as a ``reasoning`` item: its text as the summary, and text and signature in
  ``encrypted_content`` (marked, see :func:`encrypt_thinking`), so the next request can send the exact block back.
  Reasoning items without that mark (made by another model) are dropped and reported.
- System and developer messages before the conversation become ``system``; later ones become user text (Anthropic
  has one system prompt).
- Cache breakpoints (``cache_control``) are set on the system prompt, the last tool and the last message: OpenAI
  caches prompts by itself, Anthropic only where it is told, and coding agents resend a growing prefix.
- ``text.format`` JSON schemas are refused (ask for JSON in the prompt instead).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from proxy_edge.translate import TranslationError
from proxy_edge.translate.common import arguments_to_input, image_to_anthropic, input_to_arguments, tool_id
from proxy_edge.translate.responses_out import (
    ResponsesContext,
    call_item,
    message_item,
    reasoning_item,
    response_object,
    status_of,
    usage,
)
from proxy_edge.translate.responses_request import Piece, ResponsesRequest, read_request
from proxy_edge.translate.responses_tools import call_item_fields, upstream_tool_name

DEFAULT_MAX_TOKENS = 32000
THINKING_BUDGET = {"none": 0, "minimal": 0, "low": 2048, "medium": 8192, "high": 16384, "xhigh": 24576}
MIN_BUDGET = 1024
"""Anthropic's smallest ``thinking.budget_tokens``."""
THINKING_MARK = "pgthink1."
"""Starts an ``encrypted_content`` that holds an Anthropic thinking block."""
_OLD_CLAUDE = re.compile(r"claude-(?:instant|2|3-(?!7))", re.IGNORECASE)
_CLAUDE_3 = re.compile(r"claude-3-(?:haiku|sonnet|opus)", re.IGNORECASE)
_CACHEABLE = frozenset({"text", "image", "document", "tool_result", "tool_use"})


def default_max_tokens(model: Any) -> int:
    """``max_tokens`` for a request that gave none."""
    name = model if isinstance(model, str) else ""
    if _CLAUDE_3.search(name):
        return 4096
    if _OLD_CLAUDE.search(name):
        return 8192
    return DEFAULT_MAX_TOKENS


def encrypt_thinking(block: dict[str, Any]) -> str:
    """A thinking or redacted thinking block as a reasoning item's ``encrypted_content``."""
    if block.get("type") == "redacted_thinking":
        data: dict[str, Any] = {"r": block.get("data", "")}
    else:
        data = {"t": block.get("thinking", ""), "s": block.get("signature", "")}
    return THINKING_MARK + base64.urlsafe_b64encode(json.dumps(data, ensure_ascii=False).encode()).decode()


def decrypt_thinking(encrypted: Any) -> dict[str, Any] | None:
    """The thinking block an ``encrypted_content`` of :func:`encrypt_thinking` holds; None for any other."""
    if not isinstance(encrypted, str) or not encrypted.startswith(THINKING_MARK):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(encrypted[len(THINKING_MARK):]))
    except (ValueError, binascii.Error):
        return None
    if isinstance(data, dict) and isinstance(data.get("r"), str):
        return {"type": "redacted_thinking", "data": data["r"]}
    if isinstance(data, dict) and isinstance(data.get("t"), str) and isinstance(data.get("s"), str):
        return {"type": "thinking", "thinking": data["t"], "signature": data["s"]}
    return None


def request(body: dict[str, Any]) -> tuple[dict[str, Any], ResponsesRequest]:
    """A Responses request as an Anthropic Messages request, and what was read of it (``dropped`` among it)."""
    req = read_request(body, "anthropic")
    dropped = req.dropped
    if req.text_format is not None:
        raise TranslationError("text.format: JSON output formats cannot be translated for Anthropic-format pools; "
                               "ask for JSON in the instructions, or use a model served by an OpenAI-format pool")
    out: dict[str, Any] = {"model": req.model}
    system, messages = _messages(req.pieces, dropped)
    if system:
        out["system"] = [{"type": "text", "text": text} for text in system]
    out["messages"] = messages
    limit = req.max_output_tokens
    out["max_tokens"] = limit if isinstance(limit, int) and limit > 0 else default_max_tokens(req.model)
    if req.tools:
        out["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                        for t in req.tools]
        choice = _tool_choice(req)
        if choice is not None:
            out["tool_choice"] = choice
    thinking = _thinking(req, out, messages)
    if thinking is not None:
        out["thinking"] = thinking
    elif req.effort not in (None, "none", "minimal"):
        dropped.append("reasoning.effort")
    _sampling(req, out, thinking is not None, dropped)
    if req.stream:
        out["stream"] = True
    if req.user:
        out["metadata"] = {"user_id": req.user}
    _cache_breakpoints(out)
    req.dropped = sorted(set(dropped))
    return out, req


def _messages(pieces: list[Piece], dropped: list[str]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for i, piece in enumerate(pieces):
        where = f"input (piece {i})"
        if piece.role == "system" and not messages:
            system.append(piece.text)
            continue
        block = _block(piece, where, dropped)
        if block is None:
            continue
        role = "assistant" if piece.role == "assistant" else "user"
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].append(block)
        else:
            messages.append({"role": role, "content": [block]})
    for message in messages:
        if message["role"] == "user":  # tool results answer the turn before: they come first
            content = message["content"]
            message["content"] = ([b for b in content if b["type"] == "tool_result"]
                                  + [b for b in content if b["type"] != "tool_result"])
    return system, messages


def _block(piece: Piece, where: str, dropped: list[str]) -> dict[str, Any] | None:
    if piece.kind == "text":
        return {"type": "text", "text": piece.text}
    if piece.kind == "image":
        return image_to_anthropic({"image_url": {"url": piece.url}}, where)
    if piece.kind == "file":
        return _document(piece, where)
    if piece.kind == "call":
        return {"type": "tool_use", "id": tool_id(piece.call_id), "name": piece.name,
                "input": arguments_to_input(piece.arguments, where)}
    if piece.kind == "result":
        content = piece.content
        if isinstance(content, list):
            content = [_block(part, where, dropped) for part in content]
        return {"type": "tool_result", "tool_use_id": tool_id(piece.call_id), "content": content}
    thinking = decrypt_thinking(piece.content.get("encrypted_content"))
    if thinking is None:
        dropped.append("input.reasoning")
    return thinking


def _document(piece: Piece, where: str) -> dict[str, Any]:
    head, _, data = piece.url.partition(",")
    media = head.removeprefix("data:").removesuffix(";base64")
    if media != "application/pdf" or not head.endswith(";base64"):
        raise TranslationError(f"{where}: only PDF files (a base64 data URL) can be sent to an Anthropic-format "
                               "pool; send other files as text")
    block: dict[str, Any] = {"type": "document", "source": {"type": "base64", "media_type": media, "data": data}}
    if piece.text:
        block["title"] = piece.text
    return block


def _tool_choice(req: ResponsesRequest) -> dict[str, Any] | None:
    choice = req.tool_choice
    out: dict[str, Any] | None
    if choice is None:
        out = None
    elif choice in ("auto", "none"):
        out = {"type": choice}
    elif choice == "required":
        out = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        out = {"type": "tool", "name": upstream_tool_name(choice.get("name"), choice.get("namespace"), req.names,
                                                          "tool_choice")}
    else:
        raise TranslationError(f"tool_choice: {choice!r} cannot be translated (auto, none, required and a named "
                               "function or custom tool can)")
    if req.parallel_tool_calls is False and (out is None or out["type"] != "none"):
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return out


def _thinking(req: ResponsesRequest, out: dict[str, Any], messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    budget = THINKING_BUDGET.get(req.effort or "none", THINKING_BUDGET["medium"])
    budget = min(budget, out["max_tokens"] - 1)
    if budget < MIN_BUDGET or _OLD_CLAUDE.search(str(req.model or "")):
        return None
    if out.get("tool_choice", {}).get("type") in ("any", "tool"):
        return None  # Anthropic allows only auto and none with thinking
    last = messages[-1] if messages else None
    in_tool_loop = last is not None and any(b["type"] == "tool_result" for b in last["content"])
    if in_tool_loop and len(messages) > 1:
        first = messages[-2]["content"][0]["type"] if messages[-2]["content"] else ""
        if first not in ("thinking", "redacted_thinking"):
            return None  # Anthropic asks for the thinking that led to these tool calls; there is none to send
    return {"type": "enabled", "budget_tokens": budget}


def _sampling(req: ResponsesRequest, out: dict[str, Any], thinking: bool, dropped: list[str]) -> None:
    temperature, top_p = req.temperature, req.top_p
    if temperature is not None:
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
            raise TranslationError(f"temperature: Anthropic-format pools take 0 to 1, got {temperature!r}; lower it")
        if thinking and temperature != 1:
            dropped.append("temperature")
        else:
            out["temperature"] = temperature
    if top_p is not None:
        if thinking and (not isinstance(top_p, int | float) or top_p < 0.95):
            dropped.append("top_p")
        else:
            out["top_p"] = top_p


def _cache_breakpoints(out: dict[str, Any]) -> None:
    marks: list[dict[str, Any]] = []
    if out.get("system"):
        marks.append(out["system"][-1])
    if out.get("tools"):
        marks.append(out["tools"][-1])
    if out["messages"] and out["messages"][-1]["content"]:
        marks.append(out["messages"][-1]["content"][-1])
    for block in marks:
        if block.get("type", "text") in _CACHEABLE and (block.get("type") != "text" or block.get("text")):
            block["cache_control"] = {"type": "ephemeral"}


def response_usage(value: Any) -> dict[str, Any]:
    """Anthropic usage as Responses usage (cache reads and writes count as input, as OpenAI counts them)."""
    value = value if isinstance(value, dict) else {}
    cached = value.get("cache_read_input_tokens") or 0
    written = value.get("cache_creation_input_tokens") or 0
    return usage((value.get("input_tokens") or 0) + written + cached, value.get("output_tokens") or 0, cached,
                 cache_write=written)


def response(body: dict[str, Any], context: ResponsesContext) -> dict[str, Any]:
    """An Anthropic message as a Responses ``response`` object."""
    base = re.sub(r"[^A-Za-z0-9]", "", str(body.get("id") or "")).removeprefix("msg") or "translated"
    output: list[dict[str, Any]] = []
    for i, block in enumerate(body.get("content") or []):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and block.get("text"):
            output.append(message_item(f"msg_{base}_{i}", block["text"]))
        elif kind == "thinking":
            output.append(reasoning_item(f"rs_{base}_{i}", block.get("thinking", ""), encrypt_thinking(block)))
        elif kind == "redacted_thinking":
            output.append(reasoning_item(f"rs_{base}_{i}", "", encrypt_thinking(block)))
        elif kind == "tool_use":
            fields = call_item_fields(context.names, str(block.get("name")), input_to_arguments(block.get("input")))
            output.append(call_item(f"fc_{base}_{i}", str(block.get("id")), fields))
    status, reason = status_of(body.get("stop_reason"))
    return response_object(context.echo, f"resp_{base}", str(body.get("model") or ""), output, status,
                           response_usage(body.get("usage")), reason)

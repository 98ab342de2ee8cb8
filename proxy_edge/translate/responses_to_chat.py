"""OpenAI Responses API <-> Chat Completions: a Responses client served by an upstream that speaks only Chat
(Gemini's OpenAI-compatible endpoint, local servers).

:func:`request` translates the request (what is carried, dropped or refused: see
:mod:`~proxy_edge.translate.responses_request` and :mod:`~proxy_edge.translate.responses_tools`); :func:`response`
translates a whole answer back. Decisions particular to Chat:

- instructions, system and developer messages -> ``system`` messages where they stand (Chat takes them anywhere).
- ``function_call`` / ``custom_tool_call`` items -> the assistant message's ``tool_calls`` (a freeform call's input
  as ``{"input": ...}``); their outputs -> ``tool`` messages (text only: Chat tool messages take no images).
- ``max_output_tokens`` -> ``max_tokens``, or ``max_completion_tokens`` for OpenAI's reasoning models
  (:data:`~proxy_edge.translate.anthropic_to_openai.REASONING_MODEL`); ``reasoning.effort`` -> ``reasoning_effort``.
- ``text.format`` json_schema / json_object -> ``response_format``.
- ``stream`` -> ``stream`` with ``stream_options.include_usage`` (the usage goes into ``response.completed``).
- Only the core Chat fields are sent, so that Chat-compatible upstreams that refuse unknown fields still serve:
  ``prompt_cache_key``, ``safety_identifier``, ``service_tier`` and ``metadata`` are dropped and reported, and
  ``parallel_tool_calls`` is sent only when false.
"""

from __future__ import annotations

import json
from typing import Any

from proxy_edge.translate import TranslationError
from proxy_edge.translate.anthropic_to_openai import REASONING_MODEL
from proxy_edge.translate.common import text_of_parts
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


def request(body: dict[str, Any]) -> tuple[dict[str, Any], ResponsesRequest]:
    """A Responses request as a Chat Completions request, and what was read of it (``dropped`` among it)."""
    req = read_request(body, "chat")
    out: dict[str, Any] = {"model": req.model, "messages": _messages(req.pieces)}
    limit = req.max_output_tokens
    if limit is not None:
        reasoning = isinstance(req.model, str) and REASONING_MODEL.match(req.model) is not None
        out["max_completion_tokens" if reasoning else "max_tokens"] = limit
    for name in ("temperature", "top_p", "user"):
        value = getattr(req, name)
        if value is not None:
            out[name] = value
    if req.effort is not None:
        out["reasoning_effort"] = req.effort
    if req.tools:
        out["tools"] = [{"type": "function", "function": {
            "name": t.name, **({"description": t.description} if t.description else {}), "parameters": t.parameters}}
            for t in req.tools]
        if req.tool_choice is not None:
            out["tool_choice"] = _tool_choice(req)
        if req.parallel_tool_calls is False:
            out["parallel_tool_calls"] = False
    if req.text_format is not None:
        out["response_format"] = _response_format(req.text_format)
    if req.stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out, req


def _messages(pieces: list[Piece]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for i, piece in enumerate(pieces):
        where = f"input (piece {i})"
        last = messages[-1] if messages else None
        if piece.role == "system":
            if last is not None and last["role"] == "system":
                last["content"] += "\n\n" + piece.text  # the parts of one developer message, or several
            else:
                messages.append({"role": "system", "content": piece.text})
        elif piece.kind == "result":
            content = piece.content
            if isinstance(content, list):
                content = text_of_parts([{"type": p.kind, "text": p.text} for p in content], f"{where}.output")
            messages.append({"role": "tool", "tool_call_id": piece.call_id, "content": content})
        elif piece.kind == "reasoning":
            continue  # Chat takes no reasoning back (reported as dropped)
        elif piece.role == "assistant":
            if last is None or last["role"] != "assistant" or (piece.kind == "text" and last.get("tool_calls")):
                last = {"role": "assistant", "content": None}
                messages.append(last)
            if piece.kind == "call":
                last.setdefault("tool_calls", []).append({"id": piece.call_id, "type": "function", "function": {
                    "name": piece.name, "arguments": piece.arguments}})
            else:
                last["content"] = (last["content"] or "") + piece.text
        else:
            part = _user_part(piece)
            if last is not None and last["role"] == "user":
                last["content"].append(part)
            else:
                messages.append({"role": "user", "content": [part]})
    return messages


def _user_part(piece: Piece) -> dict[str, Any]:
    if piece.kind == "image":
        return {"type": "image_url", "image_url": {"url": piece.url}}
    if piece.kind == "file":
        return {"type": "file", "file": {"file_data": piece.url, **({"filename": piece.text} if piece.text else {})}}
    return {"type": "text", "text": piece.text}


def _tool_choice(req: ResponsesRequest) -> Any:
    choice = req.tool_choice
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        name = upstream_tool_name(choice.get("name"), choice.get("namespace"), req.names, "tool_choice")
        return {"type": "function", "function": {"name": name}}
    raise TranslationError(f"tool_choice: {choice!r} cannot be translated (auto, none, required and a named function "
                           "or custom tool can)")


def _response_format(fmt: dict[str, Any]) -> dict[str, Any]:
    if fmt["type"] == "json_object":
        return {"type": "json_object"}
    schema = {key: fmt[key] for key in ("name", "schema", "strict", "description") if key in fmt}
    return {"type": "json_schema", "json_schema": schema}


def chat_usage(value: Any) -> dict[str, Any]:
    """Chat usage as Responses usage."""
    value = value if isinstance(value, dict) else {}
    prompt_details = value.get("prompt_tokens_details")
    completion_details = value.get("completion_tokens_details")
    cached = (prompt_details.get("cached_tokens") or 0) if isinstance(prompt_details, dict) else 0
    reasoning = (completion_details.get("reasoning_tokens") or 0) if isinstance(completion_details, dict) else 0
    return usage(value.get("prompt_tokens") or 0, value.get("completion_tokens") or 0, cached, reasoning)


def response(body: dict[str, Any], context: ResponsesContext) -> dict[str, Any]:
    """A chat completion (its first choice) as a Responses ``response`` object."""
    base = "".join(c for c in str(body.get("id") or "") if c.isalnum()).removeprefix("chatcmpl") or "translated"
    choices = body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    thought = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(thought, str) and thought:
        output.append(reasoning_item(f"rs_{base}", thought, None))
    text = message.get("content") or ""
    if isinstance(text, list):
        text = text_of_parts(text, "choices[0].message.content", ("text", "refusal"))
    text += message.get("refusal") or ""
    if text:
        output.append(message_item(f"msg_{base}", text))
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise TranslationError(f"choices[0].message.tool_calls[{i}]: only function calls can be translated")
        arguments = function.get("arguments")
        arguments = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        fields = call_item_fields(context.names, str(function.get("name")), arguments)
        output.append(call_item(f"fc_{base}_{i}", str(call.get("id") or f"call_{i}"), fields))
    status, reason = status_of(choice.get("finish_reason"))
    return response_object(context.echo, f"resp_{base}", str(body.get("model") or ""), output, status,
                           chat_usage(body.get("usage")), reason)

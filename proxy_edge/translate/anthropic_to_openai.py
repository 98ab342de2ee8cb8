"""Anthropic Messages shapes -> OpenAI Chat Completions shapes.

:func:`request` serves an Anthropic client from an OpenAI-format pool; :func:`response` serves an OpenAI client from
an Anthropic-format pool. ``cache_control`` (a caching hint, top-level or on blocks) and ``citations`` on earlier
turns have no counterpart and are left out; everything else that has none is a :class:`TranslationError`.
"""

from __future__ import annotations

import re
import time
from typing import Any

from proxy_edge.translate import TranslationError
from proxy_edge.translate.common import (
    DEFAULT_PARAMETERS,
    finish_reason,
    image_to_openai,
    input_to_arguments,
    reject_unknown,
    text_of_parts,
)

REQUEST_FIELDS = frozenset({
    "model", "messages", "system", "max_tokens", "stop_sequences", "temperature", "top_p", "stream", "tools",
    "tool_choice", "metadata", "thinking", "service_tier", "cache_control",
})
REASONING_MODEL = re.compile(r"(?:[\w.-]+/)?(?:o\d|gpt-5)", re.IGNORECASE)
"""OpenAI's reasoning models (o1, o3-mini, o4-mini, gpt-5, ...): they refuse ``max_tokens`` and take
``max_completion_tokens`` instead. Other OpenAI-format upstreams (Gemini's endpoint, local servers) may know only
``max_tokens``, so the newer name is sent only where it is required."""
SERVER_TOOL_HINT = ("server tools (web search, code execution, bash, text editor, computer use) run at Anthropic "
                    "and have no OpenAI counterpart")


def request(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic Messages request as an OpenAI Chat Completions request."""
    reject_unknown(body, REQUEST_FIELDS, "OpenAI", "Anthropic")
    out: dict[str, Any] = {"model": body.get("model")}
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, list) and system:
        text_of_parts(system, "system")  # only text blocks
        # Blocks are separate paragraphs (Claude Code sends its preamble and its instructions apart).
        messages.append({"role": "system", "content": "\n\n".join(str(b.get("text", "")) for b in system)})
    elif system:
        messages.append({"role": "system", "content": text_of_parts(system, "system")})
    raw = body.get("messages")
    if not isinstance(raw, list):
        raise TranslationError("messages: must be a list of messages")
    for i, message in enumerate(raw):
        messages.extend(_message(message, f"messages[{i}]"))
    out["messages"] = messages
    if "max_tokens" in body:
        model = body.get("model")
        reasoning = isinstance(model, str) and REASONING_MODEL.match(model) is not None
        out["max_completion_tokens" if reasoning else "max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    if body.get("tools"):
        out["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(body["tools"])]
    if body.get("tool_choice") is not None:
        out.update(_tool_choice(body["tool_choice"]))
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        raise TranslationError("thinking: extended thinking cannot be translated for OpenAI-format pools; turn it "
                               "off, or use a model served by an Anthropic-format pool")
    if body.get("service_tier") not in (None, "auto"):
        raise TranslationError("service_tier: only 'auto' can be translated for OpenAI-format pools; remove it")
    return out


def _message(message: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        raise TranslationError(f"{where}: must be an object with role 'user' or 'assistant'")
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content: must be a string or a list of content blocks")
    if role == "assistant":
        return [_assistant(content, where)]
    tool_messages: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        at = f"{where}.content[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            tool_messages.append(_tool_result(block, at))
        elif kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append(image_to_openai(block.get("source"), at))
        else:
            raise _block_error(kind, at)
    # Tool results answer the previous assistant turn, so they come first (Anthropic asks the same of clients).
    return tool_messages + ([{"role": "user", "content": parts}] if parts else [])


def _assistant(content: list[Any], where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        at = f"{where}.content[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": input_to_arguments(block.get("input"))}})
        else:
            raise _block_error(kind, at)
    out: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        out["tool_calls"] = calls
    return out


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    content = block.get("content", "")
    text = text_of_parts(content, f"{where}.content") if not isinstance(content, str) else content
    if isinstance(content, list):
        # Keep the list shape (OpenAI tool messages take text parts too), so a round trip returns what it got.
        out_content: Any = [{"type": "text", "text": part.get("text", "")} for part in content]
    else:
        out_content = text
    if block.get("is_error") is True:
        # OpenAI tool messages have no error flag; the model reads it in the text instead.
        out_content = "[error] " + text
    return {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": out_content}


def _block_error(kind: Any, where: str) -> TranslationError:
    if kind in ("thinking", "redacted_thinking"):
        return TranslationError(f"{where}: thinking blocks cannot be translated for OpenAI-format pools; turn "
                                "extended thinking off, or use a model served by an Anthropic-format pool")
    if kind == "document":
        return TranslationError(f"{where}: document blocks (PDF, plain-text documents) cannot be translated for "
                                "OpenAI-format pools; send the text as a text block instead")
    if kind in ("server_tool_use", "web_search_tool_result", "code_execution_tool_result", "mcp_tool_use",
                "mcp_tool_result", "container_upload"):
        return TranslationError(f"{where}: {kind} blocks cannot be translated: {SERVER_TOOL_HINT}")
    return TranslationError(f"{where}: a content block of type {kind!r} cannot be translated for OpenAI-format "
                            "pools (text, image, tool_use and tool_result can)")


def _tool(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        raise TranslationError(f"{where}: must be an object with a name")
    if tool.get("type") not in (None, "custom"):
        raise TranslationError(f"{where}: the tool type {tool['type']!r} cannot be translated: {SERVER_TOOL_HINT}; "
                               "declare a custom tool with an input_schema instead")
    function: dict[str, Any] = {"name": tool["name"]}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema") or dict(DEFAULT_PARAMETERS)
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> dict[str, Any]:
    if not isinstance(choice, dict):
        raise TranslationError("tool_choice: must be an object such as {\"type\": \"auto\"}")
    kind = choice.get("type")
    out: dict[str, Any] = {}
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise TranslationError(f"tool_choice: type {kind!r} cannot be translated (auto, any, none and tool can)")
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False
    return out


def usage(value: Any) -> dict[str, Any]:
    """Anthropic usage as OpenAI usage: cache reads and writes count as prompt tokens, as OpenAI counts them."""
    value = value if isinstance(value, dict) else {}
    cached = value.get("cache_read_input_tokens") or 0
    prompt = (value.get("input_tokens") or 0) + (value.get("cache_creation_input_tokens") or 0) + cached
    completion = value.get("output_tokens") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached}}


def response(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic message as an OpenAI chat completion (thinking blocks, never asked for here, are left out)."""
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in body.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            texts.append(block.get("text", ""))
        elif block.get("type") == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": input_to_arguments(block.get("input"))}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts else None, "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": body.get("id"), "object": "chat.completion", "created": int(time.time()), "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(body.get("stop_reason")) or "stop",
                     "logprobs": None}],
        "usage": usage(body.get("usage")),
    }

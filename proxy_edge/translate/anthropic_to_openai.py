"""Anthropic Messages shapes -> OpenAI Chat Completions shapes.

:func:`request` serves an Anthropic client from an OpenAI-format pool; :func:`response` serves an OpenAI client from
an Anthropic-format pool. What has no counterpart is either left out, and named in the list ``dropped`` the caller
passes (the edge reports it in a response header), when leaving it out changes nothing the client relies on, or
refused with a :class:`TranslationError` naming it. The field-by-field table is in docs/translation.md.
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
    "tool_choice", "metadata", "thinking", "service_tier", "cache_control", "context_management", "output_config",
    "betas", "top_k",
})
DROPPED_FIELDS = ("cache_control", "context_management", "betas", "top_k")
"""Fields left out with no effect on what the client gets back: caching hints, Anthropic's context editing (the whole
conversation is sent), beta names, ``top_k`` (a sampling detail OpenAI lacks)."""
REASONING_MODEL = re.compile(r"(?:[\w.-]+/)?(?:o\d|gpt-5)", re.IGNORECASE)
"""OpenAI's reasoning models (o1, o3-mini, o4-mini, gpt-5, ...): they refuse ``max_tokens`` and take
``max_completion_tokens`` instead. Other OpenAI-format upstreams (Gemini's endpoint, local servers) may know only
``max_tokens``, so the newer name is sent only where it is required."""
EFFORT_MODEL = re.compile(r"(?:[\w.-]+/)?(?:o\d|gpt-5|gemini-(?:2\.5|[3-9]))", re.IGNORECASE)
"""Models that take ``reasoning_effort``: OpenAI's reasoning models and Gemini's thinking models."""
EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high", "xhigh": "high"}
SERVER_TOOL_HINT = ("server tools (web search, code execution, bash, text editor, computer use) run at Anthropic "
                    "and have no OpenAI counterpart")


def request(body: dict[str, Any], dropped: list[str] | None = None) -> dict[str, Any]:
    """An Anthropic Messages request as an OpenAI Chat Completions request; the names of fields left out are
    appended to ``dropped``."""
    reject_unknown(body, REQUEST_FIELDS, "OpenAI", "Anthropic")
    left_out: list[str] = [name for name in DROPPED_FIELDS if body.get(name) is not None]
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
        messages.extend(_message(message, f"messages[{i}]", left_out))
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
        out["tools"] = [function_tool(tool, f"tools[{i}]") for i, tool in enumerate(body["tools"])]
        if any(isinstance(tool, dict) and "defer_loading" in tool for tool in body["tools"]):
            left_out.append("tools[].defer_loading")  # every tool is offered in full
    if body.get("tool_choice") is not None:
        out.update(tool_choice(body["tool_choice"]))
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        out["user"] = metadata["user_id"]
    effort = reasoning_effort(body, left_out)
    if effort is not None:
        out["reasoning_effort"] = effort
    fmt = output_format(body.get("output_config"))
    if fmt is not None:
        out["response_format"] = {"type": "json_schema", "json_schema": fmt}
    if body.get("service_tier") not in (None, "auto"):
        raise TranslationError("service_tier: only 'auto' can be translated for OpenAI-format pools; remove it")
    if dropped is not None:
        dropped.extend(dict.fromkeys(left_out))
    return out


def reasoning_effort(body: dict[str, Any], left_out: list[str]) -> str | None:
    """The OpenAI reasoning effort (low, medium or high) for ``thinking`` and ``output_config.effort`` where the
    model takes one (:data:`EFFORT_MODEL`), else None and what is left out appended to ``left_out``: the OpenAI
    model answers without Anthropic's visible thinking either way."""
    thinking = body.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if thinking is not None and kind not in ("enabled", "adaptive", "disabled"):
        raise TranslationError(f"thinking: type {kind!r} cannot be translated (enabled, adaptive and disabled can)")
    config = body.get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    model = body.get("model")
    takes_effort = isinstance(model, str) and EFFORT_MODEL.match(model) is not None
    wanted: str | None = None
    if kind in ("enabled", "adaptive") or (effort is not None and kind != "disabled"):
        if effort is not None:
            wanted = EFFORTS.get(effort.lower()) if isinstance(effort, str) else None
            if wanted is None:
                raise TranslationError(f"output_config.effort: {effort!r} cannot be translated (low, medium, high "
                                       "and max can)")
        elif kind == "enabled":
            budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
            budget = budget if isinstance(budget, int) else 0
            wanted = "low" if budget < 4096 else "medium" if budget < 16384 else "high"
        else:
            wanted = "medium"
    if wanted is not None and takes_effort:
        return wanted
    if thinking is not None and kind != "disabled":
        left_out.append("thinking")
    if effort is not None:
        left_out.append("output_config.effort")
    return None


def output_format(config: Any) -> dict[str, Any] | None:
    """``output_config.format`` (structured output) as OpenAI's JSON schema format (``name``, ``schema``,
    ``strict``), None without one; ``effort`` is read by :func:`reasoning_effort`; other keys are refused."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise TranslationError("output_config: must be an object")
    unknown = sorted(key for key in config if key not in ("effort", "format"))
    if unknown:
        raise TranslationError(f"output_config.{unknown[0]}: cannot be translated for OpenAI-format pools (effort "
                               "and format can); remove it, or use a model served by an Anthropic-format pool")
    fmt = config.get("format")
    if fmt is None:
        return None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        return {"name": str(fmt.get("name") or "output"), "schema": fmt["schema"], "strict": True}
    raise TranslationError("output_config.format: only {\"type\": \"json_schema\", \"schema\": {...}} can be "
                           "translated for OpenAI-format pools")


def _message(message: Any, where: str, left_out: list[str]) -> list[dict[str, Any]]:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
        raise TranslationError(f"{where}: must be an object with role 'user', 'assistant' or 'system'")
    role, content = message["role"], message.get("content")
    if role == "system":
        # A system message mid-conversation (Claude Code's environment notes): OpenAI takes one where it stands.
        text_of_parts(content, f"{where}.content")  # text only
        if isinstance(content, list):
            content = "\n\n".join(str(block.get("text", "")) for block in content)
        return [{"role": "system", "content": content or ""}]
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content: must be a string or a list of content blocks")
    if role == "assistant":
        return [_assistant(content, where, left_out)]
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
            raise block_error(kind, at)
    # Tool results answer the previous assistant turn, so they come first (Anthropic asks the same of clients).
    return tool_messages + ([{"role": "user", "content": parts}] if parts else [])


def _assistant(content: list[Any], where: str, left_out: list[str]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        at = f"{where}.content[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind in ("thinking", "redacted_thinking"):
            left_out.append("thinking blocks")  # signed for Anthropic's models only; the OpenAI model reasons anew
        elif kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append({"id": block.get("id"), "type": "function",
                          "function": {"name": block.get("name"), "arguments": input_to_arguments(block.get("input"))}})
        else:
            raise block_error(kind, at)
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


def block_error(kind: Any, where: str) -> TranslationError:
    """The refusal of a content block of type ``kind`` that has no OpenAI counterpart."""
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


def function_tool(tool: Any, where: str) -> dict[str, Any]:
    """An Anthropic tool as a Chat Completions function tool (server tools are refused)."""
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


def tool_choice(choice: Any) -> dict[str, Any]:
    """Anthropic's ``tool_choice`` as Chat's ``tool_choice`` and, for ``disable_parallel_tool_use``,
    ``parallel_tool_calls``."""
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

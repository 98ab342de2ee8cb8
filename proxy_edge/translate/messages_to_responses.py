"""Anthropic Messages -> OpenAI Responses: an Anthropic client (Claude Code) served by an OpenAI-format pool whose
upstream speaks only the Responses API (``apis: [responses]``, for Responses-only models such as gpt-5-codex).

:func:`request` translates the request, :func:`response` a whole answer back; streams are translated by
:class:`~proxy_edge.translate.messages_stream.ResponsesToAnthropicStream`. The request fields Anthropic and Chat
share are read as :mod:`~proxy_edge.translate.anthropic_to_openai` reads them (the same fields dropped, the same
refusals, the same reasoning effort); decisions particular to Responses:

- ``system`` -> ``instructions``; a ``system`` message mid-conversation (Claude Code's environment notes) -> a
  ``developer`` message item where it stands.
- text -> ``input_text`` (user) or ``output_text`` (assistant) parts; images -> ``input_image``; ``tool_use`` ->
  a ``function_call`` item (``call_id`` the tool_use id); ``tool_result`` -> ``function_call_output`` (text and
  images; ``is_error`` as an ``[error]`` prefix, since Responses has no error flag); thinking blocks are left out.
- ``max_tokens`` -> ``max_output_tokens`` (at least :data:`MIN_OUTPUT_TOKENS`, OpenAI's minimum);
  ``temperature`` and ``top_p`` are dropped for reasoning models, which refuse them.
- ``stop_sequences``: refused, Responses has no stop sequences (Claude Code sends none).
- ``metadata.user_id`` -> ``prompt_cache_key`` (its SHA-256 when longer than 64 characters), so that a
  conversation's requests reach the same prompt cache.
- ``store: false`` always: the whole conversation is in every request, nothing is kept at OpenAI.
"""

from __future__ import annotations

import hashlib
from typing import Any

from proxy_edge.translate import TranslationError
from proxy_edge.translate import anthropic_to_openai as a2o
from proxy_edge.translate import openai_to_anthropic as o2a
from proxy_edge.translate.common import (
    arguments_to_input,
    image_to_openai,
    input_to_arguments,
    reject_unknown,
    text_of_parts,
    tool_id,
)

MIN_OUTPUT_TOKENS = 16
"""OpenAI refuses a smaller ``max_output_tokens``."""
MAX_CACHE_KEY = 64


def request(body: dict[str, Any], dropped: list[str] | None = None) -> dict[str, Any]:
    """An Anthropic Messages request as an OpenAI Responses request; the names of fields left out are appended to
    ``dropped``."""
    reject_unknown(body, a2o.REQUEST_FIELDS, "OpenAI Responses", "Anthropic")
    if body.get("stop_sequences"):
        raise TranslationError("stop_sequences: the Responses API has no stop sequences, so the edge cannot "
                               "translate them; remove them, or use a model served by a pool that speaks Chat "
                               "Completions or Anthropic Messages")
    if body.get("service_tier") not in (None, "auto"):
        raise TranslationError("service_tier: only 'auto' can be translated for OpenAI-format pools; remove it")
    left_out: list[str] = [name for name in a2o.DROPPED_FIELDS if body.get(name) is not None]
    model = body.get("model")
    out: dict[str, Any] = {"model": model}
    system = body.get("system")
    if system:
        text_of_parts(system, "system")  # only text blocks
        out["instructions"] = _joined(system)
    raw = body.get("messages")
    if not isinstance(raw, list):
        raise TranslationError("messages: must be a list of messages")
    items: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        items.extend(_message(message, f"messages[{i}]", left_out))
    out["input"] = items
    if isinstance(body.get("max_tokens"), int):
        out["max_output_tokens"] = max(MIN_OUTPUT_TOKENS, body["max_tokens"])
    reasoning = isinstance(model, str) and a2o.REASONING_MODEL.match(model) is not None
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            if reasoning:
                left_out.append(name)  # OpenAI's reasoning models refuse sampling settings
            else:
                out[name] = body[name]
    if body.get("tools"):
        out["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(body["tools"])]
        if any(isinstance(tool, dict) and "defer_loading" in tool for tool in body["tools"]):
            left_out.append("tools[].defer_loading")  # every tool is offered in full
    if body.get("tool_choice") is not None:
        out.update(_tool_choice(body["tool_choice"]))
    effort = a2o.reasoning_effort(body, left_out)
    if effort is not None:
        out["reasoning"] = {"effort": effort}
    fmt = a2o.output_format(body.get("output_config"))
    if fmt is not None:
        out["text"] = {"format": {"type": "json_schema", **fmt}}
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str) and metadata["user_id"]:
        out["prompt_cache_key"] = cache_key(metadata["user_id"])
    out["store"] = False
    if body.get("stream") is True:
        out["stream"] = True
    if dropped is not None:
        dropped.extend(dict.fromkeys(left_out))
    return out


def cache_key(user_id: str) -> str:
    """``metadata.user_id`` as a ``prompt_cache_key``: as it is, or its SHA-256 when too long."""
    if len(user_id) <= MAX_CACHE_KEY:
        return user_id
    return hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()


def _joined(content: Any) -> str:
    """The text of a string or of text blocks, blocks as separate paragraphs (Claude Code sends its preamble and
    its instructions apart)."""
    if isinstance(content, list):
        return "\n\n".join(str(block.get("text", "")) for block in content)
    return str(content or "")


def _message(message: Any, where: str, left_out: list[str]) -> list[dict[str, Any]]:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant", "system"):
        raise TranslationError(f"{where}: must be an object with role 'user', 'assistant' or 'system'")
    role, content = message["role"], message.get("content")
    if role == "system":
        text_of_parts(content, f"{where}.content")  # text only
        return [_text_message("developer", _joined(content))]
    if isinstance(content, str):
        return [_text_message(role, content)]
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content: must be a string or a list of content blocks")
    if role == "assistant":
        return _assistant(content, where, left_out)
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(content):
        at = f"{where}.content[{i}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            results.append(_tool_result(block, at))
        elif kind == "text":
            parts.append({"type": "input_text", "text": str(block.get("text", ""))})
        elif kind == "image":
            parts.append(_image(block, at))
        else:
            raise a2o.block_error(kind, at)
    # Tool results answer the previous assistant turn, so they come first (Anthropic asks the same of clients).
    return results + ([{"type": "message", "role": "user", "content": parts}] if parts else [])


def _text_message(role: str, text: str) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    url = image_to_openai(block.get("source"), where)["image_url"]["url"]
    return {"type": "input_image", "image_url": url, "detail": "auto"}


def _assistant(content: list[Any], where: str, left_out: list[str]) -> list[dict[str, Any]]:
    """Text runs as assistant message items and tool_use blocks as function_call items, in their order."""
    items: list[dict[str, Any]] = []
    texts: list[str] = []
    for i, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind in ("thinking", "redacted_thinking"):
            left_out.append("thinking blocks")  # signed for Anthropic's models only; the OpenAI model reasons anew
        elif kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use":
            if texts:
                items.append(_text_message("assistant", "".join(texts)))
                texts = []
            items.append({"type": "function_call", "call_id": str(block.get("id") or ""),
                          "name": block.get("name"), "arguments": input_to_arguments(block.get("input"))})
        else:
            raise a2o.block_error(kind, f"{where}.content[{i}]")
    if texts:
        items.append(_text_message("assistant", "".join(texts)))
    return items


def _tool_result(block: dict[str, Any], where: str) -> dict[str, Any]:
    content = block.get("content", "")
    error = block.get("is_error") is True  # Responses has no error flag: the model reads it in the output
    output: Any
    if isinstance(content, list):
        output = []
        for i, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text":
                output.append({"type": "input_text", "text": str(part.get("text", ""))})
            elif kind == "image":
                output.append(_image(part, f"{where}.content[{i}]"))
            else:
                raise TranslationError(f"{where}.content[{i}]: a {kind!r} block cannot be translated in a tool "
                                       "result (text and image can)")
        if error:
            output.insert(0, {"type": "input_text", "text": "[error] "})
    else:
        output = ("[error] " if error else "") + ("" if content is None else str(content))
    return {"type": "function_call_output", "call_id": str(block.get("tool_use_id") or ""), "output": output}


def _tool(tool: Any, where: str) -> dict[str, Any]:
    function = a2o.function_tool(tool, where)["function"]
    return {"type": "function", **function, "strict": False}


def _tool_choice(choice: Any) -> dict[str, Any]:
    out = a2o.tool_choice(choice)
    named = out.get("tool_choice")
    if isinstance(named, dict):
        out["tool_choice"] = {"type": "function", "name": named["function"]["name"]}
    return out


def usage(value: Any) -> dict[str, Any]:
    """Responses usage as Anthropic usage (OpenAI's input tokens include cached ones; Anthropic counts them apart)."""
    value = value if isinstance(value, dict) else {}
    return o2a.usage({"prompt_tokens": value.get("input_tokens"), "completion_tokens": value.get("output_tokens"),
                      "prompt_tokens_details": value.get("input_tokens_details")})


def stop_reason(status: Any, incomplete: Any, called: bool) -> str:
    """Anthropic's ``stop_reason`` for a response's ``status``, ``incomplete_details`` and whether it called a
    tool."""
    reason = incomplete.get("reason") if isinstance(incomplete, dict) else None
    if status == "incomplete" and reason == "content_filter":
        return "refusal"
    if status == "incomplete":
        return "max_tokens"
    return "tool_use" if called else "end_turn"


def message_id(response_id: Any) -> str:
    """An Anthropic message id for a Responses response id."""
    return "msg_" + (tool_id(str(response_id)).removeprefix("resp_") if response_id else "translated")


def response(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses ``response`` object as an Anthropic message (reasoning items are left out: their summaries are
    not Anthropic thinking, which comes signed)."""
    blocks: list[dict[str, Any]] = []
    for i, item in enumerate(body.get("output") or []):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            text = text_of_parts(item.get("content"), f"output[{i}].content", ("output_text", "refusal"))
            if text:
                blocks.append({"type": "text", "text": text})
        elif kind in ("function_call", "custom_tool_call"):
            where = f"output[{i}]"
            value = (arguments_to_input(item.get("arguments"), where) if kind == "function_call"
                     else {"input": str(item.get("input") or "")})
            blocks.append({"type": "tool_use", "id": tool_id(item.get("call_id")), "name": item.get("name"),
                           "input": value})
    called = any(block["type"] == "tool_use" for block in blocks)
    return {
        "id": message_id(body.get("id")), "type": "message", "role": "assistant", "model": body.get("model"),
        "content": blocks, "stop_reason": stop_reason(body.get("status"), body.get("incomplete_details"), called),
        "stop_sequence": None, "usage": usage(body.get("usage")),
    }

"""OpenAI Chat Completions shapes -> Anthropic Messages shapes.

:func:`request` serves an OpenAI client from an Anthropic-format pool; :func:`response` serves an Anthropic client
from an OpenAI-format pool. Parameters Anthropic lacks (``n`` > 1, penalties, ``logprobs``, ``seed``, JSON response
formats, ...) are a :class:`TranslationError`, never dropped.
"""

from __future__ import annotations

from typing import Any

from proxy_edge.translate import TranslationError
from proxy_edge.translate.common import (
    DEFAULT_PARAMETERS,
    arguments_to_input,
    image_to_anthropic,
    reject_unknown,
    stop_reason,
    text_of_parts,
    tool_id,
)

DEFAULT_MAX_TOKENS = 4096
"""Anthropic requires ``max_tokens``; an OpenAI request without one gets this."""
REQUEST_FIELDS = frozenset({
    "model", "messages", "max_tokens", "max_completion_tokens", "stop", "temperature", "top_p", "stream",
    "stream_options", "tools", "tool_choice", "parallel_tool_calls", "user", "n", "response_format",
    "prompt_cache_key", "store", "presence_penalty", "frequency_penalty", "logprobs", "service_tier",
})
# Accepted only with their neutral value: anything else changes the answer in a way Anthropic cannot.
_NEUTRAL: dict[str, tuple[Any, ...]] = {
    "n": (None, 1), "store": (None, False), "presence_penalty": (None, 0, 0.0), "frequency_penalty": (None, 0, 0.0),
    "logprobs": (None, False), "service_tier": (None, "auto"),
}
_MESSAGE_FIELDS = frozenset({"role", "content", "tool_calls", "tool_call_id", "refusal"})


def request(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI Chat Completions request as an Anthropic Messages request."""
    reject_unknown(body, REQUEST_FIELDS, "Anthropic", "OpenAI")
    for name, neutral in _NEUTRAL.items():
        if body.get(name) not in neutral:
            raise TranslationError(f"{name}: {body[name]!r} cannot be translated for Anthropic-format pools (only "
                                   f"{neutral[-1]!r}); remove it, or use a model served by an OpenAI-format pool")
    response_format = body.get("response_format")
    if response_format is not None and not (isinstance(response_format, dict)
                                            and response_format.get("type") == "text"):
        raise TranslationError("response_format: JSON modes cannot be translated for Anthropic-format pools; ask for "
                               "JSON in the prompt, or use a model served by an OpenAI-format pool")
    out: dict[str, Any] = {"model": body.get("model")}
    raw = body.get("messages")
    if not isinstance(raw, list):
        raise TranslationError("messages: must be a list of messages")
    system, messages = _messages(raw)
    if system:
        out["system"] = "\n\n".join(system)
    out["messages"] = messages
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    out["max_tokens"] = limit if limit is not None else DEFAULT_MAX_TOKENS
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    temperature = body.get("temperature")
    if temperature is not None:
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
            raise TranslationError(f"temperature: Anthropic-format pools take 0 to 1, got {temperature!r}; lower it")
        out["temperature"] = temperature
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    if body.get("stream") is True:
        out["stream"] = True
    if body.get("tools"):
        out["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(body["tools"])]
    choice = _tool_choice(body.get("tool_choice"))
    if body.get("parallel_tool_calls") is False:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    if choice is not None:
        out["tool_choice"] = choice
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    return out


def _messages(raw: list[Any]) -> tuple[list[str], list[dict[str, Any]]]:
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise TranslationError(f"{where}: must be an object")
        extra = sorted(set(message) - _MESSAGE_FIELDS)
        if extra:
            raise TranslationError(f"{where}: {', '.join(extra)} cannot be translated for Anthropic-format pools; "
                                   "remove it")
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            if out:
                raise TranslationError(f"{where}: a {role} message after the conversation started cannot be "
                                       "translated (Anthropic has one system prompt, before all messages); move it "
                                       "to the start")
            system.append(text_of_parts(content, f"{where}.content"))
        elif role == "user":
            _append(out, "user", _user_content(content, where))
        elif role == "assistant":
            out.append({"role": "assistant", "content": _assistant_content(message, where)})
        elif role == "tool":
            result = {"type": "tool_result", "tool_use_id": tool_id(message.get("tool_call_id")),
                      "content": _tool_result_content(content, f"{where}.content")}
            _append(out, "user", [result], tool=True)
        else:
            raise TranslationError(f"{where}: role {role!r} cannot be translated (system, developer, user, assistant "
                                   "and tool can; use tools instead of the legacy functions)")
    for message in out:
        message.pop("_tools", None)
    return system, out


def _append(out: list[dict[str, Any]], role: str, content: Any, tool: bool = False) -> None:
    """Add a user turn; tool results and the user text after them become one Anthropic user message."""
    last = out[-1] if out else None
    if last is not None and last["role"] == "user" and isinstance(last["content"], list) and last.get("_tools"):
        last["content"].extend(content if isinstance(content, list) else [{"type": "text", "text": content}])
        if not tool:
            del last["_tools"]
        return
    message: dict[str, Any] = {"role": role, "content": content}
    if tool:
        message["_tools"] = True
    out.append(message)


def _user_content(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content: must be a string or a list of content parts")
    blocks = []
    for i, part in enumerate(content):
        at = f"{where}.content[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif kind == "image_url":
            blocks.append(image_to_anthropic(part, at))
        else:
            raise TranslationError(f"{at}: a {kind!r} part cannot be translated for Anthropic-format pools (text and "
                                   "image_url can)")
    return blocks


def _assistant_content(message: dict[str, Any], where: str) -> Any:
    content = message.get("content")
    calls = message.get("tool_calls") or []
    refusal = message.get("refusal")
    if not calls and not refusal and isinstance(content, str):
        return content
    text = text_of_parts(content, f"{where}.content", ("text", "refusal"))
    if refusal:
        text += refusal
    blocks: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for i, call in enumerate(calls):
        at = f"{where}.tool_calls[{i}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function":
            raise TranslationError(f"{at}: only function tool calls can be translated")
        blocks.append({"type": "tool_use", "id": tool_id(call.get("id")), "name": function.get("name"),
                       "input": arguments_to_input(function.get("arguments"), at)})
    return blocks


def _tool_result_content(content: Any, where: str) -> Any:
    if isinstance(content, list):
        text_of_parts(content, where)  # only text parts can be translated
        return [{"type": "text", "text": part.get("text", "")} for part in content]
    return "" if content is None else str(content)


def _tool(tool: Any, where: str) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(function, dict) or tool.get("type", "function") != "function":
        raise TranslationError(f"{where}: only function tools can be translated for Anthropic-format pools")
    if function.get("strict") is True:
        raise TranslationError(f"{where}.function.strict: strict schema adherence cannot be translated for "
                               "Anthropic-format pools; set strict to false")
    out: dict[str, Any] = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    out["input_schema"] = function.get("parameters") or dict(DEFAULT_PARAMETERS)
    return out


def _tool_choice(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return {"type": "tool", "name": function["name"]}
    raise TranslationError(f"tool_choice: {choice!r} cannot be translated (auto, none, required and a named function "
                           "can)")


def usage(value: Any) -> dict[str, Any]:
    """OpenAI usage as Anthropic usage (OpenAI's prompt tokens include cached ones; Anthropic counts them apart)."""
    value = value if isinstance(value, dict) else {}
    details = value.get("prompt_tokens_details")
    cached = (details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return {"input_tokens": max(0, (value.get("prompt_tokens") or 0) - cached),
            "output_tokens": value.get("completion_tokens") or 0,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}


def response(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI chat completion as an Anthropic message (the first choice: ``n`` > 1 is refused on the way in)."""
    choices = body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    blocks: list[dict[str, Any]] = []
    text = message.get("content") or ""
    if isinstance(text, list):
        text = text_of_parts(text, "choices[0].message.content", ("text", "refusal"))
    text += message.get("refusal") or ""
    if text:
        blocks.append({"type": "text", "text": text})
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        blocks.append({"type": "tool_use", "id": tool_id(call.get("id")), "name": function.get("name"),
                       "input": arguments_to_input(function.get("arguments"), f"choices[0].message.tool_calls[{i}]")})
    return {
        "id": body.get("id"), "type": "message", "role": "assistant", "model": body.get("model"), "content": blocks,
        "stop_reason": stop_reason(choice.get("finish_reason")) or "end_turn", "stop_sequence": None,
        "usage": usage(body.get("usage")),
    }

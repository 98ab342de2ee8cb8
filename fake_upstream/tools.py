"""Tool calls for the fake upstream, in the shapes OpenAI and Anthropic really send (streamed and not).

A request that offers tools and whose last turn is a user message asking to ``use the tool`` gets a tool call:

- ``use the tool`` alone: the first tool offered, with input made from its schema;
- ``use the tool NAME``: the offered tool NAME (its name as offered, e.g. ``Bash``, ``exec_command``);
- ``use the tool NAME with {"command": "echo hi"}``: that tool with that input (any JSON value after ``with``: an
  object for function tools, a string taken as is for custom tools such as Codex's ``apply_patch``).

The words may sit anywhere in the message, among the text coding agents wrap a prompt in (Claude Code's
``<system-reminder>`` blocks, Codex's environment context); the last occurrence counts. A word after ``use the tool``
that names no offered tool is not a name (``use the tool for Paris`` calls the first tool). System and developer
messages after the user's turn are looked through. When the last turn is a tool result (an OpenAI ``tool`` message,
an Anthropic ``tool_result`` block, a Responses ``function_call_output`` or ``custom_tool_call_output`` item), the
answer is text quoting it: ``The tool returned: ...``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

TRIGGER = "use the tool"
_TRIGGER = re.compile(r"use the tool(?:\s+(?P<name>[A-Za-z_][\w.:-]*))?(?P<with>\s+with\s+)?", re.IGNORECASE)
_PASSED_OVER = ("system", "developer")
_RESULT_ITEMS = ("function_call_output", "custom_tool_call_output")
_TEXT_PARTS = ("text", "input_text", "output_text")


@dataclass(frozen=True)
class ToolCall:
    """The call the fake answers with: a tool's name and its input (a string for a custom tool)."""

    name: str
    input: dict[str, Any] | str
    custom: bool = False


@dataclass(frozen=True)
class _Tool:
    name: str
    schema: Any
    custom: bool


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content
                        if isinstance(p, dict) and p.get("type") in _TEXT_PARTS)
    return ""


def _result_text(content: Any) -> str:
    """A tool result's text: a string, or the text of its parts (Anthropic blocks, Responses output items)."""
    if isinstance(content, list):
        return " ".join(_result_text(p.get("content", p.get("text", ""))) if isinstance(p, dict) else str(p)
                        for p in content)
    return content if isinstance(content, str) else ""


def _last_turn(body: dict[str, Any]) -> tuple[str, str]:
    """("user", its text), ("result", the tool results' text) or ("other", ""): the last turn of the conversation,
    looking through system and developer messages after it; tool results that end the conversation are joined."""
    turns = body.get("messages")
    if turns is None:
        turns = body.get("input")
    if isinstance(turns, str):
        return "user", turns
    results: list[str] = []
    for turn in reversed(turns if isinstance(turns, list) else []):
        if not isinstance(turn, dict):
            break
        role, kind = turn.get("role"), turn.get("type")
        if role in _PASSED_OVER:
            continue
        if role == "tool" or kind in _RESULT_ITEMS:
            results.insert(0, _result_text(turn.get("content") if role == "tool" else turn.get("output")))
            continue
        if results:
            break
        content = turn.get("content")
        if role == "user" and isinstance(content, list):
            blocks = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
            if blocks:
                return "result", " ".join(_result_text(b.get("content")) for b in blocks)
        if role == "user" and kind in (None, "message"):
            return "user", _text(content)
        return "other", ""
    return ("result", " ".join(results)) if results else ("other", "")


def _offered(body: dict[str, Any]) -> list[_Tool]:
    """The named tools a request offers, in order: OpenAI chat ``function`` tools, Anthropic tools, Responses
    ``function`` and ``custom`` tools (hosted tools without a name, such as ``web_search``, are left out)."""
    tools = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if isinstance(tool.get("function"), dict):  # OpenAI chat
            tools.append(_Tool(str(tool["function"].get("name")), tool["function"].get("parameters"), False))
        elif isinstance(tool.get("name"), str) and tool.get("type") != "namespace":
            schema = tool.get("input_schema", tool.get("parameters"))
            tools.append(_Tool(tool["name"], schema, tool.get("type") == "custom"))
    return tools


def requested_call(body: dict[str, Any]) -> ToolCall | None:
    """The tool call a request asks for (see the module's docstring); None when it asks for none."""
    tools = _offered(body)
    kind, text = _last_turn(body)
    if not tools or kind != "user":
        return None
    matches = list(_TRIGGER.finditer(text))
    if not matches:
        return None
    match = matches[-1]
    named = {tool.name: tool for tool in tools}
    word = match.group("name") or ""
    tool = named.get(word) or named.get(word.rstrip(".:-"))
    given: Any = None
    if tool is None:
        tool = tools[0]
    elif match.group("with"):
        try:
            given, _end = json.JSONDecoder().raw_decode(text, match.end())
        except ValueError:
            given = None
    if tool.custom:
        value = given if isinstance(given, str) else ("poolgate" if given is None else json.dumps(given))
        return ToolCall(tool.name, value, custom=True)
    return ToolCall(tool.name, given if isinstance(given, dict) else tool_input(tool.schema))


def wants_tool(body: dict[str, Any]) -> bool:
    """The request offers tools and its last turn is a user message asking to use one."""
    return requested_call(body) is not None


def tool_result(body: dict[str, Any]) -> str | None:
    """The text of the tool results the last turn carries; None when it carries none."""
    kind, text = _last_turn(body)
    return text if kind == "result" else None


def reply_words(body: dict[str, Any]) -> list[str] | None:
    """The answer's words when the last turn is a tool result; None otherwise."""
    result = tool_result(body)
    if result is None:
        return None
    words = f"The tool returned: {result}".split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _value(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return "poolgate"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    return {"integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}, "null": None}.get(
        kind if isinstance(kind, str) else "", "poolgate")


def tool_input(schema: Any) -> dict[str, Any]:
    """Input for a tool: every required property (else every property) with a value of its type."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return {}
    names = schema.get("required") or list(schema["properties"])
    return {name: _value(schema["properties"].get(name)) for name in names}


def fragments(text: str) -> list[str]:
    step = max(1, len(text) // 3)
    return [text[i:i + step] for i in range(0, len(text), step)]


def call_arguments(call: ToolCall) -> str:
    return call.input if isinstance(call.input, str) else json.dumps(call.input)


def responses_call_item(call: ToolCall) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """A Responses output item calling the tool (``function_call``, or ``custom_tool_call`` for a custom tool), and
    the events that stream its arguments between ``response.output_item.added`` and ``.done`` (kind, fields)."""
    call_id, text = f"call_{uuid.uuid4().hex[:24]}", call_arguments(call)
    if call.custom:
        item_id = f"ctc_{uuid.uuid4().hex[:24]}"
        item = {"type": "custom_tool_call", "id": item_id, "status": "completed", "call_id": call_id,
                "name": call.name, "input": text}
        deltas = [("response.custom_tool_call_input.delta", {"item_id": item_id, "delta": part})
                  for part in fragments(text)]
        return item, [*deltas, ("response.custom_tool_call_input.done", {"item_id": item_id, "input": text})]
    item_id = f"fc_{uuid.uuid4().hex[:24]}"
    item = {"type": "function_call", "id": item_id, "status": "completed", "call_id": call_id, "name": call.name,
            "arguments": text}
    deltas = [("response.function_call_arguments.delta", {"item_id": item_id, "delta": part})
              for part in fragments(text)]
    return item, [*deltas, ("response.function_call_arguments.done",
                            {"item_id": item_id, "name": call.name, "arguments": text})]

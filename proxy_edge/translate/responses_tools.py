"""Responses API tools as tools of the upstream API, and the map that brings the upstream's calls back.

Per tool type (the client's ``tools[i].type``):

- ``function``: a function / Anthropic tool with the same name, description and parameters (``strict: true`` is
  refused: neither upstream can promise it); ``defer_loading`` is dropped (the tool is sent at once).
- ``custom`` (freeform tools such as Codex's ``apply_patch``): a tool taking ``{"input": string}``; a grammar
  ``format`` is appended to the description so the model still knows the syntax. Calls come back as
  ``custom_tool_call`` items with the string ``input``.
- ``namespace`` (Codex's MCP tool groups): each function in it becomes a tool named ``<namespace>__<name>``;
  calls come back with ``namespace`` and ``name`` apart.
- ``web_search``, ``web_search_preview``, ``tool_search``: dropped and reported. The model works without them
  (it cannot search; deferred tools are sent at once), so refusing the whole request would be worse.
- every other hosted tool (``file_search``, ``code_interpreter``, ``computer_use_preview``, ``image_generation``,
  ``mcp``, ``local_shell``, ``shell``, ``apply_patch`` ...): a :class:`TranslationError` naming it; they run at
  OpenAI or need its item types, and a model that silently lost them would fail the task.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from proxy_edge.translate import TranslationError
from proxy_edge.translate.common import DEFAULT_PARAMETERS

DROPPED_TOOLS = frozenset({"web_search", "web_search_preview", "web_search_preview_2025_03_11", "tool_search"})
NAMESPACE_SEPARATOR = "__"
CUSTOM_PARAMETERS: dict[str, Any] = {
    "type": "object", "properties": {"input": {"type": "string", "description": "The tool's whole input."}},
    "required": ["input"],
}
"""The parameters of a freeform (``custom``) tool once it is a function: one string."""


@dataclass(frozen=True, slots=True)
class ToolRef:
    """What an upstream tool name stands for in the client's Responses API."""

    kind: str
    """``function`` or ``custom``."""
    name: str
    namespace: str | None = None


@dataclass(frozen=True, slots=True)
class Tool:
    """One client tool, as the upstream declares it."""

    name: str
    description: str
    parameters: dict[str, Any]


ToolMap = dict[str, ToolRef]
"""Upstream tool name -> the client's tool."""


def read_tools(tools: Any, dropped: list[str]) -> tuple[list[Tool], ToolMap]:
    """The client's ``tools`` as upstream tools and the map back; what is dropped is added to ``dropped``."""
    if tools is None:
        return [], {}
    if not isinstance(tools, list):
        raise TranslationError("tools: must be a list of tools")
    out: list[Tool] = []
    names: ToolMap = {}
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or not isinstance(kind, str):
            raise TranslationError(f"{where}: must be an object with a type")
        if kind in DROPPED_TOOLS:
            dropped.append(f"tools.{kind}")
        elif kind == "function":
            out.append(_function(tool, where, None, names, dropped))
        elif kind == "custom":
            out.append(_custom(tool, where, names))
        elif kind == "namespace":
            namespace = tool.get("name")
            if not isinstance(namespace, str) or not namespace:
                raise TranslationError(f"{where}: a namespace needs a name")
            for j, inner in enumerate(tool.get("tools") or []):
                at = f"{where}.tools[{j}]"
                inner_kind = inner.get("type", "function") if isinstance(inner, dict) else None
                if inner_kind == "function":
                    out.append(_function(inner, at, namespace, names, dropped))
                elif inner_kind == "custom":
                    out.append(_custom(inner, at, names, namespace))
                else:
                    raise TranslationError(f"{at}: only function and custom tools can be translated in a namespace")
        else:
            raise TranslationError(
                f"{where}: the hosted tool {kind!r} runs at OpenAI and cannot be translated; remove it, declare a "
                "function tool instead, or use a model served by an OpenAI pool that speaks the Responses API")
    return out, names


def _upstream_name(name: Any, namespace: str | None, where: str, names: ToolMap) -> str:
    if not isinstance(name, str) or not name:
        raise TranslationError(f"{where}: a tool needs a name")
    upstream = f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name
    if upstream in names:
        raise TranslationError(f"{where}: the tool name {upstream!r} is declared twice; rename one")
    return upstream


def _function(tool: dict[str, Any], where: str, namespace: str | None, names: ToolMap,
              dropped: list[str]) -> Tool:
    upstream = _upstream_name(tool.get("name"), namespace, where, names)
    if tool.get("strict") is True:
        raise TranslationError(f"{where}.strict: strict schema adherence cannot be translated; set strict to false")
    if tool.get("defer_loading") is not None:
        dropped.append("tools.defer_loading")
    names[upstream] = ToolRef("function", tool["name"], namespace)
    parameters = tool.get("parameters") or dict(DEFAULT_PARAMETERS)
    return Tool(upstream, str(tool.get("description") or ""), parameters)


def _custom(tool: dict[str, Any], where: str, names: ToolMap, namespace: str | None = None) -> Tool:
    upstream = _upstream_name(tool.get("name"), namespace, where, names)
    names[upstream] = ToolRef("custom", tool["name"], namespace)
    return Tool(upstream, custom_description(tool), CUSTOM_PARAMETERS)


def custom_description(tool: dict[str, Any]) -> str:
    """A freeform tool's description, with the grammar its input must follow (the model can no longer be held to
    it by constrained sampling, so it is told)."""
    description = str(tool.get("description") or "")
    fmt = tool.get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and fmt.get("definition"):
        syntax = fmt.get("syntax") or "lark"
        description += (f"\n\nPut the whole input, as plain text (not JSON-escaped beyond the string itself), in "
                        f"`input`. It must match this {syntax} grammar:\n{fmt['definition']}")
    else:
        description += "\n\nPut the whole input, as plain text, in `input`."
    return description.strip()


def upstream_tool_name(choice_name: Any, namespace: Any, names: ToolMap, where: str) -> str:
    """The upstream name of the client tool ``choice_name`` (``tool_choice`` names a tool)."""
    for upstream, ref in names.items():
        if ref.name == choice_name and ref.namespace == (namespace or None):
            return upstream
    raise TranslationError(f"{where}: {choice_name!r} is not one of the declared tools")


def call_item_fields(names: ToolMap, upstream_name: str, arguments: str) -> dict[str, Any]:
    """The fields of the client's call item (type, name, namespace, arguments or input) for an upstream call."""
    ref = names.get(upstream_name, ToolRef("function", upstream_name))
    fields: dict[str, Any] = {"type": "function_call" if ref.kind == "function" else "custom_tool_call",
                              "name": ref.name}
    if ref.namespace:
        fields["namespace"] = ref.namespace
    if ref.kind == "function":
        fields["arguments"] = arguments.strip() or "{}"
    else:
        fields["input"] = custom_input(arguments)
    return fields


def custom_input(arguments: str) -> str:
    """The string input of a freeform call from the upstream's JSON arguments ``{"input": "..."}``."""
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return str(value["input"])
    return arguments if not isinstance(value, dict) or value else ""


def custom_arguments(value: Any) -> dict[str, Any]:
    """A freeform call's string input as the upstream's tool input."""
    return {"input": value if isinstance(value, str) else json.dumps(value)}


_DECODER = json.JSONDecoder(strict=False)
_INPUT_START = re.compile(r'^\s*\{\s*"input"\s*:\s*"')


class InputStringStream:
    """Decodes the ``input`` string of a freeform call from its JSON arguments as they stream in.

    ``feed`` takes the next piece of JSON text and returns the newly decoded characters (linear: only an
    unfinished escape is held back). Arguments of any other shape give nothing here; the whole value is read
    from the complete JSON at the end (:func:`custom_input`).
    """

    __slots__ = ("_done", "_head", "_inside", "_pending")

    def __init__(self) -> None:
        self._head = ""
        self._inside = False
        self._done = False
        self._pending = ""

    def feed(self, piece: str) -> str:
        if self._done:
            return ""
        if not self._inside:
            self._head += piece
            match = _INPUT_START.match(self._head)
            if match is None:
                if len(self._head) > 64 or not _could_start(self._head):
                    self._done = True
                return ""
            self._inside = True
            piece, self._head = self._head[match.end():], ""
        raw = self._pending + piece
        end, cut, escaped = len(raw), len(raw), False
        for i, char in enumerate(raw):
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                end = cut = i
                self._done = True
                break
        if not self._done:
            cut = _safe_cut(raw)
        text, self._pending = raw[:cut], raw[cut:end] if not self._done else ""
        try:
            return str(_DECODER.decode(f'"{text}"'))
        except ValueError:
            return ""


def _could_start(head: str) -> bool:
    """Whether ``head`` may still grow into ``{"input": "``."""
    compact = re.sub(r"\s+", "", head)
    return '{"input":"'.startswith(compact) or compact.startswith('{"input":"')


def _escape_starts(raw: str, at: int) -> bool:
    """Whether the backslash at ``at`` starts an escape (it is not itself escaped)."""
    run = len(raw[:at + 1]) - len(raw[:at + 1].rstrip("\\"))
    return run % 2 == 1


def _safe_cut(raw: str) -> int:
    """How much of ``raw`` (inside a JSON string) ends on a whole escape, never between surrogate halves."""
    cut = len(raw)
    slash = raw.rfind("\\", max(0, cut - 6))  # an escape is at most 6 characters
    if slash >= 0 and _escape_starts(raw, slash):
        tail = raw[slash:]
        if len(tail) < 2 or (tail[1] == "u" and len(tail) < 6):
            cut = slash
    head = raw[:cut]
    if (len(head) >= 6 and head[-6:-4] == "\\u" and _escape_starts(raw, cut - 6)
            and re.fullmatch(r"[dD][89abAB][0-9a-fA-F]{2}", head[-4:])):
        cut -= 6  # a high surrogate waits for its low half
    return cut

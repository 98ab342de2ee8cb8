"""A Responses API request read once into what both upstream translations need: pieces of the conversation in
order, the tools, the sampling settings, and the names of the fields the upstream will not see.

Top-level fields (``upstream`` is "anthropic" or "chat"):

- carried over: ``model``, ``input``, ``instructions``, ``tools``, ``tool_choice``, ``parallel_tool_calls``,
  ``max_output_tokens``, ``temperature``, ``top_p``, ``stream``, ``reasoning.effort``, ``user``.
- refused (:class:`TranslationError`): ``previous_response_id``, ``conversation``, ``prompt`` and
  ``background: true`` (they need state stored at OpenAI: send the whole conversation in ``input``, as Codex does
  with ``store: false``), ``top_logprobs``.
- dropped and reported in :attr:`ResponsesRequest.dropped`: ``store: true`` (nothing is stored), ``include``
  entries the upstream cannot fill, ``text.verbosity``, ``service_tier`` other than auto/default, ``metadata``,
  ``client_metadata``, ``truncation: auto``, ``max_tool_calls``, ``stream_options``, ``prompt_cache_retention``,
  ``reasoning`` settings other than effort and summary (such as ``context``), ``safety_identifier`` (Anthropic:
  used as ``metadata.user_id`` when there is no ``user``), and any field this module does not know (Codex adds
  fields often: naming them beats refusing every request).
  For Chat upstreams also ``prompt_cache_key`` and ``reasoning.summary`` (Chat has neither), and reasoning items.

Input items: ``additional_tools`` (newer Codex versions declare their tools there) joins ``tools``;
``message`` (any role; ``input_text``, ``output_text``, ``refusal``, ``input_image`` and base64
``input_file`` parts), ``function_call``/``function_call_output``, ``custom_tool_call``/``custom_tool_call_output``
and ``reasoning`` are carried over; ``web_search_call`` is dropped (its results live at OpenAI); any other item
(``item_reference``, ``compaction``, ``local_shell_call``, MCP and hosted tool calls ...) is refused by name.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from proxy_edge.translate import TranslationError
from proxy_edge.translate.responses_out import echo
from proxy_edge.translate.responses_tools import Tool, ToolMap, custom_arguments, read_tools

CARRIED = frozenset({"model", "input", "instructions", "tools", "tool_choice", "parallel_tool_calls",
                     "max_output_tokens", "temperature", "top_p", "stream", "reasoning", "user"})
STATEFUL = ("previous_response_id", "conversation", "prompt")
REASONING_KEYS = frozenset({"effort", "summary", "generate_summary"})
HONOURED_INCLUDE = {"anthropic": frozenset({"reasoning.encrypted_content"}), "chat": frozenset()}


@dataclass(slots=True)
class Piece:
    """One piece of the conversation, in the order the client sent it.

    ``kind``: ``text``, ``image`` (``url``), ``file`` (``url`` a data URL, ``text`` the file name), ``call``
    (``call_id``, ``name`` the upstream tool name, ``arguments`` JSON text), ``result`` (``call_id``, ``content`` a
    string or a list of text/image pieces) or ``reasoning`` (``content`` the item).
    """

    role: str
    """``system`` (instructions, system and developer messages), ``user`` or ``assistant``."""
    kind: str
    text: str = ""
    url: str = ""
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    content: Any = None


@dataclass(slots=True)
class ResponsesRequest:
    model: Any
    pieces: list[Piece]
    tools: list[Tool]
    names: ToolMap
    tool_choice: Any
    parallel_tool_calls: Any
    max_output_tokens: Any
    temperature: Any
    top_p: Any
    stream: bool
    effort: str | None
    user: str | None
    text_format: dict[str, Any] | None
    echo: dict[str, Any]
    dropped: list[str] = field(default_factory=list)


def read_request(body: dict[str, Any], upstream: str) -> ResponsesRequest:
    """``body`` read for an ``upstream`` ("anthropic" or "chat") pool; raises :class:`TranslationError`."""
    dropped: list[str] = []
    for name in STATEFUL:
        if body.get(name) is not None:
            raise TranslationError(f"{name}: the conversation state is kept at OpenAI, so it cannot be used with a "
                                   "model served by another API; send the whole conversation in input (with store: "
                                   "false) instead")
    if body.get("background") is True:
        raise TranslationError("background: background responses cannot be translated; remove it")
    if body.get("top_logprobs"):
        raise TranslationError("top_logprobs: log probabilities cannot be translated; remove it")
    _drop_fields(body, upstream, dropped)
    raw_reasoning = body.get("reasoning")
    reasoning: dict[str, Any] = raw_reasoning if isinstance(raw_reasoning, dict) else {}
    effort = reasoning.get("effort") if isinstance(reasoning.get("effort"), str) else None
    if upstream == "chat" and (reasoning.get("summary") or reasoning.get("generate_summary")):
        dropped.append("reasoning.summary")
    dropped.extend(f"reasoning.{key}" for key in reasoning if key not in REASONING_KEYS)
    raw = body.get("input")
    declared = body.get("tools") if body.get("tools") is not None else []
    declared = list(declared) if isinstance(declared, list) else declared
    if isinstance(raw, list) and isinstance(declared, list):
        # Newer Codex versions declare their tools in an input item rather than in tools.
        for item in raw:
            if isinstance(item, dict) and item.get("type") == "additional_tools":
                declared.extend(item.get("tools") or [])
    tools, names = read_tools(declared, dropped)
    pieces: list[Piece] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        pieces.append(Piece("system", "text", instructions))
    elif instructions is not None and not isinstance(instructions, str):
        raise TranslationError("instructions: must be a string (put earlier messages in input)")
    if isinstance(raw, str):
        pieces.append(Piece("user", "text", raw))
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            pieces.extend(_item(item, f"input[{i}]", names, dropped))
    else:
        raise TranslationError("input: must be a string or a list of items")
    if upstream == "chat" and any(piece.kind == "reasoning" for piece in pieces):
        dropped.append("input.reasoning")
    user = body.get("user") if isinstance(body.get("user"), str) else None
    if upstream == "anthropic" and user is None and isinstance(body.get("safety_identifier"), str):
        user = body["safety_identifier"]
    return ResponsesRequest(
        model=body.get("model"), pieces=pieces, tools=tools, names=names, tool_choice=body.get("tool_choice"),
        parallel_tool_calls=body.get("parallel_tool_calls"), max_output_tokens=body.get("max_output_tokens"),
        temperature=body.get("temperature"), top_p=body.get("top_p"), stream=body.get("stream") is True,
        effort=effort, user=user, text_format=_text_format(body.get("text"), dropped), echo=echo(body),
        dropped=sorted(set(dropped)))


def _drop_fields(body: dict[str, Any], upstream: str, dropped: list[str]) -> None:
    """Note the fields the upstream will not see (those with a neutral value are honoured, not dropped)."""
    for name, value in body.items():
        if name in CARRIED or name in STATEFUL or value is None or name in ("text", "background", "top_logprobs"):
            continue
        if name == "store":
            if value is True:
                dropped.append(name)
        elif name == "include":
            honoured = HONOURED_INCLUDE[upstream]
            dropped.extend(f"include.{entry}" for entry in value or [] if entry not in honoured)
        elif name == "service_tier":
            if value not in ("auto", "default"):
                dropped.append(name)
        elif name == "truncation":
            if value != "disabled":
                dropped.append(name)
        elif name == "prompt_cache_key":
            if upstream == "chat":
                dropped.append(name)  # Anthropic: the edge marks cache breakpoints instead
        elif name == "safety_identifier":
            if upstream == "chat" or isinstance(body.get("user"), str):
                dropped.append(name)
        elif value not in ({}, [], False):
            dropped.append(name)


def _text_format(text: Any, dropped: list[str]) -> dict[str, Any] | None:
    if not isinstance(text, dict):
        return None
    if text.get("verbosity") is not None:
        dropped.append("text.verbosity")
    fmt = text.get("format")
    if fmt is None or (isinstance(fmt, dict) and fmt.get("type") == "text"):
        return None
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object"):
        raise TranslationError(f"text.format: {fmt!r} cannot be translated (text, json_schema and json_object can)")
    return fmt


def _item(item: Any, where: str, names: ToolMap, dropped: list[str]) -> list[Piece]:
    if not isinstance(item, dict):
        raise TranslationError(f"{where}: must be an object")
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "message":
        return _message(item, where, dropped)
    if kind in ("function_call", "custom_tool_call"):
        name = _upstream(item.get("name"), item.get("namespace"), names, where)
        if kind == "function_call":
            arguments = item.get("arguments")
            arguments = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
        else:
            arguments = json.dumps(custom_arguments(item.get("input", "")), ensure_ascii=False)
        return [Piece("assistant", "call", call_id=_call_id(item, where), name=name, arguments=arguments)]
    if kind in ("function_call_output", "custom_tool_call_output"):
        return [Piece("user", "result", call_id=_call_id(item, where),
                      content=_output(item.get("output"), f"{where}.output"))]
    if kind == "reasoning":
        return [Piece("assistant", "reasoning", content=item)]
    if kind == "additional_tools":
        return []  # read with the tools
    if kind == "web_search_call":
        dropped.append("input.web_search_call")
        return []
    raise TranslationError(f"{where}: an item of type {kind!r} cannot be translated (message, function_call, "
                           "custom_tool_call, their outputs and reasoning can); send the conversation without it, or "
                           "use a model served by an OpenAI pool that speaks the Responses API")


def _call_id(item: dict[str, Any], where: str) -> str:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise TranslationError(f"{where}.call_id: a call and its output need the same call_id")
    return call_id


def _upstream(name: Any, namespace: Any, names: ToolMap, where: str) -> str:
    if not isinstance(name, str) or not name:
        raise TranslationError(f"{where}.name: a call needs the name of its tool")
    for upstream, ref in names.items():
        if ref.name == name and ref.namespace == (namespace or None):
            return upstream
    return f"{namespace}__{name}" if isinstance(namespace, str) and namespace else name


def _message(item: dict[str, Any], where: str, dropped: list[str]) -> list[Piece]:
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise TranslationError(f"{where}.role: {role!r} cannot be translated (user, assistant, system and developer "
                               "can)")
    if item.get("phase") is not None:
        dropped.append("input.phase")
    side = "system" if role in ("system", "developer") else str(role)
    content = item.get("content")
    if isinstance(content, str):
        return [Piece(side, "text", content)] if content else []
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content: must be a string or a list of content parts")
    pieces = [_part(part, f"{where}.content[{i}]", side) for i, part in enumerate(content)]
    return [piece for piece in pieces if piece.kind != "text" or piece.text]


def _part(part: Any, where: str, side: str) -> Piece:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text", "summary_text"):
        return Piece(side, "text", str(part.get("text") or ""))
    if kind == "refusal":
        return Piece(side, "text", str(part.get("refusal") or ""))
    if kind == "input_image" and side == "user":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise TranslationError(f"{where}: only images given by image_url (a URL or a data URL) can be "
                                   "translated, not file_id")
        return Piece(side, "image", url=url)
    if kind == "input_file" and side == "user":
        data = part.get("file_data")
        if not isinstance(data, str) or not data.startswith("data:"):
            raise TranslationError(f"{where}: only files given inline as file_data (a base64 data URL) can be "
                                   "translated, not file_id or file_url")
        return Piece(side, "file", str(part.get("filename") or ""), url=data)
    raise TranslationError(f"{where}: a {kind!r} part cannot be translated in a {side} message")


def _output(output: Any, where: str) -> str | list[Piece]:
    if output is None or isinstance(output, str):
        return output or ""
    if not isinstance(output, list):
        raise TranslationError(f"{where}: must be a string or a list of content parts")
    return [_part(part, f"{where}[{i}]", "user") for i, part in enumerate(output)]

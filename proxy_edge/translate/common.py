"""Pieces both directions share: stop reasons, tool call ids and arguments, images, field checks."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from proxy_edge.translate import TranslationError

ANTHROPIC_TO_OPENAI_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}
OPENAI_TO_ANTHROPIC_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
DEFAULT_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
"""The input schema of a tool that declares none (Anthropic requires one)."""

_DATA_URL = re.compile(r"^data:([^;,]+);base64,(.*)$", re.DOTALL)
_BAD_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def finish_reason(stop_reason: Any) -> str | None:
    """OpenAI ``finish_reason`` for an Anthropic ``stop_reason`` (None while the message goes on)."""
    if stop_reason is None:
        return None
    return ANTHROPIC_TO_OPENAI_FINISH.get(str(stop_reason), "stop")


def stop_reason(finish: Any) -> str | None:
    """Anthropic ``stop_reason`` for an OpenAI ``finish_reason``."""
    if finish is None:
        return None
    return OPENAI_TO_ANTHROPIC_STOP.get(str(finish), "end_turn")


def tool_id(value: Any) -> str:
    """A tool call id Anthropic accepts (letters, digits, ``_`` and ``-``); made up when the upstream sent none.

    The same mapping applies to ids in responses and in later requests, so a call and its result keep matching.
    """
    if not isinstance(value, str) or not value:
        return f"toolu_{uuid.uuid4().hex[:24]}"
    return _BAD_ID_CHARS.sub("_", value)


def arguments_to_input(arguments: Any, where: str) -> dict[str, Any]:
    """OpenAI's JSON-text tool arguments as the object Anthropic's ``tool_use.input`` holds."""
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    if isinstance(arguments, dict):
        return arguments
    try:
        value = json.loads(arguments) if isinstance(arguments, str) else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise TranslationError(f"{where}: tool call arguments must be a JSON object to be sent as Anthropic "
                               f"tool_use input, got {str(arguments)[:80]!r}")
    return value


def input_to_arguments(value: Any) -> str:
    """Anthropic's ``tool_use.input`` as OpenAI's JSON-text arguments."""
    return json.dumps(value if value is not None else {}, ensure_ascii=False, separators=(",", ":"))


def image_to_openai(source: Any, where: str) -> dict[str, Any]:
    """An Anthropic image source as an OpenAI ``image_url`` content part."""
    if isinstance(source, dict) and source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
        return {"type": "image_url", "image_url": {"url": url}}
    if isinstance(source, dict) and source.get("type") == "url" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    kind = source.get("type") if isinstance(source, dict) else type(source).__name__
    raise TranslationError(f"{where}: an image source of type {kind!r} cannot be sent to an OpenAI-format pool "
                           "(only base64 data and URLs can); send the image as base64 or a URL")


def image_to_anthropic(part: dict[str, Any], where: str) -> dict[str, Any]:
    """An OpenAI ``image_url`` content part as an Anthropic image block (``detail`` has no counterpart)."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise TranslationError(f"{where}: image_url needs a url")
    match = _DATA_URL.match(url)
    if match:
        return {"type": "image", "source": {"type": "base64", "media_type": match.group(1), "data": match.group(2)}}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise TranslationError(f"{where}: image_url must be an http(s) URL or a base64 data URL "
                           "(data:image/png;base64,...) to be sent to an Anthropic-format pool")


def reject_unknown(body: dict[str, Any], known: frozenset[str], pools: str, native: str) -> None:
    """400 for request fields the translation does not carry over (never dropped silently).

    ``pools`` is the format of the pool that would serve ("OpenAI"), ``native`` the client's API ("Anthropic").
    """
    extra = sorted(key for key in body if key not in known)
    if extra:
        it = "it" if len(extra) == 1 else "them"
        raise TranslationError(
            f"{', '.join(extra)}: not supported by {pools}-format pools, so the edge cannot translate {it}; "
            f"remove {it}, or use a model served by an {native}-format pool"
        )


def text_of_parts(content: Any, where: str, allowed: tuple[str, ...] = ("text",)) -> str:
    """The text of a string or a list of text parts/blocks (other part types are a TranslationError)."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if not isinstance(content, list):
        raise TranslationError(f"{where}: content must be a string or a list of parts")
    texts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise TranslationError(f"{where}[{i}]: a {kind!r} part cannot be translated here (only text)")
        texts.append(str(part.get("text") or part.get("refusal") or ""))
    return "".join(texts)

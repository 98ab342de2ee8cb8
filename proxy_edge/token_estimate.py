"""A local estimate of a Messages request's input tokens, for ``count_tokens`` on pools whose upstream cannot count.

No tokenizer of the serving model is at hand (OpenAI-format upstreams have no counting endpoint, and tokenizer
files would have to be downloaded), so the estimate is the usual rule of thumb, on the high side: one token per
:data:`CHARS_PER_TOKEN` characters of every text the model reads (system, messages, tool calls and results, tool
definitions as JSON), plus a few tokens per message and a fixed amount per image. A high estimate only makes an agent
compact its context a little early; a low one would let it overflow the context window.
"""

from __future__ import annotations

import json
import math
from typing import Any

CHARS_PER_TOKEN = 3.5
PER_MESSAGE = 4
"""Tokens a message costs beyond its text (role and framing)."""
PER_IMAGE = 1600
"""Anthropic's figure for an image of about 1.15 megapixels, the largest sent without resizing."""
ESTIMATOR = f"chars/{CHARS_PER_TOKEN:g}"
"""The method's name, sent in the :data:`ESTIMATE_HEADER` response header."""
ESTIMATE_HEADER = "x-poolgate-token-estimate"


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """The estimated input tokens of an Anthropic Messages (or count_tokens) request body."""
    chars = 0
    images = 0
    messages = body.get("messages")
    messages = messages if isinstance(messages, list) else []

    def add(value: Any) -> None:
        nonlocal chars, images
        if isinstance(value, str):
            chars += len(value)
        elif isinstance(value, list):
            for item in value:
                add(item)
        elif isinstance(value, dict):
            kind = value.get("type")
            if kind in ("image", "document"):
                images += 1
            elif kind == "text" or "text" in value:
                add(value.get("text"))
            elif kind == "tool_use":
                chars += len(str(value.get("name", ""))) + len(_json(value.get("input")))
            elif kind == "tool_result":
                add(value.get("content"))
            elif kind in ("thinking", "redacted_thinking"):
                add(value.get("thinking"))
            else:
                chars += len(_json(value))

    add(body.get("system"))
    for message in messages:
        if isinstance(message, dict):
            add(message.get("content"))
    tools = body.get("tools")
    if isinstance(tools, list):
        chars += sum(len(_json(tool)) for tool in tools)
    return math.ceil(chars / CHARS_PER_TOKEN) + PER_MESSAGE * len(messages) + PER_IMAGE * images


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value is not None else ""

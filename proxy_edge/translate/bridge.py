"""One translated exchange: the request body on the way out, and the response, stream or error on the way back.

Exchanges are keyed by API names: ``chat`` (OpenAI Chat Completions), ``responses`` (OpenAI Responses) and
``messages`` (Anthropic Messages). Translated: chat <-> messages, responses -> messages, responses -> chat and
messages -> responses.
The pool format names ``openai`` and ``anthropic`` are still accepted for ``chat`` and ``messages``, the API each
format's pools speak natively.

Fields a translation leaves out without refusing the request are listed in :attr:`Translation.dropped`; the edge
reports them to the client in :data:`DROPPED_HEADER` (comma-separated).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from proxy_edge.errors import ApiShape, error_body
from proxy_edge.json_codec import encode
from proxy_edge.translate import (
    TranslationError,
    anthropic_to_openai,
    errors,
    messages_to_responses,
    openai_to_anthropic,
    responses_to_anthropic,
    responses_to_chat,
)
from proxy_edge.translate.messages_stream import ResponsesToAnthropicStream
from proxy_edge.translate.responses_out import ResponsesContext
from proxy_edge.translate.responses_stream import AnthropicToResponsesStream, ChatToResponsesStream
from proxy_edge.translate.stream import AnthropicToOpenAIStream, OpenAIToAnthropicStream

APIS = ("chat", "responses", "messages")
_NATIVE = {"openai": "chat", "anthropic": "messages"}
DROPPED_HEADER = "x-poolgate-dropped"
"""Response header naming the request fields the translation left out (comma-separated)."""

StreamTranslator = (OpenAIToAnthropicStream | AnthropicToOpenAIStream | AnthropicToResponsesStream
                    | ChatToResponsesStream | ResponsesToAnthropicStream)
"""Every incremental translator: ``feed(bytes) -> bytes`` and ``done``."""


def api_name(name: str) -> str:
    """``name`` as an API name (a pool format name stands for the API its pools speak natively)."""
    return _NATIVE.get(name, name)


@dataclass(frozen=True, slots=True)
class Translation:
    """How to bring an ``upstream``-API answer back to a ``client``-API client (API names, see the module doc)."""

    client: str
    upstream: str
    include_usage: bool = False
    """The chat client asked for the stream's usage chunk (``stream_options.include_usage``)."""
    dropped: tuple[str, ...] = ()
    """Request fields left out (sorted); empty when nothing was."""
    context: ResponsesContext | None = None
    """For a Responses client: what its answers repeat of the request, and its tools by upstream name."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "client", api_name(self.client))
        object.__setattr__(self, "upstream", api_name(self.upstream))

    @property
    def shape(self) -> ApiShape:
        """The client's error shape."""
        return ApiShape.ANTHROPIC if self.client == "messages" else ApiShape.OPENAI

    def _context(self) -> ResponsesContext:
        return self.context or ResponsesContext({}, {})

    def response(self, status: int, body: bytes) -> tuple[int, bytes]:
        """A successful upstream body in the client's shape; a 502 in the client's shape if it cannot be read."""
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise TranslationError("the body is not a JSON object")
            out = self._translate(data)
        except (ValueError, TranslationError) as exc:
            detail = exc.message if isinstance(exc, TranslationError) else "the body is not JSON"
            message = f"the upstream's answer could not be translated ({detail}); retry the request"
            return 502, json.dumps(error_body(self.shape, 502, message, "translation_failed")).encode()
        return status, encode(out)

    def _translate(self, data: dict[str, Any]) -> dict[str, Any]:
        pair = (self.client, self.upstream)
        if pair == ("messages", "chat"):
            return openai_to_anthropic.response(data)
        if pair == ("chat", "messages"):
            return anthropic_to_openai.response(data)
        if pair == ("responses", "messages"):
            return responses_to_anthropic.response(data, self._context())
        if pair == ("responses", "chat"):
            return responses_to_chat.response(data, self._context())
        if pair == ("messages", "responses"):
            return messages_to_responses.response(data)
        raise TranslationError(f"no translation of {self.upstream} answers for {self.client} clients")

    def error(self, status: int, body: bytes) -> bytes:
        """An upstream error body in the client's shape (Responses clients get OpenAI's)."""
        return errors.to_client(body, status, self.shape.value)

    def stream(self) -> StreamTranslator:
        """A new incremental translator for one streamed answer."""
        pair = (self.client, self.upstream)
        if pair == ("messages", "chat"):
            return OpenAIToAnthropicStream()
        if pair == ("chat", "messages"):
            return AnthropicToOpenAIStream(self.include_usage)
        if pair == ("responses", "messages"):
            return AnthropicToResponsesStream(self._context())
        if pair == ("responses", "chat"):
            return ChatToResponsesStream(self._context())
        if pair == ("messages", "responses"):
            return ResponsesToAnthropicStream()
        raise TranslationError(f"no translation of {self.upstream} streams for {self.client} clients")


def translate_request(client: str, upstream: str, data: dict[str, Any]) -> tuple[dict[str, Any], Translation]:
    """``data`` (a ``client``-API request) for an ``upstream``-API pool; raises :class:`TranslationError`.

    ``client`` and ``upstream`` are API names ("chat", "responses", "messages").
    """
    pair = (api_name(client), api_name(upstream))
    if pair in (("messages", "chat"), ("messages", "responses")):
        dropped: list[str] = []
        module = anthropic_to_openai if pair[1] == "chat" else messages_to_responses
        body = module.request(data, dropped)
        return body, Translation(*pair, dropped=tuple(dropped))
    if pair == ("chat", "messages"):
        options = data.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return openai_to_anthropic.request(data), Translation(*pair, include_usage)
    if pair in (("responses", "messages"), ("responses", "chat")):
        module = responses_to_anthropic if pair[1] == "messages" else responses_to_chat
        body, req = module.request(data)
        context = ResponsesContext(req.echo, req.names)
        return body, Translation(*pair, dropped=tuple(req.dropped), context=context)
    raise TranslationError(f"no translation from the {client} API to the {upstream} API")

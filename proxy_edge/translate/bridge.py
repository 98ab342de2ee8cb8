"""One translated exchange: the request body on the way out, and the response, stream or error on the way back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from proxy_edge.errors import ApiShape, error_body
from proxy_edge.translate import TranslationError, anthropic_to_openai, errors, openai_to_anthropic
from proxy_edge.translate.stream import AnthropicToOpenAIStream, OpenAIToAnthropicStream

StreamTranslator = OpenAIToAnthropicStream | AnthropicToOpenAIStream


@dataclass(frozen=True, slots=True)
class Translation:
    """How to bring a ``upstream``-format answer back to a ``client``-format client ("openai" or "anthropic")."""

    client: str
    upstream: str
    include_usage: bool = False
    """The OpenAI client asked for the stream's usage chunk (``stream_options.include_usage``)."""

    def response(self, status: int, body: bytes) -> tuple[int, bytes]:
        """A successful upstream body in the client's shape; a 502 in the client's shape if it cannot be read."""
        try:
            data = json.loads(body)
            if not isinstance(data, dict):
                raise TranslationError("the body is not a JSON object")
            if self.client == "anthropic":
                out = openai_to_anthropic.response(data)
            else:
                out = anthropic_to_openai.response(data)
        except (ValueError, TranslationError) as exc:
            detail = exc.message if isinstance(exc, TranslationError) else "the body is not JSON"
            message = f"the upstream's answer could not be translated ({detail}); retry the request"
            return 502, json.dumps(error_body(ApiShape(self.client), 502, message, "translation_failed")).encode()
        return status, json.dumps(out, ensure_ascii=False).encode()

    def error(self, status: int, body: bytes) -> bytes:
        """An upstream error body in the client's shape."""
        return errors.to_client(body, status, self.client)

    def stream(self) -> StreamTranslator:
        """A new incremental translator for one streamed answer."""
        if self.client == "anthropic":
            return OpenAIToAnthropicStream()
        return AnthropicToOpenAIStream(self.include_usage)


def translate_request(client: str, upstream: str, data: dict[str, Any]) -> tuple[dict[str, Any], Translation]:
    """``data`` (a ``client``-format request) for an ``upstream``-format pool; raises :class:`TranslationError`."""
    if client == "anthropic" and upstream == "openai":
        return anthropic_to_openai.request(data), Translation(client, upstream)
    if client == "openai" and upstream == "anthropic":
        options = data.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return openai_to_anthropic.request(data), Translation(client, upstream, include_usage)
    raise TranslationError(f"no translation from the {client} API to {upstream}-format pools")

"""Translation between the Anthropic Messages API and OpenAI Chat Completions: requests, responses, streams and
errors, as pure functions and small state machines (no I/O), so that any client can use any pool.

What cannot be translated raises :class:`TranslationError`; the edge answers it with a 400 naming the feature.
"""

from __future__ import annotations


class TranslationError(ValueError):
    """The request uses something the other API lacks; ``message`` says what and what to do instead."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

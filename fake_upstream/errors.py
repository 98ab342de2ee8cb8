"""The scripted error answers (``ratelimited``, ``unauthorized``, ``nocredit``, ``windowN`` … in a key's words), in
each API's real shape and words."""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from fake_upstream.limits import OPENAI_REQUESTS_LIMIT, WINDOW_WORD, go_duration
from fake_upstream.wire import prompt_tokens

_RATE_LIMITED = re.compile(r"ratelimited(\d+)?")
_THROTTLED = re.compile(r"throttled(\d+)?")
_RANDOM = random.Random()


def error_answer(anthropic: bool, status: int, kind: str, message: str, headers: dict[str, str]) -> web.Response:
    """An error in the API's shape; Anthropic's body repeats the ``request-id`` header as ``request_id``."""
    if anthropic:
        request_id = headers.get("request-id") or f"req_{uuid.uuid4().hex[:24]}"
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}
        return web.json_response(body, status=status, headers={**headers, "request-id": request_id})
    return openai_error(status, message, kind, kind, None, headers)


def openai_error(status: int, message: str, kind: str, code: str | None, param: str | None,
                 headers: dict[str, str]) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


@dataclass(frozen=True)
class Asked:
    """What a request asked, for the answers that quote it."""

    path: str
    model: str | None
    body: Any
    """The parsed JSON body (anything, or the prologue's marker for a body that is not JSON)."""

    @property
    def prompt_tokens(self) -> int:
        return prompt_tokens(self.body) if isinstance(self.body, dict) else 1


def scripted_failure(key: str, anthropic: bool, headers: dict[str, str], age: float,
                     asked: Asked) -> web.Response | None:
    """The scripted error answer for ``key`` (its words), if any; ``age`` is the seconds since the key's first
    request."""
    if "flaky" in key:
        roll = _RANDOM.random()
        if roll < 0.10:
            return error_answer(anthropic, 429, "rate_limit_error", "Rate limit reached (fake upstream, flaky).",
                                {**headers, "retry-after": "1"})
        if roll < 0.12:
            return error_answer(anthropic, 500, "api_error" if anthropic else "server_error",
                                "Internal error (fake upstream, flaky).", headers)
    limited = _RATE_LIMITED.search(key)
    if limited:
        return error_answer(anthropic, 429, "rate_limit_error", "Rate limit reached for requests (fake upstream).",
                            {**headers, "retry-after": limited.group(1) or "30"})
    throttled = _THROTTLED.search(key)
    if throttled and (not throttled.group(1) or age * 1000 < int(throttled.group(1))):
        return error_answer(anthropic, 429, "rate_limit_error", "Rate limit reached for requests (fake upstream).",
                            headers)
    if "overloaded" in key:
        return error_answer(anthropic, 529 if anthropic else 503, "overloaded_error", "Overloaded (fake upstream).",
                            headers)
    if "unauthorized" in key:
        kind = "authentication_error" if anthropic else "invalid_api_key"
        return error_answer(anthropic, 401, kind, "Invalid API key (fake upstream).", headers)
    if "forbidden" in key:
        return error_answer(anthropic, 403, "permission_error", "This key may not use this model (fake upstream).",
                            headers)
    if "echokey" in key:
        message = (f"Incorrect API key provided: {key[:8]}{'*' * max(0, len(key) - 12)}{key[-4:]}. You can find "
                   "your API key at https://platform.openai.com/account/api-keys.")
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None,
                          "code": "invalid_api_key"}}
        return web.json_response(body, status=401, headers=headers)
    if "leakkey" in key:
        middle = len(key) // 2
        return error_answer(anthropic, 500, "api_error" if anthropic else "server_error",
                            f"Internal error for the key with {key[middle - 8:middle + 8]} (fake upstream).", headers)
    if "broken" in key:
        return error_answer(anthropic, 500, "api_error" if anthropic else "server_error",
                            "Internal error (fake upstream).", headers)
    return _quota_failure(key, anthropic, headers, asked)


def _quota_failure(key: str, anthropic: bool, headers: dict[str, str], asked: Asked) -> web.Response | None:
    """The answers of ``nocredit``, ``contextlimit``, ``gemini429`` and ``windowN`` keys, in the real providers'
    words; None for other keys."""
    if "nocredit" in key:
        if anthropic:
            return error_answer(True, 400, "invalid_request_error", ANTHROPIC_NO_CREDIT, headers)
        return openai_error(429, OPENAI_NO_CREDIT, "insufficient_quota", "insufficient_quota", None, headers)
    if "contextlimit" in key:
        if anthropic:
            return error_answer(True, 400, "invalid_request_error",
                                f"prompt is too long: {200_000 + asked.prompt_tokens} tokens > 200000 maximum", headers)
        if asked.path.endswith("/responses"):
            return openai_error(400, "Your input exceeds the context window of this model. Please adjust your input "
                                "and try again.", "invalid_request_error", "context_length_exceeded", "input", headers)
        return openai_error(400, f"This model's maximum context length is 128000 tokens. However, your messages "
                            f"resulted in {128_000 + asked.prompt_tokens} tokens. Please reduce the length of the "
                            "messages.", "invalid_request_error", "context_length_exceeded", "messages", headers)
    if "gemini429" in key:
        return web.json_response(GEMINI_EXHAUSTED, status=429)
    window = WINDOW_WORD.search(key)
    if window:
        if anthropic:
            return error_answer(True, 429, "rate_limit_error", "This request would exceed your account's rate limit. "
                                "Please try again later.", {**headers, "retry-after": window.group(1)})
        message = (f"Rate limit reached for {asked.model or 'this model'} in organization org-fake on requests per "
                   f"day (RPD): Limit {OPENAI_REQUESTS_LIMIT}, Used {OPENAI_REQUESTS_LIMIT}, Requested 1. Please try "
                   f"again in {go_duration(int(window.group(1)))}. Visit https://platform.openai.com/account/"
                   "rate-limits to learn more.")
        return openai_error(429, message, "requests", "rate_limit_exceeded", None, headers)
    return None


OPENAI_NO_CREDIT = ("You exceeded your current quota, please check your plan and billing details. For more information "
                    "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.")
ANTHROPIC_NO_CREDIT = ("Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to "
                       "upgrade or purchase credits.")
GEMINI_EXHAUSTED = [{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                               "status": "RESOURCE_EXHAUSTED"}}]
"""The body of a 429 from Gemini's OpenAI-compatible endpoint: a list holding one Google API error."""

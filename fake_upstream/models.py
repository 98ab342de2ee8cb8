"""``/v1/models`` and ``/v1/models/{id}``, in the shape of the API asked (Anthropic's when the request carries
``anthropic-version``)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fake_upstream.errors import error_answer

MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-5.5", "text-embedding-3-small", "claude-opus-5-5", "claude-sonnet-4-6",
          "claude-haiku-4-5")
"""What ``/v1/models`` lists (any model name is served); gpt-5.5 and claude-opus-5-5 are Codex CLI's and Claude
Code's defaults."""
CLAUDE_MODELS = tuple(m for m in MODELS if m.startswith("claude"))


def _display_name(model: str) -> str:
    """``claude-sonnet-4-6`` -> ``Claude Sonnet 4.6``."""
    words = model.split("-")
    numbers = [w for w in words if w.isdigit()]
    return " ".join([*(w.capitalize() for w in words if not w.isdigit()), ".".join(numbers)]).strip()


def _model_entry(model: str, anthropic: bool) -> dict[str, Any]:
    if anthropic:
        return {"type": "model", "id": model, "display_name": _display_name(model),
                "created_at": "2025-10-01T00:00:00Z"}
    return {"id": model, "object": "model", "created": 1700000000, "owned_by": "fake"}


async def list_models(request: web.Request) -> web.Response:
    """The model list in the shape of the API asked: Anthropic's when the request carries ``anthropic-version``."""
    if "anthropic-version" not in request.headers:
        return web.json_response({"object": "list", "data": [_model_entry(m, False) for m in MODELS]})
    return web.json_response({"data": [_model_entry(m, True) for m in CLAUDE_MODELS],
                              "has_more": False, "first_id": CLAUDE_MODELS[0], "last_id": CLAUDE_MODELS[-1]})


async def one_model(request: web.Request) -> web.Response:
    """One model (``/v1/models/{id}``); an unknown id is a 404 in the real error shape."""
    anthropic = "anthropic-version" in request.headers
    name = request.match_info["model"]
    if name in (CLAUDE_MODELS if anthropic else MODELS):
        return web.json_response(_model_entry(name, anthropic))
    if anthropic:
        return error_answer(True, 404, "not_found_error", f"model: {name}", {})
    return web.json_response({"error": {"message": f"The model '{name}' does not exist", "type":
                                        "invalid_request_error", "param": "model", "code": "model_not_found"}},
                             status=404)

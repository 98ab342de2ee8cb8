"""The fake upstream's application: its routes, the stats and script endpoints, and a running server for tests
(see the package's docstring for what it fakes)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp import web

from fake_upstream.chat import chat_completions, embeddings
from fake_upstream.messages import count_tokens, messages
from fake_upstream.models import list_models, one_model
from fake_upstream.responses import responses
from fake_upstream.state import LATENCY, SCRIPT, STATS, FakeStats, set_script
from poolgate.http_site import Site, start_site


async def stats(request: web.Request) -> web.Response:
    s = request.app[STATS]
    return web.json_response({"requests": dict(s.requests), "paths": {key: dict(c) for key, c in s.paths.items()},
                              "models": {key: dict(c) for key, c in s.models.items()},
                              "cancelled": s.cancelled, "in_flight": s.in_flight, "with_cookie": s.with_cookie,
                              "arrivals": {key: list(times) for key, times in s.arrivals.items()}})


async def script(request: web.Request) -> web.Response:
    """``POST /_fake/script`` ``{"key": ..., "words": ... or null, "model": ... (optional)}``."""
    try:
        body = await request.json()
        key, words, model = body["key"], body["words"], body.get("model")
        if not isinstance(key, str) or any(v is not None and not isinstance(v, str) for v in (words, model)):
            raise TypeError
    except (ValueError, KeyError, TypeError, AttributeError):
        return web.json_response({"error": 'send {"key": "...", "words": "..." or null, "model": "..." (optional)}'},
                                 status=400)
    set_script(request.app, key, words, model)
    return web.json_response({"scripted": len(request.app[SCRIPT])})


@web.middleware
async def _track(request: web.Request, handler: Any) -> web.StreamResponse:
    s = request.app[STATS]
    s.in_flight += 1
    if "Cookie" in request.headers:
        s.with_cookie += 1
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except asyncio.CancelledError:
        s.cancelled += 1
        raise
    finally:
        s.in_flight -= 1


async def _cdn_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """A new ``__cf_bm`` cookie on every API answer, streams included, as the CDN in front of the real APIs sets."""
    if not request.path.startswith("/_fake/"):
        response.headers.add("Set-Cookie", f"__cf_bm={os.urandom(12).hex()}; path=/; HttpOnly; SameSite=None")


def create_fake_app(latency: float = 0.0) -> web.Application:
    """The fake upstream's application; ``latency`` seconds pass before every answer."""
    app = web.Application(middlewares=[_track])
    app.on_response_prepare.append(_cdn_cookie)
    app[STATS] = FakeStats()
    app[SCRIPT] = {}
    app[LATENCY] = latency
    for prefix in ("/v1", ""):
        app.router.add_post(f"{prefix}/chat/completions", chat_completions)
        app.router.add_post(f"{prefix}/responses", responses)
        app.router.add_post(f"{prefix}/embeddings", embeddings)
        app.router.add_post(f"{prefix}/messages", messages)
        app.router.add_post(f"{prefix}/messages/count_tokens", count_tokens)
        app.router.add_get(f"{prefix}/models", list_models)
        app.router.add_get(f"{prefix}/models/{{model}}", one_model)
    app.router.add_get("/_fake/stats", stats)
    app.router.add_post("/_fake/script", script)
    return app


class FakeUpstream(Site):
    """A running fake upstream; ``url`` is its base URL without a path."""

    @property
    def stats(self) -> FakeStats:
        return self.runner.app[STATS]

    def script(self, key: str, words: str | None, model: str | None = None) -> None:
        """Answer ``key``'s requests as if the key held ``words`` (``throttled``, ``unauthorized``, ``ok`` …); with
        ``model``, only its requests for that model (a model's script wins over the key-wide one). None undoes that
        one script: the key-wide one, or with ``model`` that model's."""
        set_script(self.runner.app, key, words, model)


async def start_fake_upstream(host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> FakeUpstream:
    """Start the fake upstream in this event loop (port 0 picks a free port)."""
    runner, bound = await start_site(create_fake_app(latency), host, port, shutdown_timeout=2,
                                     handler_cancellation=True)
    return FakeUpstream(runner, host, bound)

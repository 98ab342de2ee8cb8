"""``GET /dashboard``: one page showing every pool's accounts live, served from files inside the package.

The page (HTML, CSS, JS in ``static/``; nothing loaded from the network) loads without a key and polls
``GET /dashboard/api/snapshot``, which needs the edge's client key unless ``edge.auth: false``; the page asks for
the key once and keeps it in the tab's sessionStorage. With the selector's admin token (entered in the page, kept in
the tab's sessionStorage too), the page enables, disables and resets accounts and reloads the selector's config
through ``POST /dashboard/api/…`` (:mod:`proxy_edge.dashboard.actions`).
"""

from __future__ import annotations

import json
from importlib import resources

from aiohttp import web

from proxy_edge.dashboard import actions
from proxy_edge.dashboard.feed import DashboardFeed
from proxy_edge.errors import ApiShape, error_response, unauthorized
from proxy_edge.handlers import AUTH
from proxy_edge.selector_client import SelectorError

FEED = web.AppKey("dashboard_feed", DashboardFeed)
_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}
# The page's own files only: no inline script, nothing from elsewhere.
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def _static_files() -> dict[str, tuple[bytes, str]]:
    folder = resources.files(__package__).joinpath("static")
    files: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


def install(app: web.Application) -> None:
    """Add the dashboard's routes to ``app``."""
    files = _static_files()
    feed = app[FEED] = DashboardFeed(app)

    async def page(_request: web.Request) -> web.Response:
        body, content_type = files["index.html"]
        return web.Response(body=body, content_type=content_type,
                            headers={"Cache-Control": "no-cache", "Content-Security-Policy": _CSP,
                                     "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})

    async def static(request: web.Request) -> web.Response:
        found = files.get(request.match_info["name"])
        if found is None:
            raise web.HTTPNotFound(text="no such dashboard file")
        body, content_type = found
        return web.Response(body=body, content_type=content_type,
                            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})

    async def snapshot(request: web.Request) -> web.Response:
        if not request.app[AUTH].check(request.headers):
            return unauthorized()
        try:
            data = await request.app[FEED].snapshot()
        except SelectorError as exc:
            return error_response(ApiShape.OPENAI, exc.status, exc.message, exc.code)
        return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def redirect(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/dashboard")

    app.router.add_get("/dashboard", page)
    app.router.add_get("/dashboard/", redirect)
    app.router.add_get("/dashboard/static/{name}", static)
    app.router.add_get("/dashboard/api/snapshot", snapshot)
    actions.install(app, feed)

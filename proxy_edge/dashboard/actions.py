"""The dashboard's operator actions: ``POST /dashboard/api/accounts/{enable,disable,reset}`` and
``POST /dashboard/api/reload``.

Each needs the edge's client key (as the snapshot does, unless ``edge.auth: false``) and the selector's admin token
in the ``X-Poolgate-Admin-Token`` header, which the edge passes on to the selector and never keeps, logs or echoes.
A header, not a cookie, carries it, and the body must be JSON: a cross-site form cannot send either, and a browser
asks before a cross-site script may (the edge allows none). An ``Origin`` that is not this edge's is refused too.
Errors are JSON in the shape of the edge's other errors (``{"error": {"message", "type", "code"}}``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from yarl import URL

from proxy_edge.dashboard.admin_link import AdminActionError, AdminLink
from proxy_edge.dashboard.feed import DashboardFeed
from proxy_edge.errors import ApiShape, error_response, unauthorized
from proxy_edge.handlers import AUTH, SELECTOR

log = logging.getLogger("poolgate.edge.dashboard")

TOKEN_HEADER = "X-Poolgate-Admin-Token"
MAX_TOKEN_CHARS = 4096
MAX_REASON_CHARS = 500
ACCOUNT_ACTIONS = ("enable", "disable", "reset")


def _refuse(status: int, code: str, message: str) -> web.Response:
    return error_response(ApiShape.OPENAI, status, message, code)


def foreign_origin(request: web.Request) -> bool:
    """Whether the request comes from another site's page: an ``Origin`` (or ``Sec-Fetch-Site``) that is not this
    edge's. Requests without either (curl, scripts) are not a browser's cross-site requests."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        return True
    origin = request.headers.get("Origin")
    if origin is None:
        return False
    try:
        authority = URL(origin).raw_authority
    except ValueError:
        return True
    return not authority or authority.lower() != request.host.lower()


def _admin_token(request: web.Request) -> str:
    """The admin token the operator sent; AdminActionError when there is none or it cannot be a token."""
    token = request.headers.get(TOKEN_HEADER, "").strip()
    if not token:
        raise AdminActionError(401, "admin_token_required", (
            f"this action needs the selector's admin token (one of selector.auth.admin_tokens) in the {TOKEN_HEADER} "
            "header: enter it in the dashboard"))
    if len(token) > MAX_TOKEN_CHARS or not all("!" <= ch <= "~" for ch in token):
        raise AdminActionError(401, "admin_token_rejected", (
            "that is not an admin token: tokens are printable ASCII without spaces; enter one of "
            "selector.auth.admin_tokens"))
    return token


async def _json_object(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise AdminActionError(415, "unsupported_media_type",
                               "send the action as JSON (Content-Type: application/json)")
    try:
        body = json.loads(await request.read() or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise AdminActionError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise AdminActionError(400, "invalid_json", "the body must be a JSON object")
    return body


def _text(body: dict[str, Any], field: str, required: bool, limit: int = 200) -> str:
    value = body.get(field, "")
    if not isinstance(value, str):
        raise AdminActionError(400, "invalid_request", f"{field}: must be a string")
    value = value.strip()
    if required and not value:
        raise AdminActionError(400, "invalid_request", f"{field}: required")
    if len(value) > limit:
        raise AdminActionError(400, "invalid_request", f"{field}: at most {limit} characters")
    return value


class DashboardActions:
    """The action handlers of one edge application."""

    def __init__(self, feed: DashboardFeed) -> None:
        self._feed = feed

    async def _checked(self, request: web.Request) -> tuple[AdminLink, str, dict[str, Any]]:
        """The link, the admin token and the JSON body of an action request that may go to the selector."""
        token = _admin_token(request)
        body = await _json_object(request)
        link = AdminLink(request.app[SELECTOR].channel)
        await link.require_admin_tokens()
        return link, token, body

    async def account(self, request: web.Request) -> web.Response:
        """Enable, disable (``reason``) or reset one account (``pool``, ``account``)."""
        action = request.match_info["action"]
        refused = self._precheck(request)
        if refused is not None:
            return refused
        try:
            link, token, body = await self._checked(request)
            pool, account = _text(body, "pool", True), _text(body, "account", True)
            if action == "disable":
                reason = _text(body, "reason", False, MAX_REASON_CHARS) or "disabled from the dashboard"
                result = await link.disable(token, pool, account, reason)
            elif action == "enable":
                result = await link.enable(token, pool, account)
            else:
                result = await link.reset(token, pool, account)
        except AdminActionError as exc:
            return _refuse(exc.status, exc.code, exc.message)
        self._feed.forget_accounts()
        log.info("dashboard: %s %s", action, result.account_id)
        return web.json_response({"account": result.to_json()}, headers={"Cache-Control": "no-store"})

    async def reload(self, request: web.Request) -> web.Response:
        """Ask the selector to re-read its config file."""
        refused = self._precheck(request)
        if refused is not None:
            return refused
        try:
            link, token, _body = await self._checked(request)
            summary = await link.reload(token)
        except AdminActionError as exc:
            return _refuse(exc.status, exc.code, exc.message)
        self._feed.forget_accounts()
        log.info("dashboard: config reloaded")
        return web.json_response(summary, headers={"Cache-Control": "no-store"})

    @staticmethod
    def _precheck(request: web.Request) -> web.Response | None:
        if foreign_origin(request):
            return _refuse(403, "cross_origin", "actions are taken only from this edge's own dashboard page")
        if not request.app[AUTH].check(request.headers):
            return unauthorized()
        return None


def install(app: web.Application, feed: DashboardFeed) -> None:
    """Add the action routes to ``app``."""
    actions = DashboardActions(feed)
    app.router.add_post("/dashboard/api/accounts/{action:" + "|".join(ACCOUNT_ACTIONS) + "}", actions.account)
    app.router.add_post("/dashboard/api/reload", actions.reload)

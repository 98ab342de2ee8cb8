"""The OAuth refresh_token grant (RFC 6749 section 6), without HTTP: the request to send and what the answer means.

The POST itself is done by an injected :data:`TokenPoster` (:mod:`.oauth_http` is the aiohttp one), so this module
is testable and stays free of I/O. Answers are read in snake_case or camelCase (``access_token``/``accessToken``,
``expires_in``/``expiresIn``...), which covers standard endpoints and the few providers that answer in JSON style.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from poolgate.config import redact
from poolgate.config.schema import OAuthSettings
from selector_service.credentials.files import parse_expiry

DEFAULT_LIFETIME = 3600.0  # seconds, when the endpoint does not say how long the new token lasts
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class TokenRequest:
    url: str
    body: Literal["form", "json"]
    fields: dict[str, str] = field(repr=False)
    timeout: float


@dataclass(frozen=True, slots=True)
class TokenResponse:
    status: int
    data: dict[str, Any] = field(repr=False)
    """The parsed body ({} when it was not a JSON or form-encoded object)."""


TokenPoster = Callable[[TokenRequest], Awaitable[TokenResponse]]
"""POSTs a token request; raises :class:`TokenEndpointUnreachable` when no answer came (network, timeout)."""


class TokenEndpointUnreachable(Exception):
    """No answer from the token endpoint (connection refused, DNS, timeout): retried, never disabling."""


class TokenRefreshFailed(Exception):
    """The endpoint answered, but not with new tokens (5xx, 429, an unexpected error): retried with backoff."""


class TokenRejected(Exception):
    """The endpoint rejected the refresh token (``invalid_grant``): it will never work again."""


@dataclass(frozen=True, slots=True)
class NewTokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    """Empty when the endpoint did not rotate it (keep the old one)."""
    expires_at: float


def build_request(settings: OAuthSettings, refresh_token: str, fields: Callable[[str], str | None]) -> TokenRequest:
    """The refresh request for one account; ``fields`` looks up the credential file's fields for ``{name}`` in
    token_url. Raises TokenRefreshFailed when token_url names a field the file does not have."""

    def substitute(match: re.Match[str]) -> str:
        value = fields(match.group(1))
        if value is None:
            raise TokenRefreshFailed(f"oauth.token_url names {{{match.group(1)}}}, but the credential file has no "
                                     f"{match.group(1)} field")
        return value

    body: dict[str, str] = {}
    if settings.grant_type:
        body["grant_type"] = settings.grant_type
    body[settings.refresh_token_field] = refresh_token
    if settings.client_id:
        body["client_id"] = settings.client_id
    if settings.client_secret:
        body["client_secret"] = settings.client_secret
    if settings.scope:
        body["scope"] = settings.scope
    body.update(settings.params)
    url = _PLACEHOLDER.sub(substitute, settings.token_url)
    return TokenRequest(url, settings.body, body, settings.timeout)


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    return next((data[key] for key in keys if data.get(key) not in (None, "")), None)


def read_response(response: TokenResponse, now: float, secrets: tuple[str, ...]) -> NewTokens:
    """New tokens from a 2xx answer; otherwise TokenRejected (``invalid_grant``) or TokenRefreshFailed.

    ``secrets`` (the tokens sent) are scrubbed from any text taken from the answer.
    """
    data = response.data
    if 200 <= response.status < 300:
        access = _first(data, "access_token", "accessToken")
        if not isinstance(access, str):
            raise TokenRefreshFailed(f"the token endpoint answered {response.status} without an access_token")
        refresh = _first(data, "refresh_token", "refreshToken")
        lifetime = _first(data, "expires_in", "expiresIn")
        expiry = _first(data, "expires_at", "expiresAt")
        try:
            if isinstance(lifetime, int | float | str) and not isinstance(lifetime, bool):
                expires_at = now + float(lifetime)
            elif expiry is not None:
                expires_at = parse_expiry(expiry)
            else:
                expires_at = now + DEFAULT_LIFETIME
        except ValueError:
            raise TokenRefreshFailed("the token endpoint answered with an unreadable expiry") from None
        return NewTokens(access, refresh if isinstance(refresh, str) else "", expires_at)
    error = data.get("error")
    code = error if isinstance(error, str) else ""
    if isinstance(error, dict):  # {"error": {"code": ..., "message": ...}} (some providers)
        code = str(error.get("code") or error.get("type") or "")
    description = _first(data, "error_description", "message", "errorDescription")
    detail = f"{response.status} {code}".strip()
    if isinstance(description, str):
        detail += f": {scrub(description, secrets)[:200]}"
    if code == "invalid_grant":
        raise TokenRejected(f"refresh token rejected by the token endpoint ({detail})")
    raise TokenRefreshFailed(f"the token endpoint answered {detail}")


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every occurrence of a secret replaced by its redacted form."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, redact(secret))
    return text


async def refresh_tokens(
    post: TokenPoster, settings: OAuthSettings, refresh_token: str, fields: Callable[[str], str | None],
    now: Callable[[], float],
) -> NewTokens:
    """One refresh_token grant; raises TokenRejected, TokenRefreshFailed or TokenEndpointUnreachable."""
    request = build_request(settings, refresh_token, fields)
    response = await post(request)
    return read_response(response, now(), (refresh_token, settings.client_secret))

"""The token endpoint over HTTP, with aiohttp: the :data:`~selector_service.credentials.oauth.TokenPoster` used in
production."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from selector_service.credentials.oauth import TokenEndpointUnreachable, TokenRequest, TokenResponse

if TYPE_CHECKING:
    import aiohttp


class AiohttpTokenPoster:
    """POSTs token requests on one lazily created session; :meth:`close` it when done.

    aiohttp is imported on the first refresh: a selector without OAuth accounts never loads it (~9 MB).
    """

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, request: TokenRequest) -> TokenResponse:
        import aiohttp

        if self._session is None or self._session.closed:
            # No cookie jar: one account's refresh must not carry a cookie another account's refresh was given.
            self._session = aiohttp.ClientSession(headers={"accept": "application/json"},
                                                  cookie_jar=aiohttp.DummyCookieJar())
        payload: dict[str, Any] = {"data": request.fields} if request.body == "form" else {"json": request.fields}
        try:
            async with self._session.post(
                request.url, timeout=aiohttp.ClientTimeout(total=request.timeout), allow_redirects=False, **payload,
            ) as response:
                raw = await response.read()
                status, content_type = response.status, response.content_type
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # aiohttp's messages name the host and the cause, never the request body
            raise TokenEndpointUnreachable(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__) from None
        return TokenResponse(status, _parse(raw, content_type))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _parse(raw: bytes, content_type: str) -> dict[str, Any]:
    text = raw.decode("utf-8", "replace")
    if content_type == "application/x-www-form-urlencoded":
        return dict(parse_qsl(text))
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}

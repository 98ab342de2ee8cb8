"""The refresh_token grant: request shapes for the common providers, reading answers, and the HTTP client."""

from __future__ import annotations

import socket

import pytest

from poolgate.config.schema import OAuthSettings
from selector_service.credentials.oauth import (
    TokenEndpointUnreachable,
    TokenRefreshFailed,
    TokenRejected,
    TokenRequest,
    TokenResponse,
    build_request,
    read_response,
)
from selector_service.credentials.oauth_http import AiohttpTokenPoster
from tests.credentials.conftest import FakeTokenEndpoint

FIELDS = {"region": "eu-west-1"}.get


def test_form_request_with_client_credentials_and_scope() -> None:
    settings = OAuthSettings(token_url="https://oauth2.example.com/token", client_id="cid", client_secret="csecret",
                             scope="openid profile")
    request = build_request(settings, "rt-1", FIELDS)
    assert (request.url, request.body, request.timeout) == ("https://oauth2.example.com/token", "form", 30.0)
    assert request.fields == {"grant_type": "refresh_token", "refresh_token": "rt-1", "client_id": "cid",
                              "client_secret": "csecret", "scope": "openid profile"}
    assert "rt-1" not in repr(request) and "csecret" not in repr(settings)


def test_json_request_without_grant_type_and_a_renamed_field() -> None:
    settings = OAuthSettings(token_url="https://prod.{region}.auth.example.dev/refreshToken", body="json",
                             grant_type="", refresh_token_field="refreshToken", params={"source": "poolgate"})
    request = build_request(settings, "rt-1", FIELDS)
    assert request.url == "https://prod.eu-west-1.auth.example.dev/refreshToken"
    assert (request.body, request.fields) == ("json", {"refreshToken": "rt-1", "source": "poolgate"})


def test_a_url_field_the_file_lacks_is_a_clear_failure() -> None:
    settings = OAuthSettings(token_url="https://oidc.{region}.example.com/token")
    with pytest.raises(TokenRefreshFailed, match=r"names \{region\}, but the credential file has no region"):
        build_request(settings, "rt-1", {}.get)


@pytest.mark.parametrize(("data", "expires_at", "refresh"), [
    ({"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 3600}, 1000.0 + 3600, "rt-2"),
    ({"accessToken": "at-2", "refreshToken": "rt-2", "expiresIn": "60"}, 1060.0, "rt-2"),
    ({"access_token": "at-2", "expires_at": "2030-01-31T12:00:00Z"}, 1896091200.0, ""),
    ({"access_token": "at-2"}, 1000.0 + 3600, ""),
])
def test_answers_in_either_style(data: dict[str, object], expires_at: float, refresh: str) -> None:
    tokens = read_response(TokenResponse(200, data), 1000.0, ())
    assert (tokens.access_token, tokens.refresh_token, tokens.expires_at) == ("at-2", refresh, expires_at)


def test_invalid_grant_is_a_rejection_and_the_token_is_scrubbed() -> None:
    answer = TokenResponse(400, {"error": "invalid_grant", "error_description": "token rt-secret-123456 is revoked"})
    with pytest.raises(TokenRejected) as caught:
        read_response(answer, 0.0, ("rt-secret-123456",))
    assert "400 invalid_grant" in str(caught.value) and "rt-secret-123456" not in str(caught.value)
    assert "…3456 is revoked" in str(caught.value)


@pytest.mark.parametrize(("status", "data", "message"), [
    (503, {"error": "temporarily_unavailable"}, "answered 503 temporarily_unavailable"),
    (401, {"error": "invalid_client"}, "answered 401 invalid_client"),
    (429, {}, "answered 429"),
    (200, {"token_type": "Bearer"}, "answered 200 without an access_token"),
])
def test_other_failures_are_retried_not_rejections(status: int, data: dict[str, object], message: str) -> None:
    with pytest.raises(TokenRefreshFailed, match=message):
        read_response(TokenResponse(status, data), 0.0, ())


async def test_http_client_sends_form_and_json(token_endpoint: FakeTokenEndpoint) -> None:
    token_endpoint.allow("rt-a", "a")
    token_endpoint.allow("rt-b", "b")
    post = AiohttpTokenPoster()
    try:
        form = await post(TokenRequest(token_endpoint.url, "form", {"grant_type": "refresh_token",
                                                                    "refresh_token": "rt-a"}, 5.0))
        json_answer = await post(TokenRequest(token_endpoint.url, "json", {"refreshToken": "rt-b"}, 5.0))
        rejected = await post(TokenRequest(token_endpoint.url, "form", {"refresh_token": "rt-a"}, 5.0))
    finally:
        await post.close()
    form_type = "application/x-www-form-urlencoded"
    assert [c["content_type"] for c in token_endpoint.calls] == [form_type, "application/json", form_type]
    assert form.status == 200 and form.data["access_token"].startswith("at-a-")
    assert json_answer.status == 200 and json_answer.data["access_token"].startswith("at-b-")
    assert rejected.status == 400 and rejected.data["error"] == "invalid_grant"  # rt-a was rotated


async def test_one_accounts_refresh_never_carries_a_cookie_another_was_given(
        token_endpoint: FakeTokenEndpoint) -> None:
    """The endpoint sets a cookie on every answer; named by host name (``localhost``), where a cookie jar keeps it.
    Every account's refresh goes out without one: a shared cookie would link the accounts for the provider."""
    token_endpoint.allow("rt-a", "a")
    token_endpoint.allow("rt-b", "b")
    by_name = token_endpoint.url.replace("127.0.0.1", "localhost")
    post = AiohttpTokenPoster()
    try:
        for token in ("rt-a", "rt-b"):
            answer = await post(TokenRequest(by_name, "form", {"refresh_token": token}, 5.0))
            assert answer.status == 200
    finally:
        await post.close()
    assert [call["cookie"] for call in token_endpoint.calls] == [False, False]


async def test_http_client_unreachable_endpoint() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        post = AiohttpTokenPoster()
        try:
            with pytest.raises(TokenEndpointUnreachable, match=r"127\.0\.0\.1"):
                await post(TokenRequest(f"http://127.0.0.1:{port}/token", "form", {"refresh_token": "rt-x"}, 2.0))
        finally:
            await post.close()

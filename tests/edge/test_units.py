"""Unit tests: routing, headers, retry-after, SSE inspection and usage, error shapes, request parsing, auth."""

from __future__ import annotations

import hashlib
import json

import pytest
from multidict import CIMultiDict

from poolgate.config import EdgeSection, parse_config
from poolgate.secrets import scrub_bytes
from proxy_edge.auth import Authenticator, EdgeConfigError
from proxy_edge.endpoints import CHAT, MESSAGES, RESPONSES, InputError, parse_job, session_key
from proxy_edge.errors import ApiShape, error_body, sse_error_event
from proxy_edge.headers import (
    client_response_headers,
    format_retry_after,
    rate_limit_headers,
    retry_after_ms,
    upstream_request_headers,
)
from proxy_edge.routing import Router
from proxy_edge.streaming import StreamInspector, StreamKind, body_usage, error_status

CONFIG = parse_config("""
pools:
  openai: {api_key: sk-aaaaaaaaaaaa}
  anthropic: {format: anthropic, api_key: sk-ant-aaaaaaaaaa}
  gemini: {base_url: "https://generativelanguage.googleapis.com/v1beta/openai/", api_key: AIzaaaaaaaaaaa}
models:
  gpt-4o: openai
  gpt-*: openai/gpt-4o-mini
  claude-*: anthropic
  fast: gemini/gemini-2.0-flash
""")


@pytest.mark.parametrize(("model", "expected"), [
    ("gpt-4o", ("openai", "openai", "gpt-4o")),  # exact wins over the glob
    ("gpt-4.1", ("openai", "openai", "gpt-4o-mini")),  # glob with a fixed upstream model
    ("claude-opus-4-6", ("anthropic", "anthropic", "claude-opus-4-6")),
    ("fast", ("gemini", "openai", "gemini-2.0-flash")),
    ("gemini/gemini-2.5-pro", ("gemini", "openai", "gemini-2.5-pro")),  # explicit pool/model from the client
    ("nope/model", None),
    ("gemini/", None),
    ("llama-3", None),
])
def test_routing(model: str, expected: tuple[str, str, str] | None) -> None:
    router = Router(CONFIG)
    for _ in range(2):  # second time from the cache
        route = router.resolve(model)
        assert (None if route is None else (route.pool, route.format, route.upstream_model)) == expected
    assert "gpt-*" in router.describe_served() and "gemini/<model>" in router.describe_served()


def test_gemini_base_url_is_joined_without_a_double_slash() -> None:
    assert CONFIG.pools["gemini"].base_url + CHAT.upstream_path == (
        "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions")


def test_upstream_headers_drop_client_credentials_and_add_the_accounts() -> None:
    client = [("Authorization", "Bearer edge-key"), ("X-Api-Key", "edge-key"), ("Host", "edge"),
              ("Content-Length", "10"), ("Connection", "keep-alive"), ("Transfer-Encoding", "chunked"),
              ("anthropic-version", "2023-06-01"), ("anthropic-beta", "tools"), ("OpenAI-Organization", "org-client"),
              ("x-session-id", "s1"), ("User-Agent", "sdk"), ("Content-Type", "application/json")]
    headers = upstream_request_headers(client, ("x-api-key", "sk-ant-secret"),
                                       [("anthropic-version", "2024-01-01"), ("x-extra", "1")], anthropic=True)
    assert dict(headers) == {"anthropic-version": "2023-06-01", "anthropic-beta": "tools", "User-Agent": "sdk",
                             "Content-Type": "application/json", "x-extra": "1", "x-api-key": "sk-ant-secret"}
    openai_headers = upstream_request_headers([("Authorization", "Bearer edge-key")],
                                              ("authorization", "Bearer sk-acct"),
                                              [("OpenAI-Organization", "org-acct")], anthropic=False)
    assert dict(openai_headers) == {"OpenAI-Organization": "org-acct", "authorization": "Bearer sk-acct",
                                    "Content-Type": "application/json"}
    anthropic_default = upstream_request_headers([], ("x-api-key", "k"), [], anthropic=True)
    assert anthropic_default["anthropic-version"] == "2023-06-01"


def test_response_and_rate_limit_headers() -> None:
    upstream = [("Content-Type", "application/json"), ("Content-Length", "5"), ("Content-Encoding", "gzip"),
                ("X-RateLimit-Remaining-Requests", "9"), ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:00Z"),
                ("Retry-After", "30"), ("retry-after-ms", "29500"), ("Set-Cookie", "a=b"), ("x-request-id", "r1")]
    assert dict(client_response_headers(upstream)) == {
        "Content-Type": "application/json", "X-RateLimit-Remaining-Requests": "9",
        "anthropic-ratelimit-tokens-reset": "2026-01-01T00:00:00Z", "Retry-After": "30", "retry-after-ms": "29500",
        "x-request-id": "r1"}
    assert rate_limit_headers(upstream) == {
        "x-ratelimit-remaining-requests": "9", "anthropic-ratelimit-tokens-reset": "2026-01-01T00:00:00Z",
        "retry-after": "30", "retry-after-ms": "29500"}


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "1500.4", "retry-after": "30"}, 1500),  # the precise one wins
    ({"retry-after": "30"}, 30_000),
    ({"retry-after": "0.5"}, 500),
    ({"retry-after": "Thu, 01 Jan 2026 00:01:00 GMT"}, 60_000),  # an HTTP date, 60 s after "now"
    ({"retry-after": "Thu, 01 Jan 2026 00:00:00 GMT"}, 0),  # in the past
    ({"retry-after": "6m0s"}, 360_000),  # a duration, read as the selector reads it
    ({"retry-after": "2026-01-01T00:00:30Z"}, 30_000),
    ({"retry-after": "soon"}, 0),
    ({"retry-after-ms": "x"}, 0),
    ({}, 0),
])
def test_retry_after(headers: dict[str, str], expected: int) -> None:
    assert retry_after_ms(headers, now=1767225600.0) == expected  # 2026-01-01T00:00:00Z


def test_format_retry_after_rounds_up_to_whole_seconds() -> None:
    assert [format_retry_after(ms) for ms in (0, 1, 1000, 1001, 29_999)] == ["1", "1", "1", "2", "30"]


def _chat_stream(include_usage_chunk: bool = True) -> bytes:
    chunk = {"id": "c", "choices": [{"index": 0, "delta": {"content": "hi"}}], "usage": None}
    parts = [f"data: {json.dumps(chunk)}\n\n"]
    if include_usage_chunk:
        usage = {"id": "c", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}}
        parts.append(f"data: {json.dumps(usage)}\n\n")
    parts.append("data: [DONE]\n\n")
    return "".join(parts).encode()


@pytest.mark.parametrize("strip", [False, True])
def test_chat_stream_usage_and_stripping_across_any_chunking(strip: bool) -> None:
    stream = _chat_stream()
    for size in (1, 7, len(stream)):
        inspector = StreamInspector(StreamKind.CHAT, strip_usage=strip)
        out = b"".join(inspector.feed(stream[i:i + size]) for i in range(0, len(stream), size)) + inspector.flush()
        assert (inspector.input_tokens, inspector.output_tokens, inspector.finished) == (7, 3, True)
        assert out == (_chat_stream(include_usage_chunk=False) if strip else stream)


def test_crlf_separated_events() -> None:
    inspector = StreamInspector(StreamKind.CHAT)
    stream = _chat_stream().replace(b"\n", b"\r\n")
    assert inspector.feed(stream) == stream and inspector.finished and inspector.output_tokens == 3


def test_anthropic_stream_usage_end_and_error() -> None:
    events = (
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":12,'
        b'"cache_creation_input_tokens":5,"cache_read_input_tokens":100,"output_tokens":1}}}\n\n'
        b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"usage"}}\n\n'
        b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":42}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    inspector = StreamInspector(StreamKind.ANTHROPIC)
    assert inspector.feed(events) == events
    assert (inspector.input_tokens, inspector.output_tokens, inspector.finished) == (17, 42, True)
    assert inspector.error is None
    failing = StreamInspector(StreamKind.ANTHROPIC)
    failing.feed(b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n')
    assert failing.error == {"type": "overloaded_error", "message": "busy"} and error_status(failing.error) == 529


def test_responses_stream_usage_and_failure() -> None:
    done = (b'event: response.completed\ndata: {"type":"response.completed","response":{"usage":'
            b'{"input_tokens":4,"output_tokens":9}}}\n\n')
    inspector = StreamInspector(StreamKind.RESPONSES)
    inspector.feed(b'event: response.output_text.delta\ndata: {"delta":"response.completed"}\n\n' + done)
    assert (inspector.input_tokens, inspector.output_tokens, inspector.finished) == (4, 9, True)
    failed = StreamInspector(StreamKind.RESPONSES)
    failed.feed(b'event: response.failed\ndata: {"type":"response.failed","response":{"error":'
                b'{"code":"rate_limit_exceeded","message":"slow down"}}}\n\n')
    assert error_status(failed.error) == 429


def test_openai_error_chunk_in_a_stream() -> None:
    inspector = StreamInspector(StreamKind.CHAT)
    inspector.feed(b'data: {"error": {"message": "boom", "type": "server_error", "code": null}}\n\n')
    assert inspector.error is not None and error_status(inspector.error) == 500
    content = StreamInspector(StreamKind.CHAT)
    content.feed(b'data: {"choices": [{"delta": {"content": "the word \\"error\\""}}]}\n\n')
    assert content.error is None


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"usage": {"prompt_tokens": 3, "completion_tokens": 4}}', (3, 4)),
    (b'{"content": "\\"usage\\": {}", "usage": {"input_tokens": 5, "output_tokens": 6}}', (5, 6)),
    (b'{"data": [0.1, 0.2], "usage" : {"prompt_tokens": 8, "total_tokens": 8}}', (8, 0)),
    (b'{"id": 1}', (0, 0)),
    (b'{"usage": ', (0, 0)),
])
def test_body_usage(body: bytes, expected: tuple[int, int]) -> None:
    assert body_usage(body) == expected


def test_error_shapes() -> None:
    assert error_body(ApiShape.OPENAI, 404, "no such model", "model_not_found") == {
        "error": {"message": "no such model", "type": "invalid_request_error", "param": None,
                  "code": "model_not_found"}}
    assert error_body(ApiShape.ANTHROPIC, 429, "later") == {
        "type": "error", "error": {"type": "rate_limit_error", "message": "later"}}
    assert error_body(ApiShape.ANTHROPIC, 502, "x")["error"] == {"type": "api_error", "message": "x"}
    assert error_body(ApiShape.OPENAI, 503, "x")["error"]["type"] == "server_error"  # type: ignore[index]
    anthropic_event = sse_error_event(ApiShape.ANTHROPIC, 502, "cut")
    assert anthropic_event.startswith(b"event: error\ndata: {") and anthropic_event.endswith(b"\n\n")
    openai_event = sse_error_event(ApiShape.OPENAI, 502, "cut")
    assert json.loads(openai_event.removeprefix(b"data: "))["error"]["message"] == "cut"


def test_parse_job_forwards_the_raw_body_unless_it_must_change() -> None:
    router = Router(CONFIG)
    raw = b'{"model": "gpt-4o", "messages": [], "user": "u1"}'
    job = parse_job(raw, CHAT, router)
    assert job.body is raw and (job.session_key, job.conversation) == ("u1", False) and not job.stream
    streamed = parse_job(b'{"model": "gpt-4.1", "stream": true, "stream_options": {"x": 1}}', CHAT, router,
                         {"x-session-id": "hdr"})
    assert json.loads(streamed.body) == {"model": "gpt-4o-mini", "stream": True,
                                         "stream_options": {"x": 1, "include_usage": True}}
    assert streamed.strip_usage and streamed.session_key == "hdr"
    asked = parse_job(b'{"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true}}',
                      CHAT, router)
    assert not asked.strip_usage and asked.body.startswith(b'{"model": "gpt-4o"')
    responses = parse_job(b'{"model": "gpt-4o", "stream": true, "prompt_cache_key": "p"}', RESPONSES, router)
    assert not responses.strip_usage and (responses.session_key, responses.conversation) == ("p", True)
    message = parse_job(b'{"model": "claude-x", "metadata": {"user_id": "m"}}', MESSAGES, router)
    assert (message.session_key, message.conversation) == ("m", True) and message.route.pool == "anthropic"


@pytest.mark.parametrize(("headers", "body", "expected"), [
    ({"X-Claude-Code-Session-Id": "cc-1"}, {"metadata": {"user_id": "u"}}, ("cc-1", True)),
    ({"session-id": "codex-1"}, {"prompt_cache_key": "codex-1"}, ("codex-1", True)),
    ({"x-session-id": "mine", "session-id": "codex-1"}, {}, ("mine", False)),
    ({}, {"prompt_cache_key": "k", "user": "u"}, ("k", True)),
    ({}, {"user": "u"}, ("u", False)),
    ({}, {}, ("", False)),
])
def test_the_session_key_and_whether_it_is_an_agent_conversation(
        headers: dict[str, str], body: dict[str, object], expected: tuple[str, bool]) -> None:
    assert session_key(body, CIMultiDict(headers)) == expected


@pytest.mark.parametrize(("raw", "status", "code"), [
    (b"  ", 400, "empty_body"),
    (b"{", 400, "invalid_json"),
    (b'"text"', 400, "invalid_body"),
    (b'{"model": 5}', 400, "missing_model"),
    (b'{"model": "llama"}', 404, "model_not_found"),
    (b'{"model": "gpt-4o", "messages": [], "container": "c"}', 400, "untranslatable"),
])
def test_parse_job_rejects(raw: bytes, status: int, code: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_job(raw, MESSAGES, Router(CONFIG))
    assert (caught.value.status, caught.value.code) == (status, code)


def test_scrub_removes_an_echoed_credential() -> None:
    body = b'{"error": {"message": "Incorrect API key provided: sk-proj-abcdefgh1234"}}'
    scrubbed = scrub_bytes(body, "Bearer sk-proj-abcdefgh1234")
    assert scrubbed == '{"error": {"message": "Incorrect API key provided: …1234"}}'.encode()


def test_auth() -> None:
    auth = Authenticator(EdgeSection(api_keys=["k-one", "k-two"]))
    assert auth.check({"Authorization": "Bearer k-two"}) and auth.check({"x-api-key": "k-one"})
    assert auth.check({"Authorization": "bearer k-one"})
    assert not auth.check({"Authorization": "Bearer k-three"}) and not auth.check({})
    assert not auth.check({"Authorization": "Basic k-one"}) and not auth.check({"x-api-key": "ké"})
    assert Authenticator(EdgeSection(auth=False)).check({})
    with pytest.raises(EdgeConfigError, match=r"edge\.auth: false"):
        Authenticator(EdgeSection())


def test_client_keys_name_their_clients_and_never_repeat() -> None:
    section = EdgeSection.model_validate({"api_keys": ["k-plain-123456"], "clients": [
        {"name": "alice", "key": "k-alice-123456", "rpm_limit": 5},
        {"name": "bob", "key_env": "BOB_KEY"},
        {"name": "carol", "key_sha256": hashlib.sha256(b"k-carol-123456").hexdigest().upper()}]})
    auth = Authenticator(section, {"BOB_KEY": "k-bob-1234567"})
    named = {key: auth.identify({"x-api-key": key}) for key in ("k-plain-123456", "k-alice-123456", "k-bob-1234567",
                                                                "k-carol-123456", "k-nobody")}
    assert {key: client.name if client else None for key, client in named.items()} == {
        "k-plain-123456": "…3456", "k-alice-123456": "alice", "k-bob-1234567": "bob", "k-carol-123456": "carol",
        "k-nobody": None}
    assert named["k-alice-123456"] is not None and named["k-alice-123456"].limits.rpm_limit == 5
    with pytest.raises(EdgeConfigError, match=r"edge\.clients\[1\] \(bob\): key_env BOB_KEY is not set"):
        Authenticator(section, {})
    with pytest.raises(EdgeConfigError, match=r"edge\.clients\[1\] \(bob\): the same key as edge\.api_keys\[0\]"):
        Authenticator(section, {"BOB_KEY": "k-plain-123456"})
    for bad, message in (({"name": "a b", "key": "k-1"}, "letters, digits"),
                         ({"name": "a", "key": "k-1", "key_env": "X"}, "exactly one of key, key_env"),
                         ({"name": "a", "key_sha256": "abc"}, "64 hex digits"),
                         ({"name": "a", "key": "k-1", "budget_timezone": "Mars/Base"}, "unknown time zone")):
        with pytest.raises(ValueError, match=message):
            EdgeSection.model_validate({"clients": [bad]})
    with pytest.raises(ValueError, match="name 'a' is taken"):
        EdgeSection.model_validate({"clients": [{"name": "a", "key": "k-1"}, {"name": "a", "key": "k-2"}]})


def test_site_urls_bracket_ipv6_hosts() -> None:
    """The edge and the fake upstream share one Site: an IPv6 host is bracketed in both."""
    from fake_upstream import FakeUpstream
    from proxy_edge.app import EdgeServer

    for site in (EdgeServer(None, "::1", 8080), FakeUpstream(None, "::1", 9090)):  # type: ignore[arg-type]
        assert site.url == f"http://[::1]:{site.port}"
    assert FakeUpstream(None, "127.0.0.1", 9090).url == "http://127.0.0.1:9090"  # type: ignore[arg-type]

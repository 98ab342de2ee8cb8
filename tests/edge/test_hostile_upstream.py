"""Upstream answers that must not stall or bloat the edge: events and bodies beyond ``edge.upstream_limits``,
2xx answers that are not what was asked for, error bodies of any size, and the per-request timeouts."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from pydantic import ValidationError

from poolgate.config.schema import EdgeTimeouts
from proxy_edge.streaming import StreamInspector, StreamKind
from tests.edge.conftest import AUTH, CHAT, Stack, StackFactory
from tests.faults.conftest import outcomes

BAD_THEN_GOOD = "- {name: bad, key: sk-%s-000001}\n- {name: good, key: sk-good-000002}"
ALONE = "- {name: bad, key: sk-%s-000001}"
FILL_FIRST = "strategy: fill_first"  # the bad account is always tried first
SMALL_LIMITS = "upstream_limits: {sse_event: 1MiB, response_body: 1MiB, error_body: 4KiB}"


async def post_raw(stack: Stack, path: str, body: dict[str, object]) -> tuple[int, bytes, str]:
    headers = AUTH if path != "/v1/messages" else {"x-api-key": AUTH["Authorization"][7:]}
    async with stack.http.post(f"{stack.url}{path}", json=body, headers=headers) as response:
        return response.status, await response.read(), response.headers.get("x-poolgate-account", "")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
async def test_an_event_over_the_limit_ends_the_stream_with_an_error_event(make_stack: StackFactory,
                                                                           path: str) -> None:
    stack = await make_stack(edge=SMALL_LIMITS, openai_accounts=ALONE % "hugeevent3",
                             anthropic_accounts=ALONE % "hugeevent3")
    model = "gpt-4o-mini" if path.endswith("completions") else "claude-x"
    status, body, account = await post_raw(stack, path, {"model": model, "max_tokens": 8, "messages": CHAT,
                                                         "stream": True})
    assert status == 200 and account.endswith("/bad")  # the first event had gone out: too late to fail over
    text = body.decode()
    assert len(body) < 64 * 1024 and '"huge"' not in text  # the 3 MiB event was not passed on
    events = [e for e in text.split("\n\n") if e.strip()]
    error = json.loads(events[-1].split("data: ", 1)[1])
    if path == "/v1/messages":
        assert events[-1].startswith("event: error\n") and error["error"]["type"] == "api_error"
        assert "message_stop" not in text
    else:
        assert error["error"]["code"] == "upstream_stream_error" and "[DONE]" not in text
    assert "larger than edge.upstream_limits.sse_event (1048576 bytes)" in error["error"]["message"]
    recorded = await outcomes(stack)
    assert list(recorded.values()) == [["server_error"]]


@pytest.mark.parametrize(("behaviour", "code"), [
    ("hugebody3", "upstream_response_too_large"),  # 3 MiB of valid JSON, no content-length, over 1 MiB
    ("notjson", "upstream_invalid_response"),  # 200 application/json that is an HTML page
])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_2xx_answer_that_cannot_be_passed_on_fails_over(
    make_stack: StackFactory, behaviour: str, code: str, stream: bool,
) -> None:
    if stream and behaviour.startswith("hugebody"):
        behaviour = "notjson"  # a stream request answered by a plain body that is not JSON
    stack = await make_stack(edge=SMALL_LIMITS, openai_accounts=BAD_THEN_GOOD % behaviour, pool_settings=FILL_FIRST)
    request = {"model": "gpt-4o-mini", "messages": CHAT, "stream": stream}
    status, body, account = await post_raw(stack, "/v1/chat/completions", request)
    assert status == 200 and account == "openai/good" and b"Hello!" in body
    recorded = await outcomes(stack)
    assert recorded == {"openai/bad": ["server_error"], "openai/good": ["success"]}
    code = code if behaviour.startswith("hugebody") else "upstream_invalid_response"

    alone = await make_stack(edge=SMALL_LIMITS, openai_accounts=ALONE % behaviour)
    status, body, _account = await post_raw(alone, "/v1/chat/completions", request)
    assert status == 502  # the edge's own error in the client's shape, not a 5xx of its own making
    error = json.loads(body)["error"]
    assert error["code"] == code and error["type"] == "server_error" and "retry" in error["message"]
    assert len(body) < 4096


async def test_a_stream_request_answered_with_json_gets_that_json(make_stack: StackFactory) -> None:
    """``stream: true`` answered without an event stream: passed on as the JSON answer it is, a success."""
    stack = await make_stack(openai_accounts=ALONE % "jsonstream")
    status, body, _account = await post_raw(stack, "/v1/chat/completions",
                                            {"model": "gpt-4o-mini", "messages": CHAT, "stream": True})
    assert status == 200
    assert json.loads(body)["object"] == "chat.completion"
    assert await outcomes(stack) == {"openai/bad": ["success"]}


@pytest.fixture
async def big_error_upstream() -> AsyncIterator[str]:
    """An upstream whose every answer is a 500 with a 1 MiB body."""
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=500, body=b'{"error": {"message": "' + b"e" * (1 << 20) + b'"}}',
                            content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/v1"
    await runner.cleanup()


async def test_an_error_body_is_read_only_up_to_its_limit(make_stack: StackFactory, big_error_upstream: str) -> None:
    pools = f"hostile:\n  base_url: {big_error_upstream}\n  accounts:\n  - {{name: a, key: sk-hostile-000001}}"
    stack = await make_stack(edge=SMALL_LIMITS, pools=pools, models="big-*: hostile",
                             pool_settings="failover: {max_attempts: 1}")
    status, body, _account = await post_raw(stack, "/v1/chat/completions", {"model": "big-one", "messages": CHAT})
    assert status == 500 and len(body) < 8 * 1024  # 4 KiB read, and the edge's own JSON error around it
    error = json.loads(body)["error"]
    assert error["code"] == "upstream_error" and "longer than 4096 bytes and was cut" in error["message"]


async def test_stream_timeouts_are_set_apart_from_first_byte(make_stack: StackFactory) -> None:
    stack = await make_stack(
        timeouts="first_byte: 5s, first_token: 300ms, stream_idle: 300ms",
        openai_accounts=BAD_THEN_GOOD % "silent", pool_settings=FILL_FIRST,
        anthropic_accounts="- {name: slow, key: sk-slow700-000003}")
    started = time.monotonic()
    status, body, account = await post_raw(stack, "/v1/chat/completions",
                                           {"model": "gpt-4o-mini", "messages": CHAT, "stream": True})
    assert status == 200 and account == "openai/good"
    assert 0.3 <= time.monotonic() - started < 2.5  # first_token, not first_byte, bounded the silent account
    # A non-stream request has first_byte: 700 ms before the answer is well within it.
    status, body, account = await post_raw(stack, "/v1/messages", {"model": "claude-x", "max_tokens": 8,
                                                                   "messages": CHAT})
    assert status == 200 and account == "anthropic/slow", body
    assert (await outcomes(stack))["openai/bad"] == ["timeout"]


async def test_a_stream_that_pauses_longer_than_stream_idle_ends_with_an_error_event(make_stack: StackFactory) -> None:
    """stream_idle 400 ms: events 150 ms apart pass whole; events 1 s apart end after the first with an error event,
    about 400 ms after it, and the attempt counts as a timeout of the account (not as the client's fault)."""
    stack = await make_stack(timeouts="first_token: 5s, stream_idle: 400ms", openai_accounts=ALONE % "drip1000",
                             anthropic_accounts=ALONE % "drip150")
    started = time.monotonic()
    status, body, _ = await post_raw(stack, "/v1/messages", {"model": "claude-x", "max_tokens": 8, "messages": CHAT,
                                                              "stream": True})
    assert status == 200 and b"event: message_stop" in body and b"event: error" not in body
    assert time.monotonic() - started > 0.6  # several 150 ms gaps, none of them cut
    started = time.monotonic()
    status, body, _ = await post_raw(stack, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT,
                                                                     "stream": True})
    elapsed = time.monotonic() - started
    events = [e for e in body.decode().split("\n\n") if e.strip()]
    error = json.loads(events[-1].split("data: ", 1)[1])["error"]
    assert status == 200 and len(events) == 2 and error["code"] == "upstream_stream_error", events
    assert "the stream stalled" in error["message"]
    assert 0.4 <= elapsed < 2.0, elapsed  # cut by stream_idle after the first event (the next was 1 s away)
    recorded = await outcomes(stack)
    assert sorted(recorded.values()) == [["success"], ["timeout"]]


def test_timeout_defaults_and_configs_that_set_first_byte_only() -> None:
    defaults = EdgeTimeouts()
    assert (defaults.first_byte, defaults.first_token, defaults.stream_idle) == (120.0, 60.0, 60.0)
    legacy = EdgeTimeouts.model_validate({"first_byte": "300s"})  # bounded streams too: it still does
    assert (legacy.first_token, legacy.stream_idle) == (300.0, 300.0)
    split = EdgeTimeouts.model_validate({"first_byte": "30s", "stream_idle": "2m"})
    assert (split.first_byte, split.first_token, split.stream_idle) == (30.0, 30.0, 120.0)
    for name in ("first_token", "stream_idle"):  # 0 would end every stream at once (and spin the idle timer)
        with pytest.raises(ValidationError, match=f"{name}\n  Input should be greater than 0"):
            EdgeTimeouts.model_validate({name: 0})


def test_stream_inspection_splits_events_across_any_chunking() -> None:
    events = [b'data: {"a": 1}\n\n', b"event: x\r\ndata: {}\r\n\r\n", b'data: {"b": "' + b"z" * 300 + b'"}\n\n',
              b"data: [DONE]\n\n"]
    stream = b"".join(events)
    for size in (1, 2, 3, 5, 64, len(stream)):
        inspector = StreamInspector(StreamKind.CHAT, max_event=1024)
        out = [inspector.feed(stream[i:i + size]) for i in range(0, len(stream), size)]
        assert b"".join(out) + inspector.flush() == stream
        assert inspector.finished and not inspector.too_large


def test_stream_inspection_holds_no_more_than_one_event_limit() -> None:
    inspector = StreamInspector(StreamKind.CHAT, max_event=4096)
    assert inspector.feed(b'data: {"a": 1}\n\ndata: {"huge": "') == b'data: {"a": 1}\n\n'
    chunk = b"x" * 1000
    fed = [inspector.feed(chunk) for _ in range(100)]
    assert inspector.too_large and not any(fed)
    assert inspector.feed(b'"}\n\ndata: [DONE]\n\n') == b"" and inspector.flush() == b""  # nothing more
    # An oversized event that arrives whole in one chunk is refused as well.
    whole = StreamInspector(StreamKind.ANTHROPIC, max_event=4096)
    assert whole.feed(b"event: message_start\ndata: {}\n\nevent: ping\ndata: " + b"p" * 5000 + b"\n\n") == (
        b"event: message_start\ndata: {}\n\n")
    assert whole.too_large


def test_an_error_event_goes_on_scrubbed() -> None:
    event = b'data: {"error": {"message": "bad key sk-proj-Zq8Xv2LmN4pR7", "type": "x"}}\n\n'
    inspector = StreamInspector(StreamKind.CHAT, scrub=lambda data: data.replace(b"Zq8Xv2LmN4pR7", b"\xe2\x80\xa6"))
    assert inspector.feed(b'data: {"a": 1}\n\n' + event) == (
        b'data: {"a": 1}\n\n' + event.replace(b"Zq8Xv2LmN4pR7", "…".encode()))
    assert inspector.error is not None

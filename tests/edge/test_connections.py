"""The edge's connections: clients that stall (headers, body, idle keep-alive), the listen backlog, an unreachable
selector (a quick 503 with Retry-After, served again as soon as it is back), and the selector channel's keepalive."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import grpc
import pytest

from fake_upstream import FakeUpstream
from poolgate import http_site, selector_channel
from proxy_edge.handlers import SELECTOR
from selector_service.app import start_selector
from tests.edge.conftest import AUTH, CHAT, EDGE_KEY, StackFactory, open_stack
from tests.support import free_port

SHORT_CLIENT_TIMEOUTS = "client_timeouts: {header: 300ms, body: 300ms, idle: 600ms}"


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


async def seconds_until_closed(reader: asyncio.StreamReader, within: float = 10.0) -> tuple[float, bytes]:
    """How long until the edge closes the connection, and what it sent before."""
    started = time.monotonic()
    received = await asyncio.wait_for(reader.read(), within)
    return time.monotonic() - started, received


async def test_a_request_whose_headers_stall_loses_its_connection(make_stack: StackFactory) -> None:
    stack = await make_stack(edge=SHORT_CLIENT_TIMEOUTS)
    reader, writer = await connect(stack.url)
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\n")  # half a request, then nothing
        await writer.drain()
        elapsed, received = await seconds_until_closed(reader)
    finally:
        writer.close()
    assert received == b""
    assert 0.25 <= elapsed < 3.0


async def test_headers_trickling_in_do_not_extend_the_deadline(make_stack: StackFactory) -> None:
    stack = await make_stack(edge=SHORT_CLIENT_TIMEOUTS)
    reader, writer = await connect(stack.url)
    started = time.monotonic()
    closed = asyncio.ensure_future(reader.read())
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\nX-Slow: ")
        for _ in range(40):  # a header value a byte every 50 ms, as slowloris sends
            if closed.done():
                break
            writer.write(b"x")
            await writer.drain()
            await asyncio.wait((closed,), timeout=0.05)
        received = await asyncio.wait_for(closed, 5)
    finally:
        writer.close()
    assert received == b""
    assert time.monotonic() - started < 1.5


async def test_an_idle_connection_is_closed_and_a_slow_answer_is_not(make_stack: StackFactory) -> None:
    """The header deadline covers the client's headers only: an answer that takes longer still arrives, and the
    keep-alive connection then closes after ``idle``."""
    stack = await make_stack(edge=SHORT_CLIENT_TIMEOUTS, openai_accounts="- {name: slow, key: sk-slow700-000001}")
    reader, writer = await connect(stack.url)
    try:
        body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer " + EDGE_KEY.encode()
                     + b"\r\nContent-Type: application/json\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\n\r\n" + body)
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        assert status_line.startswith(b"HTTP/1.1 200"), status_line
        elapsed, _rest = await seconds_until_closed(reader)
    finally:
        writer.close()
    assert 0.3 <= elapsed < 3.0


async def test_a_body_that_stalls_gets_a_408_in_the_api_shape(make_stack: StackFactory) -> None:
    stack = await make_stack(edge=SHORT_CLIENT_TIMEOUTS)
    reader, writer = await connect(stack.url)
    started = time.monotonic()
    try:
        writer.write(b"POST /v1/messages HTTP/1.1\r\nHost: edge\r\nx-api-key: " + EDGE_KEY.encode()
                     + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\": ")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 20)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"type": "error"' in answer and b"edge.client_timeouts.body" in answer
    assert time.monotonic() - started < 15  # the 408 itself came after the body deadline (aiohttp lingers after)


@pytest.mark.parametrize("wanted, system, expected", [(1024, 4096, 1024), (8192, 4096, 4096), (64, 4096, 64)])
def test_the_backlog_is_capped_by_somaxconn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, wanted: int, system: int, expected: int
) -> None:
    somaxconn = tmp_path / "somaxconn"
    somaxconn.write_text(f"{system}\n")
    monkeypatch.setattr(http_site, "SOMAXCONN_FILE", somaxconn)
    assert http_site.listen_backlog(wanted) == expected


async def test_the_edge_listens_with_its_configured_backlog(make_stack: StackFactory) -> None:
    stack = await make_stack(edge="listen_backlog: 777")
    ss = await asyncio.create_subprocess_exec("ss", "-Hltn", f"sport = :{stack.edge.port}",
                                              stdout=asyncio.subprocess.PIPE)
    listing = (await ss.communicate())[0].decode().split()
    assert listing[2] == "777", listing  # a listening socket's Send-Q is its backlog


async def test_an_unreachable_selector_answers_503_quickly_and_serves_as_soon_as_it_is_back(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    address = f"127.0.0.1:{free_port()}"
    stack = await make_stack(selector=False, selector_address=address,
                             timeouts="selector: 5s, selector_unavailable: 500ms")
    client = stack.openai()
    for _ in range(2):  # the first request, and one on a channel already failing
        started = time.monotonic()
        status, body, headers = await stack.post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT})
        assert time.monotonic() - started < 2.0
        assert status == 503 and body["error"]["code"] == "selector_unavailable", body
        assert headers["Retry-After"] == "1"
    selector = await start_selector(stack.config, listen=address, database=str(tmp_path / "state.db"))
    try:
        completion = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
        assert completion.choices[0].message.content
    finally:
        await stack.edge.runner.app[SELECTOR].flush_reports()
        await selector.stop(grace=0)


async def test_an_idle_channel_keeps_its_stream_without_goaway(
    fake_upstream: FakeUpstream, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The edge pings every KEEPALIVE_TIME_MS while its Exchange stream is open; the selector accepts that. (gRPC's
    default policy answers the third ping within five minutes with GOAWAY ``too_many_pings``: here after about three
    seconds, which broke the stream and logged errors.)"""
    monkeypatch.setattr(selector_channel, "KEEPALIVE_TIME_MS", 300)
    stack = await open_stack(fake_upstream, tmp_path, "stream")
    try:
        caplog.set_level(logging.WARNING)
        client = stack.openai()
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
        selector = stack.edge.runner.app[SELECTOR]
        [replica] = selector._replicas.replicas
        channel, exchange = replica.channel, replica.link.exchange  # type: ignore[attr-defined]
        stream, state = exchange._stream, channel.get_state()
        try:  # about fifteen ping intervals idle
            await asyncio.wait_for(channel.wait_for_state_change(state), 4.5)
        except TimeoutError:
            pass
        assert channel.get_state() is state and state is grpc.ChannelConnectivity.READY
        assert exchange._stream is stream and stream is not None and not stream.done()
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
        problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert not problems, [r.getMessage() for r in problems]
    finally:
        await stack.close()


async def test_the_stack_fixture_still_answers(make_stack: StackFactory) -> None:
    stack = await make_stack(edge=SHORT_CLIENT_TIMEOUTS)
    status, body, _ = await stack.post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT}, AUTH)
    assert status == 200, body

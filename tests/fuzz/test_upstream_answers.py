"""A fuzzing upstream: random statuses, bodies, content types and encodings, truncated and stalled answers, written
as raw bytes on the socket. Whatever the upstream does, the edge answers every request in time, never with a 500 of
its own, and logs no traceback.

The upstream answers each connection with the next scripted :class:`Answer` (one per attempt of the request, up to
the pool's three), then with a plain good answer. Timeouts are short, so stalls end quickly.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy_edge.app import EdgeServer, start_edge
from selector_service.app import SelectorHandle, start_selector
from tests.edge.conftest import EDGE_KEY, stack_config
from tests.fuzz.conftest import FUZZ, LoopThread

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from edge_bench import rss_mb  # the benchmarks' reading of /proc

T = TypeVar("T")

STALL = 1.0
"""Seconds a stalled answer waits: longer than every edge timeout of this module's config."""
TIMEOUTS = "first_byte: 300ms, first_token: 300ms, stream_idle: 300ms, total: 3s"
GOOD_CHAT = json.dumps({"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}).encode()


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    encoding: str  # "", "gzip", "badgzip"
    framing: str  # "length", "short" (announces more than it sends), "chunked", "close"
    stall: str  # "", "before" (no status line), "after" (headers, then nothing)

    def raw(self) -> tuple[bytes, bytes]:
        """The status line and headers, and the body as written."""
        body = self.body
        if self.encoding == "gzip":
            body = gzip.compress(body)
        elif self.encoding == "badgzip":
            body = b"\x1f\x8b" + body
        lines = [f"HTTP/1.1 {self.status} Fuzz", "Server: fuzz"]
        if self.content_type:
            lines.append(f"Content-Type: {self.content_type}")
        if self.encoding:
            lines.append("Content-Encoding: gzip")
        if self.framing == "length":
            lines.append(f"Content-Length: {len(body)}")
        elif self.framing == "short":
            lines.append(f"Content-Length: {len(body) + 100}")
        elif self.framing == "chunked":
            lines.append("Transfer-Encoding: chunked")
            body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in _parts(body) if part) + b"0\r\n\r\n"
        lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode(), body


def _parts(data: bytes, size: int = 7) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


sse_events = st.lists(st.one_of(
    st.just(b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'),
    st.just(b"data: [DONE]\n\n"),
    st.just(b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n'),
    st.just(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
    st.binary(max_size=60),
), max_size=5).map(b"".join)
bodies = st.one_of(
    st.just(GOOD_CHAT),
    st.just(b'{"error": {"message": "nope", "type": "invalid_request_error", "code": "x"}}'),
    st.just(b'{"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}'),
    sse_events,
    st.binary(max_size=200),
    st.just(b""),
)
answers = st.builds(
    Answer,
    status=st.sampled_from([200, 200, 201, 204, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 529, 599]),
    content_type=st.sampled_from(["application/json", "text/event-stream", "text/plain", "", "application/x-junk"]),
    body=bodies,
    encoding=st.sampled_from(["", "", "gzip", "badgzip"]),
    framing=st.sampled_from(["length", "length", "short", "chunked", "close"]),
    stall=st.sampled_from(["", "", "", "before", "after"]),
)


class FuzzUpstream:
    """Answers each connection with the next scripted answer (a good one when none is left)."""

    def __init__(self) -> None:
        self.script: deque[Answer] = deque()
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self._serving: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in self._serving:
            task.cancel()
        await asyncio.gather(*self._serving, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            answer = self.script.popleft() if self.script else Answer(
                200, "application/json", GOOD_CHAT, "", "length", "")
            if answer.stall == "before":
                await asyncio.sleep(STALL)
                return
            head_bytes, body = answer.raw()
            writer.write(head_bytes)
            if answer.stall == "after":
                await writer.drain()
                await asyncio.sleep(STALL)
                return
            for part in _parts(body, 4096):
                writer.write(part)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            self._serving.discard(task)


@dataclass
class Stack:
    loop: LoopThread
    upstream: FuzzUpstream
    selector: SelectorHandle
    edge: EdgeServer

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coroutine)


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    database = tmp_path_factory.mktemp("fuzz-upstream") / "state.db"
    loop = LoopThread("fuzz-upstream")
    run = loop.run
    upstream = FuzzUpstream()
    run(upstream.start())
    url = f"http://127.0.0.1:{upstream.port}"
    # Quick to rest and quick back: the script, not the health rules, decides what each attempt meets.
    config = stack_config(url, openai_accounts="- {name: one, key: sk-fuzz-up-0001}\n"
                                               "- {name: two, key: sk-fuzz-up-0002}",
                          anthropic_accounts="- {name: one, key: sk-fuzz-up-0003}", timeouts=TIMEOUTS,
                          extra="defaults:\n  probe_timeout: 10ms\n  cooldown: {base: 10ms, max: 10ms, "
                                "max_retry_after: 10ms, jitter: 0}\n  circuit: {failures: 1000}")
    selector = run(start_selector(config, listen="127.0.0.1:0", database=str(database)))
    config.edge.selector = selector.address
    edge = run(start_edge(config, "127.0.0.1:0"))
    yield Stack(loop, upstream, selector, edge)
    run(edge.stop())
    run(selector.stop(grace=0))
    run(upstream.stop())
    loop.close()


async def _enable_all(selector: SelectorHandle) -> None:
    """Every account back in service (a scripted 401 disables one)."""
    for pool in selector.core.pools.values():
        for account in pool.accounts.values():
            if account.disabled:
                await selector.core.enable(pool.name, account.name)


def _request(edge_url: str, anthropic: bool, stream: bool) -> tuple[int, bytes]:
    if anthropic:
        path, body = "/v1/messages", {"model": "claude-x", "max_tokens": 16, "stream": stream,
                                      "messages": [{"role": "user", "content": "hi"}]}
    else:
        path, body = "/v1/chat/completions", {"model": "gpt-4o-mini", "stream": stream,
                                              "messages": [{"role": "user", "content": "hi"}]}
    request = urllib.request.Request(f"{edge_url}{path}", data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {EDGE_KEY}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (ConnectionError, urllib.error.URLError) as error:  # a stream cut short after it started
        return 0, str(error).encode()


def test_random_upstream_answers(fuzz_stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    @FUZZ
    @given(script=st.lists(answers, min_size=1, max_size=3), anthropic=st.booleans(), stream=st.booleans())
    def check(script: list[Answer], anthropic: bool, stream: bool) -> None:
        fuzz_stack.run(_enable_all(fuzz_stack.selector))
        fuzz_stack.upstream.script = deque(script)
        caplog.clear()
        started = time.monotonic()
        status, body = _request(fuzz_stack.edge.url, anthropic, stream)
        assert time.monotonic() - started < 12, "the edge held the request past its timeouts"
        assert status != 500 or b"internal_error" not in body, body[:300]
        problems = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
        assert not problems, [r.getMessage() for r in problems]
        if status >= 500 and status not in {answer.status for answer in script}:
            error = json.loads(body)  # the edge's own answer (an upstream's error body is passed on as it is)
            if anthropic:
                assert error.get("type") == "error" and "message" in error["error"], error
            else:
                assert "message" in error.get("error", {}), error

    before = rss_mb(os.getpid())
    check()
    grown = rss_mb(os.getpid()) - before
    assert grown < 100, f"the process grew by {grown:.0f} MB over the examples"  # nothing held per example

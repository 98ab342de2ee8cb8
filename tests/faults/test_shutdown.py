"""SIGTERM to a real ``poolgate edge`` process with requests in flight: it stops accepting, lets them finish within
``edge.shutdown_timeout``, ends the rest in their API's shape (a 503, or an error event on a started stream), reports
them to the selector as cancelled, and exits within the budget and a small margin."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import aiohttp

from fake_upstream import FakeUpstream
from poolgate.config import parse_config
from selector_service.app import start_selector
from tests.edge.conftest import CHAT, EDGE_KEY
from tests.faults.conftest import kill_process, log_text, poolgate_process, wait_listening
from tests.support import eventually, free_port

BUDGET = 1.5
MARGIN = 3.0
"""What the edge may take beyond its budget: ending the rest (no upstream involved), the last reports, exiting."""

CONFIG = """
edge:
  listen: 127.0.0.1:{edge_port}
  selector: {selector}
  api_keys: [{key}]
  shutdown_timeout: {budget}s
  timeouts: {{connect: 2s, first_byte: 30s, total: 60s, selector: 2s}}
selector:
  listen: 127.0.0.1:0
pools:
  stalled:
    base_url: {fake}/v1
    accounts: [{{name: stall, key: sk-stall-000001}}]
  quick:
    base_url: {fake}/v1
    accounts: [{{name: slow, key: sk-slow600-000001}}]
  dripping:
    format: anthropic
    base_url: {fake}
    accounts: [{{name: drip, key: sk-drip30000-000001}}]
models:
  gpt-stall: stalled
  gpt-quick: quick
  claude-*: dripping
"""


async def test_sigterm_ends_stalled_requests_in_their_shape_within_the_budget(
    tmp_path: Path, fake_upstream: FakeUpstream
) -> None:
    edge_port = free_port()
    text = CONFIG.format(edge_port=edge_port, selector="{selector}", key=EDGE_KEY, budget=BUDGET,
                         fake=fake_upstream.url)
    selector = await start_selector(parse_config(text.replace("{selector}", "127.0.0.1:1")), listen="127.0.0.1:0",
                                    database=str(tmp_path / "state.db"))
    config = tmp_path / "poolgate.yaml"
    config.write_text(text.replace("{selector}", selector.address))
    log = tmp_path / "edge.log"
    process = poolgate_process("edge", "--config", str(config), log=log)
    url = f"http://127.0.0.1:{edge_port}"
    openai_headers = {"Authorization": f"Bearer {EDGE_KEY}"}
    first_event = asyncio.Event()
    try:
        await wait_listening(edge_port, process, log)
        async with aiohttp.ClientSession() as http:

            async def openai_call(model: str) -> tuple[int, dict[str, str], bytes]:
                async with http.post(f"{url}/v1/chat/completions", headers=openai_headers,
                                     json={"model": model, "messages": CHAT}) as response:
                    return response.status, dict(response.headers), await response.read()

            async def anthropic_stream() -> tuple[int, bytes]:
                async with http.post(f"{url}/v1/messages", headers={"x-api-key": EDGE_KEY},
                                     json={"model": "claude-haiku-4-5", "max_tokens": 50, "messages": CHAT,
                                           "stream": True}) as response:
                    received = b""
                    async for chunk in response.content.iter_any():
                        received += chunk
                        first_event.set()
                    return response.status, received

            stalled = asyncio.ensure_future(openai_call("gpt-stall"))
            stream = asyncio.ensure_future(anthropic_stream())
            await asyncio.wait_for(first_event.wait(), 10)
            await eventually(lambda: fake_upstream.stats.requests["sk-stall-000001"] == 1, what="the stalled call")
            quick = asyncio.ensure_future(openai_call("gpt-quick"))
            await eventually(lambda: fake_upstream.stats.requests["sk-slow600-000001"] == 1, what="the quick call")

            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()

            async def refused() -> bool:
                try:
                    _reader, writer = await asyncio.open_connection("127.0.0.1", edge_port)
                except (ConnectionRefusedError, ConnectionResetError):  # reset: racing the socket's close
                    return True
                writer.close()
                return False

            while not await refused():  # the listening socket closes at once
                assert time.monotonic() - signalled < 1.0, "the edge still accepts connections after SIGTERM"
                await asyncio.sleep(0.02)
            assert process.poll() is None  # ... while the requests in flight are still being served

            quick_status, _, quick_body = await quick
            stalled_status, stalled_headers, stalled_body = await stalled
            stream_status, stream_body = await stream
            ended = time.monotonic() - signalled
            await asyncio.to_thread(process.wait, BUDGET + MARGIN + 5)
            exited = time.monotonic() - signalled
        if selector.core.usage is not None:
            await selector.core.usage.flush()
        records = await selector.repository.usage_between(0, time.time() + 1)
    finally:
        kill_process(process)
        output = log_text(log)
        await selector.stop(grace=0)
    assert process.returncode == 0, output
    assert exited < BUDGET + MARGIN, output
    assert BUDGET - 0.2 <= ended, output  # the stalled requests had their budget
    assert quick_status == 200 and b"Hello!" in quick_body  # finished within the budget: served
    assert stalled_status == 503, stalled_body
    error = json.loads(stalled_body)["error"]
    assert error["code"] == "edge_shutting_down" and error["type"] == "server_error", error
    assert stalled_headers["Retry-After"] == "1"
    assert stream_status == 200
    assert b"event: message_start" in stream_body  # the stream had started ...
    assert stream_body.rstrip().endswith(b"}") and b"event: error" in stream_body  # ... and ends with an error event
    assert b'"type": "overloaded_error"' in stream_body and b"shutting down" in stream_body
    assert "Traceback" not in output
    recorded = {record.account_id: record.outcome for record in records}
    assert recorded == {"stalled/stall": "cancelled", "dripping/drip": "cancelled", "quick/slow": "success"}, recorded

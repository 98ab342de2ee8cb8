"""OpenTelemetry traces from the edge, as a user runs it: `poolgate up` with the demo config as real processes, an OTLP
endpoint in the environment, and a real OTLP/HTTP receiver on loopback. Between the edge and the fake upstream a tap
notes the trace headers each upstream call carried."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import openai
import pytest
from aiohttp import web
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from poolgate.http_site import start_site
from proxy_edge import otel, tracing
from tests.edge.otlp_receiver import OtlpReceiver, ReceivedSpan, start_receiver
from tests.support import demo_config, wait_ready

pytestmark = pytest.mark.timeout(120)

DEMO_SECRETS = ("sk-demo-ratelimited-personal", "sk-demo-work-0001", "sk-demo-team-0002",
                "sk-ant-demo-ratelimited-personal", "sk-ant-demo-work-0001", "sk-ant-demo-team-0002", "poolgate-demo")
"""The demo config's account keys and the edge's client key: none may reach the spans."""
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-0[0-3]")
OTEL_VARIABLES = [name for name in os.environ if name.startswith("OTEL_")]


@dataclass
class Tap:
    """A pass-through to the fake upstream that keeps the ``traceparent`` and ``tracestate`` of each call."""

    fake: str
    session: aiohttp.ClientSession
    calls: list[tuple[str | None, str | None]] = field(default_factory=list)

    async def forward(self, request: web.Request) -> web.StreamResponse:
        self.calls.append((request.headers.get("traceparent"), request.headers.get("tracestate")))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self.session.post(self.fake + request.path_qs, data=await request.read(),
                                     headers=headers) as upstream:
            response = web.StreamResponse(status=upstream.status, headers={
                k: v for k, v in upstream.headers.items() if k.lower() in ("content-type", "retry-after")})
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response


@pytest.fixture
async def tap_and_receiver(tmp_path: Path) -> AsyncIterator[tuple[Path, int, Tap, OtlpReceiver]]:
    """The demo config with its pools behind a tap, the edge's port, the tap and a receiver."""
    config, (edge, _selector, fake) = demo_config(tmp_path)
    receiver, receiver_runner = await start_receiver()
    async with aiohttp.ClientSession() as session:
        tap = Tap(f"http://127.0.0.1:{fake}", session)
        app = web.Application()
        app.router.add_post("/{path:.*}", tap.forward)
        tap_runner, tap_port = await start_site(app, "127.0.0.1", 0)
        text = config.read_text()
        assert text.count(f"base_url: http://127.0.0.1:{fake}") == 2
        config.write_text(text.replace(f"base_url: http://127.0.0.1:{fake}", f"base_url: http://127.0.0.1:{tap_port}"))
        try:
            yield config, edge, tap, receiver
        finally:
            await tap_runner.cleanup()
            await receiver_runner.cleanup()


def start_up(config: Path, log: Path, **environment: str) -> subprocess.Popen[bytes]:
    """`poolgate up` (fake upstream, selector, edge) with ``environment`` instead of any OTEL_* variable of the run;
    every Python import of every process is written to ``log`` (``PYTHONPROFILEIMPORTTIME``)."""
    env = {k: v for k, v in os.environ.items() if k not in OTEL_VARIABLES}
    env.update(environment, PYTHONPROFILEIMPORTTIME="1", PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "poolgate_cli", "up", "--config", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=config.parent, env=env)


async def stop(process: subprocess.Popen[bytes], log: Path) -> str:
    """SIGTERM, and the log once every process has stopped (the loop keeps serving the receiver meanwhile)."""
    process.terminate()
    try:
        await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text(errors="replace")
    assert process.returncode == 0, output[-5000:]
    return output


def imported_otel(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("import time:") and "opentelemetry" in line]


def spans_of(receiver: OtlpReceiver, request_id: str) -> tuple[ReceivedSpan, list[ReceivedSpan]]:
    """The request span with ``request_id`` and its attempt spans, in order."""
    [request] = [s for s in receiver.spans if s.attributes.get("poolgate.request_id") == request_id]
    attempts = [s for s in receiver.spans if s.parent_span_id == request.span_id]
    return request, sorted(attempts, key=lambda s: int(s.attributes["poolgate.attempt"]))  # type: ignore[call-overload]


def upstream_parent(tap: Tap, attempt: ReceivedSpan) -> tuple[str, str | None]:
    """The ``traceparent`` (checked to name ``attempt``) and ``tracestate`` the attempt's upstream call carried."""
    found = [(parent, state) for parent, state in tap.calls if parent is not None
             and (match := TRACEPARENT.fullmatch(parent)) and match.group(2) == attempt.span_id]
    assert len(found) == 1, (attempt.span_id, tap.calls)
    assert found[0][0].split("-")[1] == attempt.trace_id
    return found[0]


async def test_requests_and_attempts_become_spans(tap_and_receiver: tuple[Path, int, Tap, OtlpReceiver]) -> None:
    config, edge, tap, receiver = tap_and_receiver
    log = config.parent / "up.log"
    process = start_up(config, log, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_BSP_SCHEDULE_DELAY="50",
                       OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=test")
    url = f"http://127.0.0.1:{edge}"
    try:
        await asyncio.to_thread(wait_ready, url, process)
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="poolgate-demo", max_retries=0) as client:
            messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
            # The demo's first account answers 429: the request fails over to a second one.
            failover = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages)
            completion = failover.parse()
            stream = await client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True})
            chunks = [chunk async for chunk in stream.parse()]
            continued = await client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=messages, extra_headers={
                    "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01", "tracestate": "vendor=abc,other=1"})
            malformed = await client.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=messages, extra_headers={"traceparent": f"00-{CLIENT_TRACE}-zz-01"})
        await receiver.wait_for(8)  # four requests, five attempts
    finally:
        output = await stop(process, log)

    assert imported_otel(output)  # what the test with tracing off looks for is found when it is on
    assert "traces: spans of the requests go to" in output
    assert all(s.resource["service.name"] == "poolgate-edge" for s in receiver.spans)
    assert all(s.resource["deployment.environment.name"] == "test" for s in receiver.spans)
    for body in receiver.bodies:
        for secret in DEMO_SECRETS:
            assert secret.encode() not in body and secret[-10:].encode() not in body, secret

    # The failover: one SERVER span, two CLIENT spans under it in one trace, one after the other.
    request, attempts = spans_of(receiver, failover.headers["x-request-id"])
    assert request.span.kind == Span.SPAN_KIND_SERVER and request.span.name == "POST /v1/chat/completions"
    assert request.parent_span_id == ""  # no traceparent from the client: a new trace
    assert request.attributes | {"poolgate.request_id": "-"} == {
        "http.request.method": "POST", "url.path": "/v1/chat/completions", "http.route": "/v1/chat/completions",
        "http.response.status_code": 200, "poolgate.request_id": "-", "poolgate.pool": "openai",
        "poolgate.account": failover.headers["x-poolgate-account"], "poolgate.attempts": 2,
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.usage.input_tokens": completion.usage.prompt_tokens,  # type: ignore[union-attr]
        "gen_ai.usage.output_tokens": completion.usage.completion_tokens}  # type: ignore[union-attr]
    assert [a.span.kind for a in attempts] == [Span.SPAN_KIND_CLIENT] * 2
    assert {a.trace_id for a in attempts} == {request.trace_id}
    first, second = attempts
    assert first.span.name == second.span.name == "chat gpt-4o-mini"
    assert first.attributes == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini",
        "poolgate.pool": "openai", "poolgate.account": "openai/personal", "poolgate.attempt": 1,
        "poolgate.outcome": "rate_limited", "error.type": "rate_limited", "http.response.status_code": 429,
        "server.address": "127.0.0.1", "server.port": first.attributes["server.port"]}
    assert first.span.status.code == Status.STATUS_CODE_ERROR
    assert second.attributes["poolgate.account"] == failover.headers["x-poolgate-account"] != "openai/personal"
    assert second.attributes["poolgate.outcome"] == "success" and "error.type" not in second.attributes
    assert second.attributes["http.response.status_code"] == 200
    assert second.attributes["gen_ai.usage.output_tokens"] == completion.usage.completion_tokens  # type: ignore[union-attr]
    assert second.span.status.code == Status.STATUS_CODE_UNSET
    assert (request.span.start_time_unix_nano <= first.span.start_time_unix_nano < first.span.end_time_unix_nano
            <= second.span.start_time_unix_nano < second.span.end_time_unix_nano <= request.span.end_time_unix_nano)
    # Each upstream call carried its own attempt span as the parent, and no tracestate (the client sent none).
    assert upstream_parent(tap, first)[1] is None and upstream_parent(tap, second)[1] is None

    # The stream: its span ends with the stream, and knows the time to the first token and the usage.
    request, [attempt] = spans_of(receiver, stream.headers["x-request-id"])
    usage = chunks[-1].usage
    assert usage is not None
    assert request.attributes["poolgate.attempts"] == 1 and request.attributes["poolgate.time_to_first_token_ms"] > 0
    assert request.attributes["gen_ai.usage.output_tokens"] == attempt.attributes["gen_ai.usage.output_tokens"] \
        == usage.completion_tokens
    assert request.span.end_time_unix_nano >= attempt.span.end_time_unix_nano > attempt.span.start_time_unix_nano

    # A client's traceparent: the request span continues its trace; the upstream gets the attempt's, and the
    # client's tracestate.
    request, [attempt] = spans_of(receiver, continued.headers["x-request-id"])
    assert (request.trace_id, request.parent_span_id) == (CLIENT_TRACE, CLIENT_SPAN)
    assert attempt.trace_id == CLIENT_TRACE and attempt.parent_span_id == request.span_id
    assert upstream_parent(tap, attempt)[1] == "vendor=abc,other=1"

    # A malformed one is ignored: a new trace, and the upstream gets a valid traceparent of it.
    request, [attempt] = spans_of(receiver, malformed.headers["x-request-id"])
    assert request.parent_span_id == "" and request.trace_id != CLIENT_TRACE
    upstream_parent(tap, attempt)
    assert all(parent is not None and TRACEPARENT.fullmatch(parent) for parent, _ in tap.calls)


async def test_without_an_endpoint_the_edge_imports_no_opentelemetry(
        tap_and_receiver: tuple[Path, int, Tap, OtlpReceiver]) -> None:
    config, edge, tap, receiver = tap_and_receiver
    log = config.parent / "up.log"
    process = start_up(config, log)
    url = f"http://127.0.0.1:{edge}"
    client_parent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
    try:
        await asyncio.to_thread(wait_ready, url, process)
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="poolgate-demo", max_retries=0) as client:
            await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}],
                                                 extra_headers={"traceparent": client_parent})
    finally:
        output = await stop(process, log)
    assert "import time:" in output and imported_otel(output) == []
    assert "traces:" not in output and "poolgate[otel]" not in output
    # Tracing off: the client's traceparent goes upstream untouched, on every attempt.
    assert tap.calls and all(call == (client_parent, None) for call in tap.calls)
    assert receiver.bodies == []


async def test_spans_still_pending_are_sent_when_the_edge_stops(
        tap_and_receiver: tuple[Path, int, Tap, OtlpReceiver]) -> None:
    config, edge, _tap, receiver = tap_and_receiver
    log = config.parent / "up.log"
    # A batch delay of ten minutes: only the edge's shutdown sends the spans.
    process = start_up(config, log, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver.url}/v1/traces",
                       OTEL_BSP_SCHEDULE_DELAY="600000", OTEL_SERVICE_NAME="edge-7")
    url = f"http://127.0.0.1:{edge}"
    try:
        await asyncio.to_thread(wait_ready, url, process)
        async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="poolgate-demo", max_retries=0) as client:
            answer = await client.embeddings.with_raw_response.create(model="text-embedding-3-small", input="hi")
        await asyncio.sleep(0.5)
        assert receiver.spans == []
    finally:
        await stop(process, log)
    request, attempts = spans_of(receiver, answer.headers["x-request-id"])
    assert request.resource["service.name"] == "edge-7"
    assert request.attributes["gen_ai.operation.name"] == "embeddings" and attempts


@pytest.mark.parametrize("environment", [{}, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                                              "OTEL_SDK_DISABLED": "True"}], ids=["no endpoint", "sdk disabled"])
def test_tracing_stays_off(environment: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    app = web.Application()
    cleanups = len(app.on_cleanup)
    otel.install(app, environment)
    assert tracing.SPANS is None and len(app.on_cleanup) == cleanups and caplog.records == []


def test_without_the_extra_one_warning_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delitem(sys.modules, "proxy_edge.otel.export", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    app = web.Application()
    otel.install(app, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"})
    assert tracing.SPANS is None
    [record] = caplog.records
    assert record.levelname == "WARNING" and "pip install 'poolgate[otel]'" in record.getMessage()
    assert "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set" in record.getMessage()

"""Seeing the edge at work: the usage endpoint, Prometheus metrics, request ids and JSON log lines."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from multidict import CIMultiDict
from prometheus_client import generate_latest
from yarl import URL

from poolgate.logging_setup import REQUEST_ID, JsonFormatter, TextFormatter, configure_logging, make_handler
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc as pb_grpc
from poolgate_cli.main import build_parser
from proxy_edge.app import create_app
from proxy_edge.handlers import SELECTOR
from proxy_edge.metrics import METRICS, EdgeMetrics
from proxy_edge.tracing import request_id_for
from proxy_edge.usage import ParamError, parse_time
from tests.edge.conftest import AUTH, CHAT, GOOD, Stack, StackFactory
from tests.support import demo_config, eventually, stop_process, wait_ready

LIMITED_FIRST = f"""
- {{name: limited, key: sk-ratelimited-0001, priority: high}}
{GOOD}
"""


async def traffic(stack: Stack) -> None:
    """Three OpenAI calls (one streamed) and two Anthropic calls through the SDKs."""
    gpt = stack.openai()
    await gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    await gpt.chat.completions.create(model="gpt-4o", messages=CHAT)
    assert [c async for c in await gpt.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)]
    claude = stack.anthropic()
    for _ in range(2):
        await claude.messages.create(model="claude-haiku-4-5", max_tokens=16, messages=CHAT)
    await stack.edge.runner.app[SELECTOR].flush_reports()


def stamp(seconds: float) -> Timestamp:
    out = Timestamp()
    out.FromNanoseconds(int(seconds * 1e9))
    return out


def iso(ts: Timestamp) -> str:
    return datetime.fromtimestamp(ts.ToNanoseconds() / 1e9, UTC).isoformat().replace("+00:00", "Z")


# ---- usage ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bucket", ["minute", "hour", "day"])
async def test_usage_matches_the_selectors_get_usage(make_stack: StackFactory, bucket: str) -> None:
    stack = await make_stack(openai_accounts=LIMITED_FIRST)
    await traffic(stack)
    until = time.time() + 1
    since = until - 3600
    status, body = await stack.get_json(f"/v1/accounts/usage?bucket={bucket}&since={since}&until={until}")
    assert status == 200, body
    assert body["bucket"] == bucket and body["object"] == "usage"
    assert body["since"] == datetime.fromtimestamp(since, UTC).isoformat().replace("+00:00", "Z")

    assert stack.selector is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.selector.port}") as channel:
        direct = await pb_grpc.SelectorStub(channel).GetUsage(pb.GetUsageRequest(  # type: ignore[no-untyped-call]
            since=stamp(since), until=stamp(until), bucket=getattr(pb, f"USAGE_BUCKET_{bucket.upper()}")))
    assert len(body["rows"]) == len(direct.rows) > 0
    for got, want in zip(body["rows"], direct.rows, strict=True):
        assert got["bucket_start"] == iso(want.bucket_start)
        for field in ("pool", "account_id", "account_name", "requests", "successes", "errors", "rate_limited",
                      "input_tokens", "output_tokens", "cost", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms",
                      "ttft_p50_ms"):
            assert got[field] == getattr(want, field), field
    by_account: dict[str, dict[str, int]] = {}
    for row in body["rows"]:
        totals = by_account.setdefault(row["account_id"], {"requests": 0, "rate_limited": 0, "tokens": 0})
        totals["requests"] += row["requests"]
        totals["rate_limited"] += row["rate_limited"]
        totals["tokens"] += row["input_tokens"] + row["output_tokens"]
    # Once per model: the 429 for gpt-4o-mini rests the account for that model only, and gpt-4o tries it too.
    assert by_account["openai/limited"] == {"requests": 2, "rate_limited": 2, "tokens": 0}
    assert by_account["openai/good"]["requests"] == 3 and by_account["openai/good"]["tokens"] > 0
    assert by_account["anthropic/good"]["requests"] == 2


async def test_usage_filters_and_time_forms(stack: Stack) -> None:
    await traffic(stack)
    now = datetime.now(UTC).replace(microsecond=0)
    since = now.timestamp() - 7200
    iso_since = datetime.fromtimestamp(since, UTC).isoformat()  # +00:00, sent unescaped: '+' arrives as ' '
    status, body = await stack.get_json(f"/v1/accounts/usage?pool=anthropic&since={iso_since}&bucket=day")
    assert status == 200, body
    assert {row["pool"] for row in body["rows"]} == {"anthropic"}
    assert body["since"] == datetime.fromtimestamp(since, UTC).isoformat().replace("+00:00", "Z")
    status, body = await stack.get_json("/v1/accounts/usage?account=openai/good")
    assert status == 200 and {row["account_id"] for row in body["rows"]} == {"openai/good"}
    naive = datetime.fromtimestamp(since + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%S")  # no offset: UTC
    status, body = await stack.get_json(f"/v1/accounts/usage?pool=openai&account=good&bucket=minute&since={naive}")
    assert status == 200, body
    assert body["since"] == naive + "Z" and {row["account_id"] for row in body["rows"]} == {"openai/good"}


@pytest.mark.parametrize(("query", "param", "status"), [
    ("bucket=week", "bucket", 400),
    ("since=yesterday", "since", 400),
    ("until=2025-13-01", "until", 400),
    ("since=2000000000&until=1000000000", "since", 400),
    ("since=-5", "since", 400),
    ("bucket=minute&since=0", "since", 400),  # the selector's limit: minute buckets cover at most 24 hours
    ("pools=openai", "pools", 400),
    ("account=good", "account", 400),
    ("pool=nope", "pool", 404),
])
async def test_usage_rejects_bad_parameters_naming_them(stack: Stack, query: str, param: str, status: int) -> None:
    got, body = await stack.get_json(f"/v1/accounts/usage?{query}")
    assert got == status, body
    assert body["error"]["param"] == param, body
    if status == 404:
        assert "nope" in body["error"]["message"], body
    else:
        assert body["error"]["message"].startswith(param), body
    assert body["error"]["type"] == "invalid_request_error"


async def test_stats_of_an_unknown_pool_say_which_pools_there_are(stack: Stack) -> None:
    status, body = await stack.get_json("/v1/accounts/stats?pool=nope")
    assert status == 404, body
    assert body["error"]["param"] == "pool" and body["error"]["code"] == "pool_not_found"
    assert body["error"]["message"].startswith("unknown pool 'nope'; configured pools: "), body
    assert "openai" in body["error"]["message"]
    status, body = await stack.get_json("/v1/accounts/stats?pool=openai")
    assert status == 200 and [pool["name"] for pool in body["pools"]] == ["openai"], body


async def test_usage_needs_the_client_key_and_the_usage_log(make_stack: StackFactory) -> None:
    stack = await make_stack(selector_settings="usage_log: false")
    status, body = await stack.get_json("/v1/accounts/usage", headers={})
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    status, body = await stack.get_json("/v1/accounts/usage")
    assert status == 503 and body["error"]["code"] == "usage_log_off", body
    assert "usage_log" in body["error"]["message"]


def test_times_parse_as_iso_8601_or_epoch_seconds() -> None:
    assert parse_time("since", "1738324800") == 1738324800.0
    assert parse_time("since", "1738324800.5") == 1738324800.5
    assert parse_time("since", "2025-01-31T12:00:00Z") == 1738324800.0
    assert parse_time("since", "2025-01-31T12:00:00") == 1738324800.0  # no offset: UTC
    assert parse_time("since", "2025-01-31T14:00:00+02:00") == 1738324800.0
    assert parse_time("since", "2025-01-31T14:00:00 02:00") == 1738324800.0  # an unescaped '+'
    assert parse_time("since", "2025-01-31") == 1738281600.0
    for bad in ("soon", "", "nan", "1e400", "99999999999999"):
        with pytest.raises(ParamError) as caught:
            parse_time("until", bad)
        assert caught.value.param == "until"


# ---- metrics ----------------------------------------------------------------------------------------------------


def samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def test_metrics_count_requests_attempts_failovers_and_latency(make_stack: StackFactory) -> None:
    stack = await make_stack(openai_accounts=LIMITED_FIRST)
    await traffic(stack)
    await stack.post("/v1/chat/completions", {"model": "nope", "messages": CHAT})  # 404, never routed
    async with stack.http.get(f"{stack.url}/metrics") as response:  # no client key needed
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    got = samples(text)
    # Names only a pattern accepts are labelled by the pattern; gpt-4o is named by models: (alias: openai/gpt-4o).
    assert got['poolgate_edge_requests_total{client="other",model="gpt-*",pool="openai",status="200"}'] == 2
    assert got['poolgate_edge_requests_total{client="other",model="gpt-4o",pool="openai",status="200"}'] == 1
    assert got['poolgate_edge_requests_total{client="other",model="claude-*",pool="anthropic",status="200"}'] == 2
    # The 429 rests the account for gpt-4o-mini only: gpt-4o tries it once too (one call per model).
    assert got['poolgate_edge_attempts_total{account="limited",outcome="rate_limited",pool="openai"}'] == 2
    assert got['poolgate_edge_attempts_total{account="good",outcome="success",pool="openai"}'] == 3
    assert got['poolgate_edge_failovers_total{from_pool="openai",reason="rate_limited",to_pool="openai"}'] == 2
    assert got['poolgate_edge_request_duration_seconds_count{pool="openai"}'] == 3
    assert got['poolgate_edge_request_duration_seconds_count{pool="anthropic"}'] == 2
    assert got['poolgate_edge_time_to_first_token_seconds_count{pool="openai"}'] == 1  # the one stream
    assert got['poolgate_edge_in_flight_requests{pool="openai"}'] == 0
    assert got['poolgate_edge_unrouted_requests_total{route="/v1/chat/completions",status="404"}'] == 1
    assert "sk-ratelimited-0001" not in text and "sk-good-000001" not in text  # names only, never credentials


def test_the_in_flight_gauge_is_the_count_the_dashboard_reads() -> None:
    metrics = EdgeMetrics(["openai"])
    metrics.request_started("openai")
    metrics.request_started("anthropic")  # a pool first seen on the request path
    metrics.request_started("openai")
    metrics.request_finished("openai", "gpt-4o-mini", 200, 0.1, None)
    got = samples(generate_latest(metrics.registry).decode())
    assert got['poolgate_edge_in_flight_requests{pool="openai"}'] == 1
    assert got['poolgate_edge_in_flight_requests{pool="anthropic"}'] == 1
    assert metrics.in_flight_by_pool == {"openai": 1, "anthropic": 1}


async def test_each_app_has_its_own_registry(stack: Stack) -> None:
    other = create_app(stack.config)  # a second edge in the same process: no duplicate-series error
    assert other[METRICS].registry is not stack.edge.runner.app[METRICS].registry


# ---- request ids and logs ---------------------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The edge's log lines, as the JSON formatter writes them."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    logger = logging.getLogger("poolgate.edge")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_json_log_lines_carry_the_request_id_of_the_response(
    make_stack: StackFactory, json_log: io.StringIO
) -> None:
    stack = await make_stack(openai_accounts=LIMITED_FIRST)
    raw = await stack.openai().chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=CHAT)
    request_id = raw.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{16}", request_id)
    assert raw.headers["x-upstream-request-id"].startswith("req_")  # the upstream's own id, passed on
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert [line["level"] for line in mine] == ["warning", "info"], lines  # the failover, then the request
    failover, done = mine
    assert "openai/limited rate limited" in failover["message"]
    assert done["path"] == "/v1/chat/completions" and done["status"] == 200 and done["attempts"] == 2
    assert done["pool"] == "openai" and done["account"] == "openai/good" and done["model"] == "gpt-4o-mini"
    assert done["latency_ms"] >= 0 and done["logger"] == "poolgate.edge"
    assert datetime.fromisoformat(done["time"]).tzinfo is not None
    assert "sk-" not in json_log.getvalue()


async def test_a_sane_client_request_id_is_kept_and_others_replaced(stack: Stack, json_log: io.StringIO) -> None:
    body = {"model": "gpt-4o-mini", "messages": CHAT}
    for sent, kept in (("client-Trace_42.a", True), ("x" * 128, True), ("x" * 129, False), ("bad id!", False),
                       ("", False)):
        status, _, headers = await stack.post("/v1/chat/completions", body, {**AUTH, "x-request-id": sent})
        assert status == 200
        assert (CIMultiDict(headers)["x-request-id"] == sent) is kept, (sent, headers)
    status, _, headers = await stack.post("/v1/chat/completions", b"{", AUTH)  # errors carry it too
    assert status == 400 and CIMultiDict(headers)["x-request-id"]
    async with stack.http.get(f"{stack.url}/healthz") as response:
        assert response.headers["x-request-id"]
    assert '"request_id": "client-Trace_42.a"' in json_log.getvalue()


def test_text_lines_show_the_request_id_and_json_lines_parse() -> None:
    record = logging.LogRecord("poolgate.edge", logging.INFO, __file__, 1, "served %s", ("x",), None)
    record.request_id = "abc123"
    assert TextFormatter().format(record).endswith("INFO poolgate.edge: served x request_id=abc123")
    record.fields = {"status": 200}
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "served x" and line["status"] == 200 and line["request_id"] == "abc123"
    record.fields = lambda: {"built": "late"}  # fields may be built only when a JSON line is written
    assert json.loads(JsonFormatter().format(record))["built"] == "late"
    try:
        raise ValueError("boom")
    except ValueError:
        failed = logging.LogRecord("poolgate", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "ValueError: boom" in json.loads(JsonFormatter().format(failed))["exception"]


def test_configure_logging_is_shared_and_replaces_its_handler() -> None:
    from selector_service import app as selector_app

    assert selector_app.configure_logging is configure_logging
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    flags = (logging.logThreads, logging.logProcesses, logging.logMultiprocessing, logging._srcfile)
    stream = io.StringIO()
    try:
        configure_logging("info", "json", stream)
        configure_logging("warning", "json", stream)  # again: still one handler of ours
        assert len(root.handlers) == len(before) + 1
        token = REQUEST_ID.set("rid-1")
        try:
            logging.getLogger("poolgate.test").warning("hello")
            logging.getLogger("poolgate.test").info("not at warning")
        finally:
            REQUEST_ID.reset(token)
        (line,) = stream.getvalue().splitlines()
        assert json.loads(line)["request_id"] == "rid-1"
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)
        logging.logThreads, logging.logProcesses, logging.logMultiprocessing, logging._srcfile = flags
    args = build_parser().parse_args(["--log-format", "json", "edge", "--config", "x.yaml"])
    assert args.log_format == "json"
    assert build_parser().parse_args(["edge", "--config", "x.yaml"]).log_format == "text"


def test_request_ids() -> None:
    assert request_id_for("abc") == "abc"
    assert request_id_for(None) != request_id_for(None)
    assert len(request_id_for("a b")) == 16


def test_up_writes_json_lines_with_request_ids(tmp_path: Path) -> None:
    config, (edge, _selector, _fake) = demo_config(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "poolgate_cli", "--log-format", "json", "up", "--config",
                                str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{edge}"
    try:
        wait_ready(url, process)
        request = urllib.request.Request(
            f"{url}/v1/chat/completions", method="POST", headers={
                "Authorization": "Bearer poolgate-demo", "Content-Type": "application/json",
                "x-request-id": "json-lines-test-1"},
            data=json.dumps({"model": "gpt-4o-mini", "messages": CHAT}).encode())
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.headers["x-request-id"] == "json-lines-test-1"
    finally:
        output = stop_process(process)
    assert process.returncode == 0, output
    records = [json.loads(line) for line in output.splitlines()]  # every line of every process is JSON
    loggers = {record["logger"] for record in records}
    assert {"poolgate.up", "poolgate.selector", "poolgate.edge"} <= loggers, loggers
    tagged = [record for record in records if record.get("request_id") == "json-lines-test-1"]
    assert tagged[-1]["level"] == "info" and tagged[-1]["status"] == 200, tagged  # the request line
    assert all(record["level"] == "warning" for record in tagged[:-1])  # the demo's failover, if any


async def test_busy_edges_batch_request_lines_without_losing_any(stack: Stack, json_log: io.StringIO) -> None:
    body = {"model": "gpt-4o-mini", "messages": CHAT}
    ids = [f"batch-{i}" for i in range(20)]
    results = await asyncio.gather(*(stack.post("/v1/chat/completions", body, {**AUTH, "x-request-id": rid})
                                     for rid in ids))
    assert all(status == 200 for status, _, _ in results)
    # At most FLUSH_DELAY (0.1 s) when the edge is busy; at once when it goes idle.
    await eventually(lambda: len(json_log.getvalue().splitlines()) >= len(ids), within=2,
                     what=f"{len(ids)} request lines")
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert sorted(line["request_id"] for line in lines) == sorted(ids)  # each exactly once, with its own id
    assert all(line["status"] == 200 and line["pool"] == "openai" for line in lines)


def test_buffered_lines_wait_for_a_flush_but_warnings_do_not() -> None:
    stream = io.StringIO()
    handler = make_handler("text", stream, buffered=True)
    logger = logging.getLogger("poolgate.test.buffered")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("first")
        assert stream.getvalue() == ""  # buffered
        logger.warning("second")  # goes out at once, after what was buffered
        assert [line.split(": ", 1)[1] for line in stream.getvalue().splitlines()] == ["first", "second"]
        logger.info("third")
        deadline = time.monotonic() + 5
        while "third" not in stream.getvalue():  # written by the flusher within FLUSH_INTERVAL
            assert time.monotonic() < deadline, stream.getvalue()
            time.sleep(0.02)
    finally:
        logger.removeHandler(handler)
        handler.close()


# ---- dashboard (without a browser) ------------------------------------------------------------------------------


async def test_dashboard_ships_its_own_files_and_guards_its_data(stack: Stack) -> None:
    async with stack.http.get(f"{stack.url}/dashboard") as response:  # the page itself needs no key
        assert response.status == 200 and response.content_type == "text/html"
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        html = await response.text()
    assets = re.findall(r'(?:src|href)="(dashboard/static/[^"]+)"', html)
    assert sorted(assets) == [f"dashboard/static/{name}" for name in (
        "admin.js", "charts.js", "clients.js", "common.js", "dashboard.css", "dashboard.js", "rows.js")]
    for asset in assets:
        async with stack.http.get(f"{stack.url}/{asset}") as response:
            assert response.status == 200
            text = await response.text()
        text = text.replace("http://www.w3.org/2000/svg", "")  # the SVG namespace is a name, not a download
        assert not re.search(r"https?://|//cdn", text), asset  # nothing from the network
    for name in ("..%2Fapp.py", "nope.js"):  # encoded, so the client does not resolve the ".." itself
        async with stack.http.get(URL(f"{stack.url}/dashboard/static/{name}", encoded=True)) as response:
            assert response.status == 404, name
            assert await response.text() == "no such dashboard file"  # the handler's answer, not the router's
    status, body = await stack.get_json("/dashboard/api/snapshot", headers={})
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    await traffic(stack)
    status, body = await stack.get_json("/dashboard/api/snapshot")
    assert status == 200
    accounts = {a["id"]: a for pool in body["pools"] for a in pool["accounts"]}
    assert accounts["openai/good"]["state"] == "healthy" and accounts["openai/good"]["requests"] == 3
    assert accounts["openai/good"]["today"]["requests"] == 3
    series = accounts["openai/good"]["series"]
    assert sum(series["requests"]) == 3 and len(series["tokens"]) == 60
    assert accounts["openai/good"]["credential"] == "…0001"
    assert "sk-good" not in json.dumps(body)


async def test_dashboard_data_needs_no_key_with_auth_off(make_stack: StackFactory) -> None:
    stack = await make_stack(edge="auth: false")
    status, body = await stack.get_json("/dashboard/api/snapshot", headers={})
    assert status == 200 and {pool["name"] for pool in body["pools"]} == {"openai", "anthropic"}

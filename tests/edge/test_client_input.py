"""Client input the edge refuses or repairs at its boundary (proxy_edge/client_input.py), through a real edge and
selector on loopback: deep nesting, lone surrogates, bytes that are not UTF-8, compressed bodies, long model names,
and an unexpected error in a handler. None of them gets a 5xx of the edge's own or a traceback in the log."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import random
import re
import string
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy_edge import handlers
from proxy_edge.client_input import (
    MAX_JSON_DEPTH,
    MAX_MODEL_LENGTH,
    InputError,
    _parse_exactly,
    header_text,
    parse_body,
)
from proxy_edge.json_codec import encode
from tests.edge.conftest import AUTH, CHAT, EDGE_KEY, Stack, StackFactory

ANTHROPIC_AUTH = {"x-api-key": EDGE_KEY}


def chat_body(**fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": CHAT, **fields}


def nested(depth: int) -> str:
    """A JSON value ``depth`` levels deep (arrays, with an object at the bottom)."""
    return "[" * (depth - 1) + "{}" + "]" * (depth - 1)


async def raw_exchange(stack: Stack, head: bytes, body: bytes = b"") -> tuple[int, bytes, bytes]:
    """Send exactly these bytes on a new connection; (status, headers, body) of the answer."""
    reader, writer = await asyncio.open_connection(stack.edge.host, stack.edge.port)
    try:
        writer.write(head + b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    headers, _, content = answer.partition(b"\r\n\r\n")
    return int(headers.split(b" ", 2)[1]), headers, content


def openai_error(body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str), body
    assert isinstance(body["error"]["type"], str) and "code" in body["error"], body
    return body["error"]  # type: ignore[no-any-return]


def anthropic_error(body: dict[str, Any]) -> dict[str, Any]:
    assert body["type"] == "error" and isinstance(body["error"]["type"], str), body
    assert isinstance(body["error"]["message"], str), body
    return body["error"]  # type: ignore[no-any-return]


# ---- the body: nesting, text, model ----------------------------------------------------------------------------

@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 1000, 100_000])
async def test_deep_nesting_is_a_400_naming_the_limit(stack: Stack, depth: int) -> None:
    raw = f'{{"model": "gpt-4o", "messages": [], "extra": {nested(depth)}}}'.encode()
    status, body, _ = await stack.post("/v1/chat/completions", raw)
    assert status == 400
    error = openai_error(body)
    assert error["code"] == "json_too_deep" and str(MAX_JSON_DEPTH) in error["message"]
    status, body, _ = await stack.post("/v1/messages", raw.replace(b"gpt-4o", b"claude-x"), ANTHROPIC_AUTH)
    assert status == 400 and str(MAX_JSON_DEPTH) in anthropic_error(body)["message"]


async def test_nesting_up_to_the_limit_is_served(stack: Stack) -> None:
    # The body itself is level 1: the extra field may hold a value MAX_JSON_DEPTH - 1 deep.
    raw = json.dumps(chat_body(extra=json.loads(nested(MAX_JSON_DEPTH - 1)))).encode()
    status, body, _ = await stack.post("/v1/chat/completions", raw)
    assert status == 200, body


@pytest.mark.parametrize(("fields", "named"), [
    ({"model": "gpt-4o\ud800"}, "model"),
    ({"user": "\udfff"}, "user"),
    ({"messages": [{"role": "user", "content": "hi \ud83d there"}]}, "messages[0].content"),
])
async def test_a_lone_surrogate_is_a_400_naming_the_field(stack: Stack, fields: dict[str, Any], named: str) -> None:
    # The SDKs cannot encode a lone surrogate; json.dumps writes it as a \\uXXXX escape, as other clients may.
    status, body, _ = await stack.post("/v1/chat/completions", json.dumps(chat_body(**fields)).encode())
    assert status == 400
    error = openai_error(body)
    assert error["code"] == "invalid_string" and error["message"].startswith(f"{named} holds a lone UTF-16 surrogate")


async def test_surrogate_pairs_are_text(stack: Stack) -> None:
    # An escaped pair (as json.dumps writes an emoji) is one character, not a lone surrogate.
    reply = await stack.openai().chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi \U0001f600"}], user="\U0001f600")
    assert reply.choices[0].message.content


async def test_a_lone_surrogate_in_an_anthropic_request_is_a_400_in_anthropic_shape(stack: Stack) -> None:
    raw = json.dumps({"model": "claude-x", "max_tokens": 8, "messages": CHAT, "metadata": {"user_id": "\ud800"}})
    status, body, _ = await stack.post("/v1/messages", raw.encode(), ANTHROPIC_AUTH)
    assert status == 400
    assert anthropic_error(body)["message"].startswith("metadata.user_id holds a lone UTF-16 surrogate")


async def test_body_bytes_that_are_not_utf8_are_a_400(stack: Stack) -> None:
    raw = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "\xff\xfe"}]}'
    status, body, _ = await stack.post("/v1/chat/completions", raw)
    assert status == 400 and openai_error(body)["code"] == "invalid_utf8"
    # A surrogate encoded as UTF-8 bytes (CESU) is not UTF-8 either.
    status, body, _ = await stack.post("/v1/chat/completions", raw.replace(b"\xff\xfe", b"\xed\xa0\x80"))
    assert status == 400 and openai_error(body)["code"] == "invalid_utf8"


async def test_a_model_name_past_the_bound_is_a_400_and_never_echoed_in_a_header(stack: Stack) -> None:
    long_name = "gpt-" + "x" * 10_000
    status, body, headers = await stack.post("/v1/chat/completions", chat_body(model=long_name))
    assert status == 400 and openai_error(body)["code"] == "invalid_model"
    assert str(MAX_MODEL_LENGTH) in body["error"]["message"] and long_name not in json.dumps(body)
    assert all(len(value) < 1000 for value in headers.values())
    fits = "gpt-" + "x" * (MAX_MODEL_LENGTH - 4)
    reply = await stack.openai().chat.completions.with_raw_response.create(model=fits, messages=CHAT)
    assert reply.headers["x-poolgate-target"] == f"openai/{fits}"


async def test_control_characters_in_the_model_are_a_400(stack: Stack) -> None:
    status, body, _ = await stack.post("/v1/chat/completions", chat_body(model="gpt-4o\r\nx-injected: 1"))
    assert status == 400 and openai_error(body)["code"] == "invalid_model"


async def test_a_model_name_that_is_not_ascii_is_percent_encoded_in_the_target_header(stack: Stack) -> None:
    reply = await stack.openai().chat.completions.with_raw_response.create(model="gpt-é", messages=CHAT)
    assert reply.headers["x-poolgate-target"] == "openai/gpt-%C3%A9"


# ---- headers ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("header", [b"Authorization: Bearer \xff\xfe", b"x-api-key: " + EDGE_KEY.encode() + b"\xff",
                                    b"Authorization: Bearer " + EDGE_KEY.encode() + b"\xc3"])
async def test_an_api_key_that_is_not_utf8_is_a_401(stack: Stack, caplog: pytest.LogCaptureFixture,
                                                    header: bytes) -> None:
    caplog.set_level(logging.INFO)
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\n" + header + b"\r\n"
    status, _headers, content = await raw_exchange(stack, head, json.dumps(chat_body()).encode())
    assert status == 401 and openai_error(json.loads(content))["code"] == "invalid_api_key"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_session_and_other_headers_that_are_not_utf8_are_read_leniently(stack: Stack) -> None:
    head = (b"POST /v1/messages HTTP/1.1\r\nHost: edge\r\nContent-Type: application/json\r\nx-api-key: "
            + EDGE_KEY.encode() + b"\r\nx-session-id: s\xff\xfe1\r\nx-custom: \xc3(\r\n")
    body = json.dumps({"model": "claude-x", "max_tokens": 8, "messages": CHAT}).encode()
    status, _headers, content = await raw_exchange(stack, head, body)
    assert status == 200, content
    assert json.loads(content)["type"] == "message"


def test_header_text_keeps_distinct_values_distinct() -> None:
    first, second = (b"s\xff".decode("utf-8", "surrogateescape"), b"s\xfe".decode("utf-8", "surrogateescape"))
    assert header_text(first) == "s\\xff" and header_text(second) == "s\\xfe"
    assert header_text("plain é") == "plain é"


# ---- compressed bodies ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_body_is_forwarded_decoded(stack: Stack, encoding: str) -> None:
    plain = json.dumps(chat_body()).encode()
    packed = gzip.compress(plain) if encoding == "gzip" else zlib.compress(plain)
    status, body, _ = await stack.post("/v1/chat/completions", packed,
                                       {**AUTH, "Content-Encoding": encoding, "Content-Type": "application/json"})
    assert status == 200, body
    assert body["choices"][0]["message"]["content"]
    account = (await stack.accounts())["openai/good"]
    assert account["consecutive_failures"] == 0 and account["failures_total"] == 0, account


async def test_a_body_that_does_not_decompress_is_a_400_and_the_connection_stays_usable(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    status, body, headers = await stack.post("/v1/messages", b"\x1f\x8b not gzip at all",
                                             {**ANTHROPIC_AUTH, "Content-Encoding": "gzip"})
    assert status == 400 and "Content-Encoding" in anthropic_error(body)["message"]
    assert headers.get("Connection", "").lower() == "close"
    status, body, _ = await stack.post("/v1/chat/completions", chat_body())  # the client's next request is served
    assert status == 200, body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_an_unauthenticated_body_that_does_not_decompress_leaves_no_traceback(
        stack: Stack, caplog: pytest.LogCaptureFixture) -> None:
    # The 401 goes out before the body is read; the server then drains the body, fails to decode it, and closes
    # the connection (the answer's end below): by then its log line is written.
    caplog.set_level(logging.INFO)
    head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\nContent-Encoding: gzip\r\n"
    status, _headers, content = await raw_exchange(stack, head, b"\x1f\x8b not gzip at all" * 100)
    assert status == 401 and openai_error(json.loads(content))["code"] == "invalid_api_key"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], caplog.text


async def test_a_decompression_bomb_is_bounded_by_the_body_limit(make_stack: StackFactory) -> None:
    stack = await make_stack(edge="body_limit: 64KB")
    bomb = gzip.compress(b'{"model": "gpt-4o", "pad": "' + b" " * 10_000_000 + b'"}')
    assert len(bomb) < 64 * 1024
    status, body, _ = await stack.post("/v1/chat/completions", bomb, {**AUTH, "Content-Encoding": "gzip"})
    assert status == 413 and openai_error(body)["code"] == "request_too_large"


async def test_a_content_encoding_the_edge_cannot_decode_is_a_415(stack: Stack) -> None:
    status, body, _ = await stack.post("/v1/chat/completions", json.dumps(chat_body()).encode(),
                                       {**AUTH, "Content-Encoding": "compress"})
    assert status == 415 and openai_error(body)["code"] == "unsupported_content_encoding"
    assert "gzip" in body["error"]["message"]


# ---- an error of the edge's own ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "auth"), [("/v1/chat/completions", AUTH), ("/v1/messages", ANTHROPIC_AUTH)])
async def test_an_unexpected_error_is_a_500_in_the_clients_shape_logged_once(
        stack: Stack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        path: str, auth: dict[str, str]) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug in the edge")

    monkeypatch.setattr(handlers, "parse_job", broken)
    caplog.set_level(logging.INFO)
    async with stack.http.post(f"{stack.url}{path}", json={"model": "gpt-4o"},
                               headers={**auth, "x-request-id": "req-bug-1"}) as response:
        status, body = response.status, await response.json()
        request_id = response.headers["x-request-id"]
    assert status == 500 and request_id == "req-bug-1"
    error = anthropic_error(body) if path == "/v1/messages" else openai_error(body)
    assert request_id in error["message"] and "a bug in the edge" not in error["message"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None, errors
    assert errors[0].name == "poolgate.edge" and "a bug in the edge" in caplog.text


# ---- metrics ----------------------------------------------------------------------------------------------------

async def test_metrics_label_only_configured_model_names(make_stack: StackFactory) -> None:
    stack = await make_stack(models='"exact-model": openai/gpt-4o\n"*": openai')
    rng = random.Random(7)
    names = {"".join(rng.choices(string.ascii_letters + string.digits + "-._:", k=rng.randint(1, 40)))
             for _ in range(500)}
    for name in names:
        status, body, _ = await stack.post("/v1/chat/completions", chat_body(model=name))
        assert status == 200, (name, body)
    for name in ("exact-model", "gpt-4o"):  # an exact name of models:, and a model a models: value names
        assert (await stack.post("/v1/chat/completions", chat_body(model=name)))[0] == 200
    status, _, _ = await stack.post("/v1/chat/completions", chat_body(model="x\ud800"))
    assert status == 400
    async with stack.http.get(f"{stack.url}/metrics") as response:
        assert response.status == 200
        text = await response.text()
    labels = set(re.findall(r'poolgate_edge_requests_total\{client="other",model="([^"]*)"', text))
    # Named models by their names, every other name by the pattern that serves it: bounded by the config.
    assert labels == {"exact-model", "gpt-4o", "*"}, labels
    others = len(names - {"exact-model", "gpt-4o"})
    assert f'poolgate_edge_requests_total{{client="other",model="*",pool="openai",status="200"}} {others}.0' in text


def _outcome(parse: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "ok", parse(raw)
    except InputError as exc:
        return exc.code, exc.status


SURROGATES_AROUND = st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010)
"""Characters around and in the surrogate range, so that lone surrogates are generated too."""
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, width=64) | st.text() | st.text(SURROGATES_AROUND, max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(fields=st.dictionaries(st.text(max_size=8), json_values, max_size=6), ascii_only=st.booleans())
def test_the_fast_parse_reads_every_body_as_the_exact_one_does(fields: dict[str, Any], ascii_only: bool) -> None:
    """orjson first, the standard library for what orjson cannot read exactly: the same objects (integers beyond 64
    bits included, to the digit) and the same refusals as the standard library alone."""
    raw = json.dumps({"model": "m", **fields}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    fast, exact = _outcome(parse_body, raw), _outcome(_parse_exactly, raw)
    assert repr(fast) == repr(exact)  # repr: an integer that became a float would compare equal
    if fast[0] == "ok":
        assert json.loads(encode(fast[1])) == json.loads(raw.decode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("raw", [
    b'{"model": "m", "seed": 123456789012345678901234567890}', b'{"model": "m", "t": NaN}',
    b'\xef\xbb\xbf{"model": "m"}', b'{"model": "m\xff"}', b'{"model": "m", "x": "\\ud800"}',
    b'{"model": "m", "x": ' + b"[" * 70 + b"]" * 70 + b"}", b'{"model": "m", "x": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    b'["model"]', b'{"model": "m", "x": 1e400}'])
def test_what_orjson_refuses_or_cannot_hold_gets_the_exact_answer(raw: bytes) -> None:
    fast, exact = _outcome(parse_body, raw), _outcome(_parse_exactly, raw)
    assert fast[0] == exact[0]
    if fast[0] == "ok":
        assert repr(fast[1]) == repr(exact[1])


def test_integers_beyond_64_bits_keep_every_digit_when_the_body_is_written_anew() -> None:
    data = parse_body(b'{"model": "m", "seed": 123456789012345678901234567890}')
    assert data["seed"] == 123456789012345678901234567890
    assert b'"seed":123456789012345678901234567890' in encode(data)


@pytest.mark.parametrize("number", [b"NaN", b"-Infinity", b"1e400"])
async def test_a_number_json_cannot_carry_is_a_400_and_no_upstream_call(stack: Stack, number: bytes) -> None:
    before = sum(stack.fake.stats.requests.values())
    raw = b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "temperature": ' + number + b"}"
    async with stack.http.post(f"{stack.url}/v1/chat/completions", data=raw,
                               headers={**AUTH, "Content-Type": "application/json"}) as response:
        status, body = response.status, await response.json()
    assert status == 400 and body["error"]["code"] == "invalid_json"
    assert f"holds the number {number.decode()}, which JSON cannot carry" in body["error"]["message"]
    assert sum(stack.fake.stats.requests.values()) == before

"""Random bodies, headers and query strings to every endpoint of the edge: no 5xx, and every error in the shape of
the API the client called (OpenAI's ``{"error": {...}}``, Anthropic's ``{"type": "error", ...}``)."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import string
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.edge.conftest import EDGE_KEY
from tests.fuzz.conftest import FUZZ, BackgroundStack

# Transport-level headers decide how bytes are framed, not what the API gets; the test does not fake those.
FRAMING = {"content-length", "transfer-encoding", "host", "connection", "content-encoding", "expect", "upgrade",
           "te", "trailer", "keep-alive", "proxy-connection", "authorization", "x-api-key"}
MODELS = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "alias", "claude-sonnet-4-6", "claude-x", "nope", ""]

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=16)
messages = st.lists(st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "tool", "developer", ""]) | json_values},
    optional={"content": json_values | st.text(max_size=40), "name": json_values, "tool_calls": json_values}),
    max_size=3)
plausible = st.fixed_dictionaries(
    {"model": st.sampled_from(MODELS) | json_values},
    optional={"messages": messages | json_values, "input": json_values, "stream": st.booleans() | json_values,
              "stream_options": json_values, "max_tokens": st.integers(-5, 10**12) | json_values,
              "system": json_values, "tools": json_values, "tool_choice": json_values, "n": json_values,
              "temperature": json_values, "metadata": json_values, "response_format": json_values,
              "encoding_format": st.sampled_from(["float", "base64", "x"]) | json_values})
valid = st.fixed_dictionaries(
    {"model": st.sampled_from(MODELS[:-2]),
     "messages": st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]),
                                                 "content": st.text(max_size=40)}), min_size=1, max_size=3)},
    optional={"stream": st.booleans(), "max_tokens": st.integers(1, 64), "input": st.text(max_size=20),
              "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
              "temperature": st.floats(0, 2), "user": st.text(max_size=10), "extra": json_values})
bodies = st.one_of(
    valid.map(lambda body: json.dumps(body).encode()),
    valid.map(lambda body: json.dumps(body).encode()),  # listed twice: half the requests reach an upstream
    plausible.map(lambda body: json.dumps(body).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=200),
)
header_names = st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True).filter(lambda n: n.lower() not in FRAMING)
header_values = st.text(alphabet=string.ascii_letters + string.digits + " -_.,;:=/*+()\"'<>?@[]{}|~!#$%&^`",
                        max_size=40).map(str.strip)
headers = st.dictionaries(header_names, header_values, max_size=5)
auth = st.sampled_from(["bearer", "bearer", "x-api-key", "wrong", "none"])  # mostly past authentication


def with_auth(given_headers: dict[str, str], how: str) -> dict[str, str]:
    result = dict(given_headers)
    if how == "bearer":
        result["Authorization"] = f"Bearer {EDGE_KEY}"
    elif how == "x-api-key":
        result["x-api-key"] = EDGE_KEY
    elif how == "wrong":
        result["Authorization"] = "Bearer not-the-key"
    return result


@dataclass
class Answer:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class Client:
    """A keep-alive HTTP/1.1 client that sends exactly the headers and bytes it is given."""

    def __init__(self, url: str) -> None:
        parsed = urllib.parse.urlsplit(url)
        self._host, self._port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self._connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                ) -> Answer:
        for attempt in (1, 2):
            if self._connection is None:
                self._connection = http.client.HTTPConnection(self._host, self._port, timeout=20)
            try:
                self._connection.request(method, path, body=body, headers=headers or {})
                response = self._connection.getresponse()
                return Answer(response.status, response.read())
            except (http.client.RemoteDisconnected, ConnectionError):
                self.close()  # the server closed a kept-alive connection: once more on a new one
                if attempt == 2:
                    raise
        raise AssertionError("not reached")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def assert_api_error(path: str, response: Answer) -> None:
    """An error body in the shape of the API at ``path``."""
    try:
        body: Any = json.loads(response.content)
    except ValueError:
        pytest.fail(f"{path} answered {response.status_code} with a body that is not JSON: {response.text[:300]!r}")
    if path.startswith("/v1/messages"):
        assert body.get("type") == "error", body
        assert isinstance(body["error"]["type"], str) and isinstance(body["error"]["message"], str), body
    else:
        assert isinstance(body.get("error"), dict), body
        assert isinstance(body["error"]["message"], str) and isinstance(body["error"]["type"], str), body


@pytest.fixture(scope="module")
def client(background_stack: BackgroundStack) -> Iterator[Client]:
    http = Client(background_stack.edge.url)
    yield http
    http.close()


def routes(stack: BackgroundStack, method: str) -> list[str]:
    return sorted({r.resource.canonical for r in stack.edge.runner.app.router.routes() if r.method == method})


def test_every_post_endpoint_is_fuzzed(background_stack: BackgroundStack) -> None:
    assert routes(background_stack, "POST") == sorted([*FORWARDED_PATHS, *DASHBOARD_ROUTES])


FORWARDED_PATHS = ["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/messages",
                   "/v1/messages/count_tokens"]
HEADER_CHARS = st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
DASHBOARD_ROUTES = ["/dashboard/api/accounts/{action}", "/dashboard/api/reload"]
DASHBOARD_PATHS = ["/dashboard/api/accounts/disable", "/dashboard/api/accounts/enable",
                   "/dashboard/api/accounts/reset", "/dashboard/api/reload"]


@pytest.mark.parametrize("path", FORWARDED_PATHS)
def test_random_requests_to_forwarded_endpoints(client: Client, path: str) -> None:
    @FUZZ
    @given(body=bodies, extra=headers, how=auth)
    def check(body: bytes, extra: dict[str, str], how: str) -> None:
        response = client.request("POST", path, body, with_auth(extra, how))
        event(f"status {response.status_code}")
        assert response.status_code < 500, (response.status_code, response.text[:500])
        if response.status_code >= 400:
            assert_api_error(path, response)
        if how in ("wrong", "none"):
            assert response.status_code == 401

    check()


@pytest.mark.parametrize("path", DASHBOARD_PATHS)
def test_random_requests_to_the_dashboards_actions(client: Client, path: str) -> None:
    """The stack's selector has no admin tokens, so whatever arrives, nothing is acted on; nothing is a 5xx."""
    @FUZZ
    @given(body=bodies, extra=headers, how=auth, token=st.one_of(st.none(), st.text(HEADER_CHARS, max_size=40)))
    def check(body: bytes, extra: dict[str, str], how: str, token: str | None) -> None:
        sent = with_auth(extra, how)
        if token is not None:
            sent["X-Poolgate-Admin-Token"] = token
        response = client.request("POST", path, body, sent)
        event(f"status {response.status_code}")
        assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
        assert isinstance(json.loads(response.content)["error"]["message"], str), response.text[:500]
        if how in ("wrong", "none"):
            assert response.status_code == 401

    check()


def test_random_requests_to_read_endpoints(client: Client, background_stack: BackgroundStack) -> None:
    paths = routes(background_stack, "GET")
    assert "/v1/models" in paths and "/v1/accounts/stats" in paths

    @FUZZ
    @given(path=st.sampled_from(paths), name=st.text(alphabet=string.ascii_letters + "._-", min_size=1, max_size=20),
           query=st.dictionaries(st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=10),
                                 st.text(max_size=20), max_size=4),
           extra=headers, how=auth)
    def check(path: str, name: str, query: dict[str, str], extra: dict[str, str], how: str) -> None:
        target = path.replace("{name}", name)
        query_string = urllib.parse.urlencode(query)
        response = client.request("GET", f"{target}?{query_string}" if query_string else target, None,
                                  with_auth(extra, how))
        assert response.status_code < 500, (target, query, response.status_code, response.text[:500])
        if response.status_code >= 400 and target.startswith("/v1/"):
            assert_api_error(target, response)

    check()


# ---- hostile bytes: raw bodies, lone surrogates, deep nesting, header floods ------------------------------------

ONE_MESSAGE = [{"role": "user", "content": "hi"}]
lone_surrogates = st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3)
with_surrogate = st.tuples(st.text(max_size=10), lone_surrogates, st.text(max_size=10)).map("".join)
surrogate_bodies = st.one_of(
    st.fixed_dictionaries({"model": with_surrogate, "messages": st.just(ONE_MESSAGE)}),
    st.fixed_dictionaries({"model": st.sampled_from(MODELS[:4]), "messages": st.just(ONE_MESSAGE),
                           "user": with_surrogate}),
    st.fixed_dictionaries({"model": st.sampled_from(MODELS[:6]), "max_tokens": st.just(8),
                           "messages": st.lists(st.fixed_dictionaries({"role": st.just("user"),
                                                                       "content": with_surrogate}), min_size=1)}),
    st.dictionaries(with_surrogate, json_values, min_size=1, max_size=3).map(lambda d: {"model": "gpt-4o", **d}),
).map(lambda body: json.dumps(body).encode())  # json.dumps writes a lone surrogate as its \uXXXX escape
deep_bodies = st.tuples(st.integers(1, 3000), st.sampled_from(["[", "{\"a\":"]), st.sampled_from(MODELS[:6])).map(
    lambda t: (f'{{"model": "{t[2]}", "messages": [{{"role": "user", "content": "x"}}], "max_tokens": 8, "deep": '
               + t[1] * t[0] + "0" + ("]" if t[1] == "[" else "}") * t[0] + "}").encode())
raw_bodies = st.binary(max_size=300) | st.tuples(st.sampled_from(MODELS), st.binary(min_size=1, max_size=20)).map(
    lambda t: b'{"model": "' + t[0].encode() + b'", "messages": [{"role": "user", "content": "' + t[1] + b'"}]}')
hostile_bodies = surrogate_bodies | deep_bodies | raw_bodies
# Any byte HTTP allows in a field value (tab, visible ASCII, and 0x80-0xFF, most of it not UTF-8).
byte_values = st.binary(max_size=60).map(lambda b: bytes(c for c in b if c == 9 or 0x20 <= c != 0x7F).strip(b" \t"))
flood = st.one_of(
    st.lists(st.tuples(header_names, header_values), min_size=20, max_size=90),  # many headers
    st.lists(st.tuples(header_names, st.integers(1000, 7000).map(lambda n: "v" * n)), min_size=1, max_size=3),
    st.lists(st.tuples(header_names | st.sampled_from(["x-session-id", "x-request-id", "anthropic-version"]),
                       byte_values), min_size=1, max_size=5),  # bytes that are not UTF-8
)
raw_auth = st.sampled_from([b"Bearer " + EDGE_KEY.encode(), b"Bearer \xff\xfe" + EDGE_KEY.encode(),
                            b"Bearer " + EDGE_KEY.encode() + b"\xc3", b"\xff", b""])


def send_raw(client: Client, path: str, body: bytes, header_list: list[tuple[str, str | bytes]], authorization: bytes,
             ) -> Answer:
    """A request whose header values may be any bytes (``http.client`` sends bytes values as they are)."""
    connection = http.client.HTTPConnection(client._host, client._port, timeout=20)
    try:
        connection.putrequest("POST", path, skip_accept_encoding=True)
        for name, value in header_list:
            connection.putheader(name, value)
        if authorization:
            connection.putheader("Authorization", authorization)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return Answer(response.status, response.read())
    finally:
        connection.close()


@pytest.mark.parametrize("path", FORWARDED_PATHS)
def test_hostile_bytes_get_no_5xx_and_no_traceback(client: Client, path: str, caplog: pytest.LogCaptureFixture,
                                                    ) -> None:
    caplog.set_level(logging.INFO)

    @FUZZ
    @given(body=hostile_bodies, header_list=flood, authorization=raw_auth)
    def check(body: bytes, header_list: list[tuple[str, str | bytes]], authorization: bytes) -> None:
        caplog.clear()  # each example answers for its own log lines
        response = send_raw(client, path, body, header_list, authorization)
        event(f"status {response.status_code}")
        assert response.status_code < 500, (response.status_code, response.text[:500])
        if response.status_code >= 400:
            assert_api_error(path, response)
        if authorization != b"Bearer " + EDGE_KEY.encode():
            assert response.status_code == 401
        tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
        assert not tracebacks, [r.getMessage() for r in tracebacks]

    check()


@pytest.mark.parametrize("header", [b"x-session-id: \x00", b"x-custom: a\x7fb", b"x-big: " + b"v" * 20_000,
                                    b"Authorization: Bearer " + EDGE_KEY.encode() + b"\x01"])
def test_malformed_http_is_refused_without_a_traceback(background_stack: BackgroundStack, header: bytes,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Bytes HTTP does not allow are refused by the server before the edge's handlers (a 4xx), and logged as one
    line without a traceback or the header's value."""
    caplog.set_level(logging.INFO)
    host, port = background_stack.edge.host, background_stack.edge.port
    with socket.create_connection((host, port), timeout=20) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: edge\r\n" + header
                     + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer[:300]
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], caplog.text
    assert "refused a malformed request" in caplog.text and EDGE_KEY not in caplog.text

"""Random bodies, headers and query strings to every endpoint of the edge: no 5xx, and every error in the shape of
the API the client called (OpenAI's ``{"error": {...}}``, Anthropic's ``{"type": "error", ...}``)."""

from __future__ import annotations

import http.client
import json
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
    if path == "/v1/messages":
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


def test_every_forwarded_endpoint_is_fuzzed(background_stack: BackgroundStack) -> None:
    assert routes(background_stack, "POST") == sorted(FORWARDED_PATHS)


FORWARDED_PATHS = ["/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/messages"]


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

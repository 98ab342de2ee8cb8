"""Egress proxies: an account's or a pool's ``proxy:``, the environment's proxy variables, and what is never shown.

A real forward proxy runs on 127.0.0.1 (tests/edge/forward_proxy.py). The fake upstream speaks plain HTTP, so what
goes through the proxy are absolute-URI requests; aiohttp tunnels with CONNECT only to https upstreams, which these
tests do not run.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from yarl import URL

from fake_upstream import FakeUpstream
from poolgate.config import parse_config
from poolgate.config.loader import ConfigError
from poolgate.secrets import redact_url
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from proxy_edge.egress import Egress, EgressProxyError
from selector_service.app import start_selector
from tests.edge.conftest import AUTH, CHAT, Stack, StackFactory
from tests.edge.forward_proxy import ForwardProxy, start_forward_proxy
from tests.support import free_port

PROXY_USER, PROXY_PASSWORD = "edge-user", "pr0xy-Secret-9f3a"
_ENV_NAMES = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy",
              "all_proxy", "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def _no_environment_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests set the proxy variables they mean; none of the machine's."""
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def proxy() -> AsyncIterator[ForwardProxy]:
    server = await start_forward_proxy(hosts={"upstream.invalid": "127.0.0.1"})
    yield server
    await server.stop()


@pytest.fixture
async def locked_proxy() -> AsyncIterator[ForwardProxy]:
    """A proxy that asks for PROXY_USER and PROXY_PASSWORD."""
    server = await start_forward_proxy((PROXY_USER, PROXY_PASSWORD))
    yield server
    await server.stop()


def fake_authority(stack_or_url: Stack | str) -> str:
    url = stack_or_url if isinstance(stack_or_url, str) else stack_or_url.fake.url
    return url.removeprefix("http://")


async def chat(stack: Stack, times: int = 1) -> list[str]:
    """``times`` chat requests; the account that served each."""
    client = stack.openai()
    served = []
    for _ in range(times):
        response = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=CHAT)
        assert response.parse().choices[0].message.content.startswith("Hello!")
        served.append(response.headers["x-poolgate-account"])
    return served


async def test_an_accounts_proxy_carries_its_calls_and_only_its_own(make_stack: StackFactory,
                                                                    proxy: ForwardProxy) -> None:
    stack = await make_stack(openai_accounts=f"""
        - {{name: proxied, key: sk-good-proxied-01, proxy: "{proxy.url()}"}}
        - {{name: direct, key: sk-good-direct-002}}
    """)
    served = await chat(stack, 6)
    assert served.count("openai/proxied") == 3 and served.count("openai/direct") == 3  # round robin
    assert proxy.upstreams == {fake_authority(stack): 3}
    assert stack.fake.stats.requests["sk-good-proxied-01"] == 3
    assert stack.fake.stats.requests["sk-good-direct-002"] == 3
    assert proxy.authorizations == [None] * 3


async def test_a_pools_proxy_applies_to_its_accounts_unless_one_says_direct(make_stack: StackFactory,
                                                                            proxy: ForwardProxy) -> None:
    stack = await make_stack(pool_settings=f'proxy: "{proxy.url()}"', openai_accounts="""
        - {name: first, key: sk-good-first-001}
        - {name: second, key: sk-good-second-02}
        - {name: own, key: sk-good-own-00003, proxy: direct}
    """)
    served = await chat(stack, 6)
    assert sorted(set(served)) == ["openai/first", "openai/own", "openai/second"]
    assert proxy.upstreams == {fake_authority(stack): 4}
    assert stack.fake.stats.requests["sk-good-own-00003"] == 2
    # The other pool sets no proxy: direct.
    client = stack.anthropic()
    await client.messages.create(model="claude-sonnet-4", max_tokens=20,
                                 messages=[{"role": "user", "content": "Say hello"}])
    assert sum(proxy.upstreams.values()) == 4


async def test_streams_go_through_the_proxy_and_no_log_line_shows_its_credentials(
    make_stack: StackFactory, locked_proxy: ForwardProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="poolgate")
    stack = await make_stack(pool_settings=f'proxy: "{locked_proxy.url(PROXY_USER, PROXY_PASSWORD)}"')
    client = stack.openai()
    for _ in range(2):
        chunks = [c async for c in await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT,
                                                                          stream=True)]
        assert "".join(c.choices[0].delta.content or "" for c in chunks).startswith("Hello!")
    assert locked_proxy.upstreams == {fake_authority(stack): 2} and locked_proxy.refused == 0
    lines = [r.getMessage() for r in caplog.records]
    assert lines and not any(PROXY_PASSWORD in line or PROXY_USER in line for line in lines)


async def test_a_proxy_with_credentials_gets_them_and_they_are_never_shown(
    make_stack: StackFactory, locked_proxy: ForwardProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wr0ng-Secret-77c1"
    stack = await make_stack(openai_accounts=f"""
        - {{name: locked, key: sk-good-locked-01, proxy: "{locked_proxy.url(PROXY_USER, PROXY_PASSWORD)}"}}
        - {{name: mistyped, key: sk-good-mistyped-2, proxy: "{locked_proxy.url(PROXY_USER, wrong)}"}}
    """, anthropic_accounts=f'- {{name: only, key: sk-good-only-0001, proxy: "{locked_proxy.url(PROXY_USER, wrong)}"}}')
    served = await chat(stack, 4)
    # The mistyped credentials get a 407: a network error of that account, which fails over to the other.
    assert set(served) == {"openai/locked"}
    assert stack.fake.stats.requests["sk-good-locked-01"] == 4
    assert stack.fake.stats.requests["sk-good-mistyped-2"] == 0
    basic = "Basic " + base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    assert locked_proxy.authorizations.count(basic) == 4
    assert locked_proxy.refused >= 1
    accounts = await stack.accounts()
    assert accounts["openai/mistyped"]["failures_total"] >= 1
    # The anthropic pool has only an account with mistyped credentials: the client is told why, without them.
    status, body, _ = await stack.post("/v1/messages", {
        "model": "claude-sonnet-4", "max_tokens": 20, "messages": [{"role": "user", "content": "Say hello"}]})
    assert status == 503
    shown = f"http://…@127.0.0.1:{locked_proxy.port}"
    assert f"through the proxy {shown}: the proxy asks for credentials (407" in body["error"]["message"]
    async with stack.http.get(f"{stack.url}/v1/accounts/stats", headers=AUTH) as response:
        stats = await response.text()
    text = "\n".join(r.getMessage() for r in caplog.records) + stats + repr(stack.config) + str(body)
    for secret in (PROXY_PASSWORD, wrong, basic.split()[1], PROXY_USER):
        assert secret not in text


async def test_a_proxy_that_is_down_fails_over_and_alone_answers_in_the_clients_shape(
    make_stack: StackFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="poolgate.edge")
    down = f"http://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:{free_port()}"
    stack = await make_stack(
        openai_accounts=f"""
            - {{name: behind-down, key: sk-good-behind-01, priority: high, proxy: "{down}"}}
            - {{name: direct, key: sk-good-direct-002}}
        """,
        anthropic_accounts=f'- {{name: only, key: sk-good-only-0001, proxy: "{down}"}}')
    assert await chat(stack, 2) == ["openai/direct"] * 2
    assert stack.fake.stats.requests["sk-good-behind-01"] == 0
    lines = [r.getMessage() for r in caplog.records]
    assert any("openai/behind-down network error" in line and "trying openai/direct" in line for line in lines), lines

    status, body, _ = await stack.post("/v1/messages", {
        "model": "claude-sonnet-4", "max_tokens": 20, "messages": [{"role": "user", "content": "Say hello"}]})
    assert status == 503
    assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    message = body["error"]["message"]
    assert "anthropic/only" in message and f"through the proxy http://…@127.0.0.1:{down.rsplit(':', 1)[1]}" in message
    assert PROXY_PASSWORD not in message and PROXY_USER not in message
    assert not any(PROXY_PASSWORD in r.getMessage() for r in caplog.records)


async def test_the_environments_proxy_is_honoured_except_for_loopback_and_no_proxy(
    make_stack: StackFactory, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, fake_upstream: FakeUpstream
) -> None:
    port = fake_authority(fake_upstream.url).rpartition(":")[2]
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", "skipped.invalid")
    stack = await make_stack(
        pools=f"""
            named:
              base_url: http://upstream.invalid:{port}/v1
              accounts: [{{name: a, key: sk-good-named-0001}}]
            skipped:
              base_url: http://skipped.invalid:{port}/v1
              accounts: [{{name: a, key: sk-good-skipped-001}}]
        """,
        models="""
            named-*: named
            skipped-*: skipped
        """)
    # (What else the proxy sees is the test's own clients, which honour HTTP_PROXY too: not counted here.)
    status, body, _ = await stack.post("/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT})
    assert status == 200, body  # the openai pool's upstream is on 127.0.0.1: never the environment's proxy
    assert proxy.upstreams[fake_authority(stack)] == 0
    status, body, headers = await stack.post("/v1/chat/completions", {"model": "named-model", "messages": CHAT})
    assert status == 200, body
    assert headers["x-poolgate-account"] == "named/a"
    assert proxy.upstreams[f"upstream.invalid:{port}"] == 1
    # NO_PROXY names it: direct, where the name does not resolve.
    status, body, _ = await stack.post("/v1/chat/completions", {"model": "skipped-model", "messages": CHAT})
    assert status == 503 and "skipped/a" in body["error"]["message"]
    assert proxy.upstreams[f"skipped.invalid:{port}"] == 0
    assert stack.fake.stats.requests["sk-good-named-0001"] == 1 and not stack.fake.stats.requests["sk-good-skipped-001"]


async def test_proxy_from_env_false_ignores_the_environment(
    make_stack: StackFactory, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, fake_upstream: FakeUpstream
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url())
    port = fake_authority(fake_upstream.url).rpartition(":")[2]
    stack = await make_stack(
        edge="proxy_from_env: false",
        pools=f"""
            named:
              base_url: http://upstream.invalid:{port}/v1
              accounts:
                - {{name: a, key: sk-good-named-0001}}
                - {{name: b, key: sk-good-named-0002, proxy: "{proxy.url()}"}}
        """,
        models="named-*: named")
    served = []
    for _ in range(4):
        status, body, headers = await stack.post("/v1/chat/completions", {"model": "named-model", "messages": CHAT})
        assert status == 200, body
        served.append(headers["x-poolgate-account"])
    # a goes direct (and cannot resolve the name): every request ends on b, through the proxy its config names.
    assert set(served) == {"named/b"}
    assert proxy.upstreams[f"upstream.invalid:{port}"] == 4
    assert stack.fake.stats.requests["sk-good-named-0002"] == 4 and not stack.fake.stats.requests["sk-good-named-0001"]


# -- config and the resolution, without servers --


def test_proxy_settings_are_checked_with_their_path_and_credentials_are_not_echoed() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config("""
pools:
  openai:
    proxy: socks5://someone:hunter2hunter2@10.0.0.1:1080
    accounts:
      - {name: a, key: sk-aaaaaaaaaaaa}
      - {name: b, key: sk-bbbbbbbbbbbb, proxy: "ftp://someone:hunter2hunter2@10.0.0.1:21"}
      - {name: c, key: sk-cccccccccccc, proxy: "http://someone:hunter2hunter2@10.0.0.1:99999"}
      - {name: d, key: sk-dddddddddddd, proxy: 3128}
""")
    errors = raised.value.errors
    text = str(raised.value)
    assert "hunter2" not in text and "someone" not in text
    assert any(e.startswith("pools.openai.proxy: SOCKS proxies are not supported, got 'socks5://…@10.0.0.1:1080'")
               for e in errors), errors
    assert any(e.startswith("pools.openai.accounts[1].proxy: must be an http:// or https:// URL") for e in errors)
    assert "pools.openai.accounts[2].proxy: the port must be from 1 to 65535, got 'http://…@10.0.0.1:99999'" in errors
    assert any(e.startswith("pools.openai.accounts[3].proxy: must be a string") for e in errors)


RESOLUTION_CONFIG = """
pools:
  openai:
    base_url: https://api.openai.com/v1
    proxy: http://pool-proxy:3128
    accounts:
      - {name: own, key: sk-aaaaaaaaaaaa, proxy: "http://u:p@own-proxy:8080"}
      - {name: inherits, key: sk-bbbbbbbbbbbb}
      - {name: direct, key: sk-cccccccccccc, proxy: direct}
  plain:
    base_url: https://api.example.com/v1
    accounts: [{name: a, key: sk-dddddddddddd}]
"""


async def test_each_lease_carries_its_accounts_proxy_else_its_pools(tmp_path: Path) -> None:
    handle = await start_selector(parse_config(RESOLUTION_CONFIG), listen="127.0.0.1:0",
                                  database=str(tmp_path / "s.db"))
    try:
        async with grpc.aio.insecure_channel(handle.address) as channel:
            stub = selector_pb2_grpc.SelectorStub(channel)

            async def proxy_of(pool: str, account: str, others: tuple[str, ...] = ()) -> str:
                lease = await stub.SelectAccount(pb.SelectAccountRequest(
                    pool=pool, exclude_account_ids=[f"{pool}/{o}" for o in others]), timeout=2)
                await stub.ReportOutcome(pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=pb.OUTCOME_SUCCESS),
                                         timeout=2)
                assert lease.account_name == account
                return lease.proxy

            assert await proxy_of("openai", "own", ("inherits", "direct")) == "http://u:p@own-proxy:8080"
            assert await proxy_of("openai", "inherits", ("own", "direct")) == "http://pool-proxy:3128"
            assert await proxy_of("openai", "direct", ("own", "inherits")) == "direct"
            assert await proxy_of("plain", "a") == ""
    finally:
        await handle.stop(grace=0)


def test_the_edge_goes_through_the_leases_proxy_else_the_environments() -> None:
    env = {"HTTPS_PROXY": "corp-proxy:8080", "NO_PROXY": "internal.example,10.0.0.0/8", "HTTP_PROXY": ""}
    egress = Egress(True, env)
    api = URL("https://api.openai.com/v1/chat/completions")

    def proxy(setting: str, url: URL = api) -> str:
        route = egress.route(setting, url)
        return route.shown if route is not None else ""

    assert proxy("http://u:p@own-proxy:8080") == "http://…@own-proxy:8080"
    assert egress.route("http://pool-proxy:3128", api) is egress.route("http://pool-proxy:3128", api)  # kept
    assert proxy("direct") == ""
    assert proxy("", URL("https://api.example.com/v1/x")) == "http://corp-proxy:8080"
    assert proxy("", URL("https://a.internal.example/v1/x")) == ""
    assert proxy("", URL("https://10.1.2.3/v1/x")) == ""
    assert proxy("", URL("https://127.0.0.1:8443/v1/x")) == proxy("", URL("https://localhost/")) == ""
    assert proxy("", URL("http://api.example.com/v1/x")) == ""  # no HTTP_PROXY
    assert proxy("http://pool-proxy:3128", URL("https://127.0.0.1:8443/v1/x")) == "http://pool-proxy:3128"
    assert "u:p" not in egress.describe() and "corp-proxy:8080" in egress.describe()
    assert Egress(False, env).route("", URL("https://api.example.com/v1/x")) is None
    with pytest.raises(EgressProxyError, match="cannot be used"):
        egress.route("socks5://u:p@elsewhere:1080", api)


def test_redact_url() -> None:
    assert redact_url("http://user:pass@proxy:3128") == "http://…@proxy:3128"
    assert redact_url("https://proxy.example:443") == "https://proxy.example:443"
    assert redact_url("user:p@ss@proxy:1") == "…@proxy:1"



async def test_the_model_lists_lookup_takes_the_accounts_proxy(make_stack: StackFactory, proxy: ForwardProxy) -> None:
    """GET /v1/models asks a glob's pool's upstream for its models with one account: through that account's proxy."""
    stack = await make_stack(pool_settings=f'proxy: "{proxy.url()}"')
    names = [model.id async for model in stack.openai().models.list()]
    assert "gpt-4o-mini" in names  # listed by the upstream, for the gpt-* pattern
    assert proxy.upstreams == {fake_authority(stack): 1}

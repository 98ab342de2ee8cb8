"""The edge's /metrics as a Prometheus operator reads it: no ``_created`` series, the build and the process, and the
OpenTelemetry GenAI client series (as a Prometheus exporter names them) beside poolgate's own."""

from __future__ import annotations

import platform
import sys

from prometheus_client import generate_latest

from poolgate import __version__
from proxy_edge.metrics import EdgeMetrics
from tests.edge.conftest import CHAT, Stack, StackFactory
from tests.edge.test_observability import samples

GENAI_CHAT_OPENAI = 'gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-*"'
GENAI_CHAT_ANTHROPIC = 'gen_ai_operation_name="chat",gen_ai_provider_name="anthropic",gen_ai_request_model="claude-*"'


async def scrape(stack: Stack) -> str:
    async with stack.http.get(f"{stack.url}/metrics") as response:
        assert response.status == 200
        return await response.text()


async def chat_and_message(stack: Stack) -> None:
    """One chat completion through the OpenAI SDK, one message through Anthropic's."""
    completion = await stack.openai().chat.completions.create(model="gpt-4o-mini", messages=CHAT)  # type: ignore[arg-type]
    assert completion.choices[0].message.content
    message = await stack.anthropic().messages.create(model="claude-x", max_tokens=16, messages=CHAT)  # type: ignore[arg-type]
    assert message.content


async def test_no_created_series_and_the_build_and_the_process(stack: Stack) -> None:
    await chat_and_message(stack)
    text = await scrape(stack)
    assert not [line for line in text.splitlines() if "_created" in line.partition("{")[0].partition(" ")[0]]
    got = samples(text)
    assert got[f'poolgate_build_info{{python="{platform.python_version()}",version="{__version__}"}}'] == 1
    assert "python_info{" in text
    if sys.platform == "linux":
        assert got["process_cpu_seconds_total"] > 0
        assert got["process_resident_memory_bytes"] > 0


async def test_genai_duration_series_count_the_requests_beside_poolgates_own(stack: Stack) -> None:
    await chat_and_message(stack)
    await chat_and_message(stack)
    got = samples(await scrape(stack))
    assert got[f'gen_ai_client_operation_duration_seconds_count{{error_type="",{GENAI_CHAT_OPENAI}}}'] == 2
    assert got[f'gen_ai_client_operation_duration_seconds_count{{error_type="",{GENAI_CHAT_ANTHROPIC}}}'] == 2
    # The GenAI conventions' bucket boundaries.
    assert f'gen_ai_client_operation_duration_seconds_bucket{{error_type="",{GENAI_CHAT_OPENAI},le="81.92"}}' in got
    # poolgate's own series are as they were.
    assert got['poolgate_edge_requests_total{client="other",model="gpt-*",pool="openai",status="200"}'] == 2
    assert got['poolgate_edge_requests_total{client="other",model="claude-*",pool="anthropic",status="200"}'] == 2
    assert got['poolgate_edge_request_duration_seconds_count{pool="openai"}'] == 2
    assert (got['poolgate_edge_request_duration_seconds_sum{pool="openai"}']
            == got[f'gen_ai_client_operation_duration_seconds_sum{{error_type="",{GENAI_CHAT_OPENAI}}}'])


async def test_embeddings_and_failures_are_labelled(make_stack: StackFactory) -> None:
    stack = await make_stack(anthropic_accounts="- {name: revoked, key: sk-ant-unauthorized-01}")
    status, _body, _headers = await stack.post("/v1/embeddings", {"model": "text-embedding-3-small", "input": "hi"})
    assert status == 200
    status, _body, _headers = await stack.post("/v1/messages", {"model": "claude-x", "max_tokens": 8,
                                                                "messages": CHAT})
    assert status == 503
    got = samples(await scrape(stack))
    assert got['gen_ai_client_operation_duration_seconds_count{error_type="",gen_ai_operation_name="embeddings",'
               'gen_ai_provider_name="openai",gen_ai_request_model="text-embedding-*"}'] == 1
    assert got[f'gen_ai_client_operation_duration_seconds_count{{error_type="503",{GENAI_CHAT_ANTHROPIC}}}'] == 1


async def test_token_counting_is_no_genai_operation(stack: Stack) -> None:
    status, _body, _headers = await stack.post("/v1/messages/count_tokens", {"model": "claude-x", "messages": CHAT})
    assert status == 200
    text = await scrape(stack)
    assert "gen_ai_client_operation_duration_seconds_count{" not in text


def test_token_usage_by_type_with_the_conventions_buckets() -> None:
    metrics = EdgeMetrics(["openai", "anthropic"], {"openai": "openai", "anthropic": "anthropic"})
    metrics.token_usage("chat", "anthropic", "claude-*", 30, 5)
    metrics.token_usage("embeddings", "openai", "text-embedding-*", 7, 0)
    got = samples(generate_latest(metrics.registry).decode())
    labels = f'{GENAI_CHAT_ANTHROPIC},gen_ai_token_type='
    assert got[f'gen_ai_client_token_usage_sum{{{labels}"input"}}'] == 30
    assert got[f'gen_ai_client_token_usage_sum{{{labels}"output"}}'] == 5
    assert got[f'gen_ai_client_token_usage_bucket{{{labels}"input",le="64.0"}}'] == 1
    assert got[f'gen_ai_client_token_usage_bucket{{{labels}"input",le="16.0"}}'] == 0
    embeddings = ('gen_ai_operation_name="embeddings",gen_ai_provider_name="openai",'
                  'gen_ai_request_model="text-embedding-*",gen_ai_token_type=')
    assert got[f'gen_ai_client_token_usage_count{{{embeddings}"input"}}'] == 1
    assert f'gen_ai_client_token_usage_count{{{embeddings}"output"}}' not in got  # an embedding has no output


async def test_token_usage_after_a_chat_and_a_message(stack: Stack) -> None:
    await chat_and_message(stack)
    got = samples(await scrape(stack))
    for labels in (GENAI_CHAT_OPENAI, GENAI_CHAT_ANTHROPIC):
        for token_type in ("input", "output"):
            assert got[f'gen_ai_client_token_usage_count{{{labels},gen_ai_token_type="{token_type}"}}'] == 1
            assert got[f'gen_ai_client_token_usage_sum{{{labels},gen_ai_token_type="{token_type}"}}'] > 0

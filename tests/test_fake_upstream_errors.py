"""The fake upstream's quota and request errors look like the real providers' and are read as such by the official
SDKs: out of credit (``nocredit``), a prompt over the context window (``contextlimit``), Gemini's quota 429
(``gemini429``), a spent subscription window (``windowN``) and one nearly spent (``lowwindow``); scripts per model,
and requests counted per model."""

from __future__ import annotations

import re
import time
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from fake_upstream import FakeUpstream
from fake_upstream.limits import go_duration
from poolgate.rate_limit_times import parse_header_duration

CHAT: Any = [{"role": "user", "content": "Say hi."}]
OPUS, SONNET = "claude-opus-5-5", "claude-sonnet-4-6"
UNIFIED = "anthropic-ratelimit-unified-"


def anthropic_client(fake: FakeUpstream, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.url, api_key=key, max_retries=0)


def openai_client(fake: FakeUpstream, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{fake.url}/v1", api_key=key, max_retries=0)


async def claude(fake: FakeUpstream, key: str, model: str = SONNET) -> anthropic.types.Message:
    async with anthropic_client(fake, key) as client:
        return await client.messages.create(model=model, max_tokens=8, messages=CHAT)


async def anthropic_failure(fake: FakeUpstream, key: str, model: str = SONNET) -> anthropic.APIStatusError:
    with pytest.raises(anthropic.APIStatusError) as caught:
        await claude(fake, key, model)
    return caught.value


async def chat(fake: FakeUpstream, key: str, model: str = "gpt-4o") -> openai.types.chat.ChatCompletion:
    async with openai_client(fake, key) as client:
        return await client.chat.completions.create(model=model, messages=CHAT)


async def openai_failure(fake: FakeUpstream, key: str, model: str = "gpt-4o") -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        await chat(fake, key, model)
    return caught.value


async def fake_json(fake: FakeUpstream, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.request(method, f"{fake.url}{path}", json=body) as answer:
        return answer.status, await answer.json()


def said(error: openai.APIStatusError) -> str:
    """The error's own message (the SDK's ``message`` prefixes the status)."""
    message: str = error.body["message"]  # type: ignore[index]
    return message


def assert_anthropic_body(error: anthropic.APIStatusError, kind: str, message: str) -> None:
    assert error.body == {"type": "error", "error": {"type": kind, "message": message},
                          "request_id": error.response.headers["request-id"]}
    assert error.request_id == error.response.headers["request-id"]


async def test_nocredit_is_openais_insufficient_quota(fake_upstream: FakeUpstream) -> None:
    error = await openai_failure(fake_upstream, "sk-nocredit-1")
    assert isinstance(error, openai.RateLimitError) and error.status_code == 429
    assert error.code == "insufficient_quota" and error.type == "insufficient_quota" and error.param is None
    assert error.body == {
        "message": "You exceeded your current quota, please check your plan and billing details. For more "
                   "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/"
                   "api-errors.",
        "type": "insufficient_quota", "param": None, "code": "insufficient_quota"}
    assert "retry-after" not in error.response.headers
    assert error.response.headers["x-request-id"].startswith("req_")


async def test_nocredit_is_anthropics_credit_balance_400(fake_upstream: FakeUpstream) -> None:
    error = await anthropic_failure(fake_upstream, "sk-ant-nocredit-1")
    assert isinstance(error, anthropic.BadRequestError) and error.status_code == 400
    assert_anthropic_body(error, "invalid_request_error", "Your credit balance is too low to access the Anthropic "
                          "API. Please go to Plans & Billing to upgrade or purchase credits.")
    assert "retry-after" not in error.response.headers


async def test_contextlimit_is_the_clients_error_in_each_apis_words(fake_upstream: FakeUpstream) -> None:
    error = await openai_failure(fake_upstream, "sk-contextlimit-1")
    assert isinstance(error, openai.BadRequestError)
    assert (error.code, error.type, error.param) == ("context_length_exceeded", "invalid_request_error", "messages")
    match = re.fullmatch(r"This model's maximum context length is 128000 tokens\. However, your messages resulted "
                         r"in (\d+) tokens\. Please reduce the length of the messages\.", said(error))
    assert match and int(match.group(1)) > 128000

    async with openai_client(fake_upstream, "sk-contextlimit-1") as client:
        with pytest.raises(openai.BadRequestError) as responses:
            await client.responses.create(model="gpt-5.5", input="Say hi.")
    assert (responses.value.code, responses.value.param) == ("context_length_exceeded", "input")
    assert said(responses.value) == ("Your input exceeds the context window of this model. Please adjust your "
                                       "input and try again.")

    claude_error = await anthropic_failure(fake_upstream, "sk-ant-contextlimit-1")
    assert isinstance(claude_error, anthropic.BadRequestError)
    message = claude_error.body["error"]["message"]  # type: ignore[index]
    assert claude_error.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    match = re.fullmatch(r"prompt is too long: (\d+) tokens > 200000 maximum", message)
    assert match and int(match.group(1)) > 200000


async def test_gemini429_is_a_list_of_one_resource_exhausted_error(fake_upstream: FakeUpstream) -> None:
    error = await openai_failure(fake_upstream, "gemini429-key", model="gemini-2.5-flash")
    assert isinstance(error, openai.RateLimitError) and error.code is None
    assert error.body == [{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                                     "status": "RESOURCE_EXHAUSTED"}}]
    assert not [name for name in error.response.headers if name.startswith(("x-ratelimit", "retry-after"))]


async def test_window_is_anthropics_rejected_subscription_window(fake_upstream: FakeUpstream) -> None:
    before = int(time.time())
    error = await anthropic_failure(fake_upstream, "sk-ant-oat-window30")
    after = int(time.time())
    assert isinstance(error, anthropic.RateLimitError)
    assert_anthropic_body(error, "rate_limit_error",
                          "This request would exceed your account's rate limit. Please try again later.")
    headers = error.response.headers
    assert headers["retry-after"] == "30"
    assert headers[f"{UNIFIED}status"] == headers[f"{UNIFIED}5h-status"] == "rejected"
    assert before + 30 <= int(headers[f"{UNIFIED}reset"]) <= after + 30
    assert headers[f"{UNIFIED}5h-reset"] == headers[f"{UNIFIED}reset"]
    assert headers[f"{UNIFIED}representative-claim"] == "five_hour"
    assert float(headers[f"{UNIFIED}5h-utilization"]) == 1.0
    assert headers[f"{UNIFIED}7d-status"] == "allowed" and int(headers[f"{UNIFIED}7d-reset"]) > after
    assert not [name for name in headers if name.startswith("anthropic-ratelimit-requests")]


async def test_window_is_openais_spent_request_limit(fake_upstream: FakeUpstream) -> None:
    error = await openai_failure(fake_upstream, "sk-window3600")
    assert isinstance(error, openai.RateLimitError)
    assert (error.code, error.type) == ("rate_limit_exceeded", "requests")
    assert said(error).startswith("Rate limit reached for gpt-4o in organization org-fake on requests per day (RPD)")
    assert "Please try again in 1h0m0s." in said(error)
    headers = error.response.headers
    assert headers["x-ratelimit-remaining-requests"] == "0" and headers["x-ratelimit-limit-requests"] == "10000"
    assert headers["x-ratelimit-reset-requests"] == "1h0m0s"
    assert parse_header_duration(headers["x-ratelimit-reset-requests"]) == 3600
    assert "retry-after" not in headers
    short = await openai_failure(fake_upstream, "sk-window30")
    assert short.response.headers["x-ratelimit-reset-requests"] == "30s"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (30, "30s"), (90, "1m30s"), (3600, "1h0m0s"),
                                              (18000, "5h0m0s"), (3725, "1h2m5s")])
def test_reset_times_are_written_as_openai_writes_them(seconds: int, text: str) -> None:
    assert go_duration(seconds) == text
    assert parse_header_duration(text) == seconds


async def test_lowwindow_answers_but_says_the_window_is_nearly_spent(fake_upstream: FakeUpstream) -> None:
    async with anthropic_client(fake_upstream, "sk-ant-oat-lowwindow") as client:
        raw = await client.messages.with_raw_response.create(model=SONNET, max_tokens=8, messages=CHAT)
    assert (await raw.parse()).content[0].type == "text"
    assert raw.headers[f"{UNIFIED}status"] == raw.headers[f"{UNIFIED}5h-status"] == "allowed_warning"
    assert float(raw.headers[f"{UNIFIED}5h-utilization"]) == 0.95
    assert float(raw.headers[f"{UNIFIED}5h-surpassed-threshold"]) == 0.9
    assert abs(int(raw.headers[f"{UNIFIED}reset"]) - (time.time() + 3600)) < 5
    assert "retry-after" not in raw.headers

    async with openai_client(fake_upstream, "sk-lowwindow") as client:
        answer = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT)
    assert answer.parse().choices[0].message.content
    limit = int(answer.headers["x-ratelimit-limit-requests"])
    assert int(answer.headers["x-ratelimit-remaining-requests"]) == limit * 5 // 100
    assert parse_header_duration(answer.headers["x-ratelimit-reset-requests"]) == 3600


async def test_a_models_script_applies_to_that_model_only(fake_upstream: FakeUpstream) -> None:
    key = "sk-ant-oat-fine-1"
    fake_upstream.script(key, "window60", model=OPUS)
    error = await anthropic_failure(fake_upstream, key, OPUS)
    assert isinstance(error, anthropic.RateLimitError) and error.response.headers["retry-after"] == "60"
    assert (await claude(fake_upstream, key, SONNET)).content  # the key's other models answer as before

    fake_upstream.script(key, "nocredit")  # key-wide: the model's own script still wins for it
    assert isinstance(await anthropic_failure(fake_upstream, key, OPUS), anthropic.RateLimitError)
    assert isinstance(await anthropic_failure(fake_upstream, key, SONNET), anthropic.BadRequestError)

    fake_upstream.script(key, None, model=OPUS)  # undoes the model's script only: the key-wide one applies
    assert isinstance(await anthropic_failure(fake_upstream, key, OPUS), anthropic.BadRequestError)
    fake_upstream.script(key, None)
    assert (await claude(fake_upstream, key, OPUS)).content


async def test_a_models_script_stands_for_the_key_in_everything_it_answers(fake_upstream: FakeUpstream) -> None:
    fake_upstream.script("sk-fine-2", "jsonstream", model="gpt-4o-mini")
    async with aiohttp.ClientSession() as session:
        for model, kind in (("gpt-4o-mini", "application/json"), ("gpt-4o", "text/event-stream")):
            async with session.post(f"{fake_upstream.url}/v1/chat/completions",
                                    headers={"Authorization": "Bearer sk-fine-2"},
                                    json={"model": model, "messages": CHAT, "stream": True}) as answer:
                assert answer.status == 200 and answer.content_type == kind
                await answer.read()


async def test_scripts_per_model_over_http(fake_upstream: FakeUpstream) -> None:
    key = "sk-fine-3"
    status, body = await fake_json(fake_upstream, "POST", "/_fake/script",
                                   {"key": key, "words": "contextlimit", "model": "gpt-4o"})
    assert status == 200 and body == {"scripted": 1}
    assert isinstance(await openai_failure(fake_upstream, key, "gpt-4o"), openai.BadRequestError)
    assert (await chat(fake_upstream, key, "gpt-4o-mini")).choices

    status, body = await fake_json(fake_upstream, "POST", "/_fake/script", {"key": key, "words": "throttled"})
    assert status == 200 and body == {"scripted": 2}
    assert isinstance(await openai_failure(fake_upstream, key, "gpt-4o"), openai.BadRequestError)
    assert isinstance(await openai_failure(fake_upstream, key, "gpt-4o-mini"), openai.RateLimitError)

    status, body = await fake_json(fake_upstream, "POST", "/_fake/script", {"key": key, "words": None,
                                                                            "model": "gpt-4o"})
    assert status == 200 and body == {"scripted": 1}
    assert isinstance(await openai_failure(fake_upstream, key, "gpt-4o"), openai.RateLimitError)
    status, body = await fake_json(fake_upstream, "POST", "/_fake/script", {"key": key, "words": None})
    assert status == 200 and body == {"scripted": 0}
    assert (await chat(fake_upstream, key, "gpt-4o")).choices

    for wrong in ({"key": key, "words": "ok", "model": 4}, {"key": key, "words": 1}, {"words": "ok"}, ["x"]):
        status, body = await fake_json(fake_upstream, "POST", "/_fake/script", wrong)
        assert status == 400 and "model" in body["error"], wrong


async def test_stats_count_requests_per_key_and_model(fake_upstream: FakeUpstream) -> None:
    await chat(fake_upstream, "sk-fine-4", "gpt-4o")
    await chat(fake_upstream, "sk-fine-4", "gpt-4o")
    await openai_failure(fake_upstream, "sk-nocredit-4", "gpt-4o-mini")
    await claude(fake_upstream, "sk-ant-fine-4", OPUS)
    async with aiohttp.ClientSession() as session, session.post(
            f"{fake_upstream.url}/v1/chat/completions", headers={"Authorization": "Bearer sk-fine-4"},
            data=b"not json") as answer:
        assert answer.status == 400
    status, stats = await fake_json(fake_upstream, "GET", "/_fake/stats")
    assert status == 200
    assert stats["models"] == {"sk-fine-4": {"gpt-4o": 2}, "sk-nocredit-4": {"gpt-4o-mini": 1},
                               "sk-ant-fine-4": {OPUS: 1}}
    assert stats["requests"]["sk-fine-4"] == 3  # the body that is not JSON names no model, but is a request
    assert fake_upstream.stats.models["sk-fine-4"] == {"gpt-4o": 2}


@pytest.mark.parametrize(("path", "anthropic_api", "body"), [
    ("/v1/chat/completions", False, {"model": "gpt-4o", "messages": CHAT}),
    ("/v1/responses", False, {"model": "gpt-5.5", "input": "Say hi."}),
    ("/v1/embeddings", False, {"model": "text-embedding-3-small", "input": "hi"}),
    ("/v1/messages", True, {"model": SONNET, "max_tokens": 8, "messages": CHAT}),
    ("/v1/messages/count_tokens", True, {"model": SONNET, "messages": CHAT}),
])
async def test_every_endpoint_answers_the_words(fake_upstream: FakeUpstream, path: str, anthropic_api: bool,
                                                 body: dict[str, Any]) -> None:
    expected = {"nocredit": 400 if anthropic_api else 429, "contextlimit": 400, "gemini429": 429, "window5": 429,
                "lowwindow": 200}
    async with aiohttp.ClientSession() as session:
        for word, status in expected.items():
            headers = {"x-api-key": f"sk-{word}-5", "anthropic-version": "2023-06-01"} if anthropic_api else {
                "Authorization": f"Bearer sk-{word}-5"}
            async with session.post(f"{fake_upstream.url}{path}", headers=headers, json=body) as answer:
                assert answer.status == status, (word, await answer.text())
                if word == "window5" and anthropic_api:
                    assert answer.headers["retry-after"] == "5"
                    assert answer.headers[f"{UNIFIED}status"] == "rejected"
                elif word == "window5":
                    assert answer.headers["x-ratelimit-reset-requests"] == "5s"
                await answer.read()


async def test_rate_limit_headers_count_the_keys_minute_and_limitN_sets_the_limit(fake_upstream: FakeUpstream) -> None:
    """Providers report the requests left in the current minute and when it ends; the count does not keep falling
    over a key's lifetime (a fake that did would rest a busy benchmark's accounts for nothing)."""
    async def headers(key: str) -> Any:
        async with openai_client(fake_upstream, key) as client:
            raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=CHAT)
        return raw.headers

    first, second = await headers("sk-minute-0001"), await headers("sk-minute-0001")
    assert (first["x-ratelimit-limit-requests"], first["x-ratelimit-remaining-requests"]) == ("10000", "9999")
    assert second["x-ratelimit-remaining-requests"] == "9998"
    assert 55 <= parse_header_duration(second["x-ratelimit-reset-requests"]) <= 60  # the minute's end
    custom = await headers("sk-limit3-0002")
    assert (custom["x-ratelimit-limit-requests"], custom["x-ratelimit-remaining-requests"]) == ("3", "2")
    for _ in range(3):
        spent = await headers("sk-limit3-0002")
    assert spent["x-ratelimit-remaining-requests"] == "0"  # reported, not enforced: the answers still come
    fake_upstream.stats.minutes["sk-limit3-0002"] = (time.monotonic() - 61.0, 4)  # that minute is over
    assert (await headers("sk-limit3-0002"))["x-ratelimit-remaining-requests"] == "2"
    async with anthropic_client(fake_upstream, "sk-limit50-0003") as client:
        message = await client.messages.with_raw_response.create(model=SONNET, max_tokens=8, messages=CHAT)
    assert message.headers["anthropic-ratelimit-requests-limit"] == "50"
    assert message.headers["anthropic-ratelimit-requests-remaining"] == "49"

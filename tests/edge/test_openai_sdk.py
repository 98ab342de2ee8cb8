"""The OpenAI SDK against the edge: chat (stream and not), embeddings, responses, models, and client-side errors."""

from __future__ import annotations

import openai
import pytest

from tests.edge.conftest import AUTH, CHAT, Stack, StackFactory


async def test_chat_completion_reports_usage_to_the_selector(stack: Stack) -> None:
    completion = await stack.openai().chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert completion.choices[0].message.content.startswith("Hello!")
    assert completion.usage is not None and completion.usage.completion_tokens == 10
    account = (await stack.accounts())["openai/good"]
    assert account["successes_total"] == 1
    assert account["output_tokens_total"] == completion.usage.completion_tokens
    assert account["input_tokens_total"] == completion.usage.prompt_tokens
    assert account["in_flight"] == 0


async def test_stream_usage_is_reported_but_the_extra_chunk_is_not_passed_on(stack: Stack) -> None:
    stream = await stack.openai().chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! This is the poolgate fake upstream answering your request."
    assert all(c.choices for c in chunks), "the usage-only chunk the edge asked for reached the client"
    account = (await stack.accounts())["openai/good"]
    assert account["output_tokens_total"] == 10
    assert account["successes_total"] == 1


async def test_stream_usage_chunk_is_kept_when_the_client_asks(stack: Stack) -> None:
    stream = await stack.openai().chat.completions.create(
        model="gpt-4o-mini", messages=CHAT, stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 10


async def test_embeddings_and_responses_are_forwarded(stack: Stack) -> None:
    client = stack.openai()
    embeddings = await client.embeddings.create(model="text-embedding-3-small", input=["one", "two"])
    assert [len(e.embedding) for e in embeddings.data] == [8, 8]
    response = await client.responses.create(model="gpt-4o-mini", input="Say hello")
    assert response.output_text.startswith("Hello!")
    events = [event.type async for event in await client.responses.create(
        model="gpt-4o-mini", input="Say hello", stream=True)]
    assert events[0] == "response.created" and events[-1] == "response.completed"
    account = (await stack.accounts())["openai/good"]
    assert account["successes_total"] == 3
    assert account["output_tokens_total"] == 20  # two responses; embeddings have no output tokens


async def test_alias_and_explicit_pool_form_rewrite_the_upstream_model(stack: Stack) -> None:
    client = stack.openai()
    aliased = await client.chat.completions.create(model="alias", messages=CHAT)
    assert aliased.model == "gpt-4o"
    explicit = await client.chat.completions.create(model="openai/o3-mini", messages=CHAT)
    assert explicit.model == "o3-mini"


async def test_models_lists_the_names_a_client_can_ask_for(stack: Stack) -> None:
    """Names, never patterns: what ``models:`` names, and what each pattern's pool's upstream lists that it serves."""
    models = [m async for m in stack.openai().models.list()]
    listed = {(m.id, m.owned_by) for m in models}
    assert {("alias", "openai"), ("gpt-4o", "openai"), ("gpt-4o-mini", "openai"),
            ("text-embedding-3-small", "openai"), ("claude-sonnet-4-6", "anthropic")} <= listed
    assert not any("*" in name for name, _pool in listed)
    assert all(pool == "anthropic" for name, pool in listed if name.startswith("claude-"))


async def test_unknown_model_is_a_404_listing_served_models(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await stack.openai().chat.completions.create(model="llama-3", messages=CHAT)
    message = caught.value.message
    assert "llama-3" in message and "gpt-*" in message and "openai/<model>" in message
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]
    assert stack.fake.stats.requests == {}


async def test_wrong_or_missing_client_key_is_a_401(stack: Stack) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        await stack.openai(api_key="not-the-edge-key").chat.completions.create(model="gpt-4o-mini", messages=CHAT)
    assert "edge.api_keys" in caught.value.message
    status, body, _headers = await stack.post("/v1/chat/completions", {"model": "gpt-4o-mini"}, headers={})
    assert status == 401 and body["error"]["type"] == "invalid_request_error"
    status, _body, _headers = await stack.post(
        "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": CHAT}, headers={"x-api-key": "test-edge-key-0001"})
    assert status == 200
    assert stack.fake.stats.requests.total() == 1


@pytest.mark.parametrize(("body", "status", "code"), [
    (b"{not json", 400, "invalid_json"),
    (b"[1, 2]", 400, "invalid_body"),
    (b'{"messages": []}', 400, "missing_model"),
    (b"", 400, "empty_body"),
    (b'{"model": "claude-sonnet-4-6", "messages": [], "n": 2}', 400, "untranslatable"),
])
async def test_malformed_input_is_rejected_in_openai_shape(stack: Stack, body: bytes, status: int, code: str) -> None:
    got_status, got, _headers = await stack.post("/v1/chat/completions", body)
    assert got_status == status
    assert got["error"]["code"] == code and got["error"]["param"] is None and got["error"]["message"]
    assert stack.fake.stats.requests == {}


async def test_body_over_the_limit_is_a_413(make_stack: StackFactory) -> None:
    stack = await make_stack(edge="body_limit: 1KiB")
    big = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x" * 2000}]}
    status, body, _headers = await stack.post("/v1/chat/completions", big)
    assert status == 413 and body["error"]["code"] == "request_too_large"
    async with stack.http.post(f"{stack.url}/v1/chat/completions", headers=AUTH,
                               data=_chunks(b"x" * 4000)) as response:  # no content-length: caught while reading
        assert response.status == 413
    assert stack.fake.stats.requests == {}


async def _chunks(data: bytes):  # type: ignore[no-untyped-def]
    for i in range(0, len(data), 500):
        yield data[i:i + 500]


async def test_upstream_client_errors_are_passed_on_unchanged(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await stack.openai().chat.completions.create(model="gpt-4o-mini", messages=[])
    assert caught.value.body["message"] == "messages: must be a non-empty array"  # type: ignore[index]
    assert stack.fake.stats.requests.total() == 1  # not retried elsewhere
    account = (await stack.accounts())["openai/good"]
    # The client's fault: nothing against the account (nor for it: a 400 does not prove a new account's quota).
    assert account["state"] == "ACCOUNT_STATE_PROBING" and account["failures_total"] == 0

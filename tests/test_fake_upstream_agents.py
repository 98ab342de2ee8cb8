"""The fake upstream answers what coding agents really send (tests/fixtures/agents), read back with the official SDKs:
named tool calls driven by the prompt, tool results quoted, Responses function and custom tool calls, Anthropic's
count_tokens and both APIs' model lists."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from fake_upstream import FakeUpstream
from fake_upstream import tools as fake_tools

FIXTURES = Path(__file__).parent / "fixtures" / "agents"
ASK_BASH = 'Please use the tool Bash with {"command": "echo poolgate-ok", "description": "Say ok"} now.'
ASK_EXEC = 'use the tool exec_command with {"cmd": "echo poolgate-ok"}'
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch\n"
OK_OUTPUT = "Chunk ID: 1a2b\nWall time: 0.0 seconds\nProcess exited with code 0\nOutput:\npoolgate-ok\n"


def recorded(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())["body"]
    return body


def claude_code_body(name: str, prompt: str) -> dict[str, Any]:
    """Claude Code's recorded request with ``prompt`` in place of the user's words (its system-reminder block and
    the trailing system message stay)."""
    body = copy.deepcopy(recorded(name))
    user = body["messages"][0]
    assert user["role"] == "user" and body["messages"][-1]["role"] == "system"
    user["content"][-1]["text"] = prompt
    return body


def codex_body(prompt: str) -> dict[str, Any]:
    """Codex's recorded Responses request with ``prompt`` as the user's words (after its environment context)."""
    body = copy.deepcopy(recorded("codex_responses.json"))
    last = body["input"][-1]
    assert last["role"] == "user" and "environment_context" in json.dumps(body["input"][-2])
    last["content"] = [{"type": "input_text", "text": prompt}]
    return body


def anthropic_client(fake: FakeUpstream, key: str = "sk-ant-fine-agents") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=fake.url, api_key=key, max_retries=0)


def openai_client(fake: FakeUpstream, key: str = "sk-fine-agents") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{fake.url}/v1", api_key=key, max_retries=0)


async def anthropic_stream(fake: FakeUpstream, body: dict[str, Any]) -> anthropic.types.Message:
    known = {"model", "messages", "system", "tools", "max_tokens", "metadata"}
    async with anthropic_client(fake) as client, client.messages.stream(
        **{k: v for k, v in body.items() if k in known},
        extra_body={k: v for k, v in body.items() if k not in known and k != "stream"},
    ) as stream:
        return await stream.get_final_message()


async def responses_stream(fake: FakeUpstream,
                           body: dict[str, Any]) -> tuple[list[str], openai.types.responses.Response]:
    """The streamed events' types and the completed response."""
    known = {"model", "input", "tools", "tool_choice", "parallel_tool_calls", "reasoning", "store", "include",
             "prompt_cache_key", "text", "instructions"}
    kinds, final = [], None
    async with openai_client(fake) as client:
        stream = await client.responses.create(**{k: v for k, v in body.items() if k in known}, stream=True,
                                               extra_body={k: v for k, v in body.items() if k not in known
                                                           and k != "stream"})
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.completed":
                final = event.response
    assert final is not None, kinds
    return kinds, final


@pytest.mark.parametrize("fixture", ["claude_code_messages.json", "claude_code_messages_gpt.json"])
async def test_claude_code_gets_the_named_tool_call_then_text_quoting_its_result(
        fake_upstream: FakeUpstream, fixture: str) -> None:
    body = claude_code_body(fixture, ASK_BASH)
    message = await anthropic_stream(fake_upstream, body)
    assert message.stop_reason == "tool_use"
    call = message.content[-1]
    assert call.type == "tool_use" and call.name == "Bash"
    assert call.input == {"command": "echo poolgate-ok", "description": "Say ok"}

    body["messages"] += [
        {"role": "assistant", "content": [block.model_dump() for block in message.content]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "poolgate-ok", "is_error": False},
            {"type": "text", "text": "<system-reminder>\nThe task list is empty.\n</system-reminder>"}]},
        {"role": "system", "content": [{"type": "text", "text": "# Environment\n..."}]},
    ]
    answer = await anthropic_stream(fake_upstream, body)
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].type == "text" and answer.content[0].text == "The tool returned: poolgate-ok"


async def test_a_word_that_names_no_offered_tool_is_not_a_name(fake_upstream: FakeUpstream) -> None:
    for prompt in ("Please use the tool for Paris", "use the tool Nowhere with {\"x\": 1}", "USE THE TOOL"):
        body = claude_code_body("claude_code_messages.json", prompt)
        call = (await anthropic_stream(fake_upstream, body)).content[-1]
        assert call.type == "tool_use" and call.name == body["tools"][0]["name"]
        assert call.input == fake_tools.tool_input(body["tools"][0]["input_schema"])


async def test_a_named_tool_without_input_gets_input_from_its_schema(fake_upstream: FakeUpstream) -> None:
    body = claude_code_body("claude_code_messages.json", "use the tool Read.")
    call = (await anthropic_stream(fake_upstream, body)).content[-1]
    assert call.type == "tool_use" and call.name == "Read" and call.input == {"file_path": "poolgate"}


async def test_codex_gets_a_streamed_function_call_then_text_quoting_its_output(fake_upstream: FakeUpstream) -> None:
    body = codex_body(ASK_EXEC)
    kinds, response = await responses_stream(fake_upstream, body)
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     *["response.function_call_arguments.delta"] * (len(kinds) - 6),
                     "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    assert len(kinds) > 6
    item = response.output[0]
    assert item.type == "function_call" and item.name == "exec_command"
    assert json.loads(item.arguments) == {"cmd": "echo poolgate-ok"}
    assert response.usage is not None and response.usage.output_tokens > 0

    body["input"] += [item.model_dump(exclude_none=True),
                      {"type": "function_call_output", "call_id": item.call_id, "output": OK_OUTPUT}]
    kinds, response = await responses_stream(fake_upstream, body)
    assert "response.output_text.delta" in kinds
    assert response.output_text == f"The tool returned: {OK_OUTPUT}"


async def test_codex_gets_a_custom_tool_call_for_apply_patch(fake_upstream: FakeUpstream) -> None:
    body = codex_body(f"use the tool apply_patch with {json.dumps(PATCH)}")
    kinds, response = await responses_stream(fake_upstream, body)
    assert "response.custom_tool_call_input.delta" in kinds and "response.custom_tool_call_input.done" in kinds
    item = response.output[0]
    assert item.type == "custom_tool_call" and item.name == "apply_patch" and item.input == PATCH

    body["input"] += [item.model_dump(exclude_none=True),
                      {"type": "custom_tool_call_output", "call_id": item.call_id, "output": "Success."}]
    _kinds, response = await responses_stream(fake_upstream, body)
    assert response.output_text == "The tool returned: Success."


async def test_responses_without_stream_call_the_tool(fake_upstream: FakeUpstream) -> None:
    async with openai_client(fake_upstream) as client:
        response = await client.responses.create(
            model="gpt-5.5", input="use the tool lookup with {\"city\": \"Paris\"}",
            tools=[{"type": "function", "name": "other", "parameters": {"type": "object"}, "strict": False},
                   {"type": "function", "name": "lookup", "strict": False,
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}])
        assert response.output[0].type == "function_call" and response.output[0].name == "lookup"
        assert json.loads(response.output[0].arguments) == {"city": "Paris"}
        plain = await client.responses.create(model="gpt-5.5", input="Say hello.")
        assert plain.output_text.startswith("Hello!")


async def test_chat_completions_call_the_named_tool_and_quote_parallel_results(fake_upstream: FakeUpstream) -> None:
    tools: Any = [{"type": "function", "function": {"name": name, "parameters": {
        "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}
        for name in ("Agent", "Bash")]
    messages: Any = [{"role": "system", "content": "You are a coding agent."},
                     {"role": "user", "content": 'use the tool Bash with {"command": "echo hi"}'},
                     {"role": "system", "content": "A reminder after the prompt."}]
    async with openai_client(fake_upstream) as client:
        chunks = [c async for c in await client.chat.completions.create(
            model="gpt-4o-mini", messages=messages, tools=tools, stream=True)]
        calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
        assert calls[0].function is not None and calls[0].function.name == "Bash"
        assert json.loads("".join(c.function.arguments or "" for c in calls if c.function)) == {"command": "echo hi"}
        messages += [{"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": "{}"}},
            {"id": "call_2", "type": "function", "function": {"name": "Bash", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "hi"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "there"}]}]
        answer = await client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
        assert answer.choices[0].message.content == "The tool returned: hi there"


async def test_count_tokens_answers_in_anthropics_shape_with_the_key_words(fake_upstream: FakeUpstream) -> None:
    body = recorded("claude_code_messages.json")
    async with anthropic_client(fake_upstream, "sk-ant-fine-count") as client:
        counted = await client.messages.count_tokens(model=body["model"], messages=body["messages"],
                                                     system=body["system"], tools=body["tools"])
        assert counted.input_tokens > 1000
    async with anthropic_client(fake_upstream, "sk-ant-unauthorized-count") as client:
        with pytest.raises(anthropic.AuthenticationError):
            await client.messages.count_tokens(model="claude-opus-5-5", messages=[{"role": "user", "content": "hi"}])
    async with anthropic_client(fake_upstream, "sk-ant-ratelimited-count") as client:
        with pytest.raises(anthropic.RateLimitError):
            await client.messages.count_tokens(model="claude-opus-5-5", messages=[{"role": "user", "content": "hi"}])
    assert fake_upstream.stats.requests["sk-ant-fine-count"] == 1
    assert fake_upstream.stats.requests["sk-ant-unauthorized-count"] == 1


async def test_models_answer_in_the_shape_of_the_api_asked(fake_upstream: FakeUpstream) -> None:
    async with anthropic_client(fake_upstream) as client:
        listed = [m async for m in client.models.list()]
        assert listed and all(m.type == "model" and m.id.startswith("claude") for m in listed)
        one = await client.models.retrieve("claude-opus-5-5")
        assert one.display_name == "Claude Opus 5.5"
        with pytest.raises(anthropic.NotFoundError):
            await client.models.retrieve("claude-nowhere-1")
    async with openai_client(fake_upstream) as openai_api:
        ids = [m.id async for m in openai_api.models.list()]
        assert "gpt-5.5" in ids and "gpt-4o-mini" in ids
        assert (await openai_api.models.retrieve("gpt-4o-mini")).object == "model"
        with pytest.raises(openai.NotFoundError) as missing:
            await openai_api.models.retrieve("gpt-nowhere")
        assert missing.value.code == "model_not_found"


async def test_a_chatonly_key_has_no_responses_api_and_stats_count_paths(fake_upstream: FakeUpstream) -> None:
    async with openai_client(fake_upstream, "sk-chatonly-agents") as client:
        with pytest.raises(openai.NotFoundError):
            await client.responses.create(model="gpt-5.5", input="Say hello.")
        answer = await client.chat.completions.create(model="gpt-5.5", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content
    assert fake_upstream.stats.paths["sk-chatonly-agents"] == {"/v1/responses": 1, "/v1/chat/completions": 1}
    assert fake_upstream.stats.requests["sk-chatonly-agents"] == 2

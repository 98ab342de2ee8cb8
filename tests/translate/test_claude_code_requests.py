"""What Claude Code really sends (recorded: tests/fixtures/agents), translated for an OpenAI-format pool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proxy_edge.translate import TranslationError
from proxy_edge.translate import anthropic_to_openai as a2o

FIXTURES = Path(__file__).parent.parent / "fixtures" / "agents"


def recorded(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((FIXTURES / name).read_text())["body"]
    return body


@pytest.mark.parametrize("fixture", ["claude_code_messages.json", "claude_code_messages_gpt.json"])
def test_claude_codes_first_request_translates_with_what_was_dropped_named(fixture: str) -> None:
    body = recorded(fixture)
    dropped: list[str] = []
    out = a2o.request({**body, "model": "gpt-4o-mini"}, dropped)
    assert set(dropped) == {"context_management", "thinking", "output_config.effort", "tools[].defer_loading"}
    # The system blocks come first, the mid-conversation system message stays where Claude Code put it.
    roles = [message["role"] for message in out["messages"]]
    assert roles == ["system", "user", "system"]
    assert body["messages"][1]["content"][0]["text"][:40] in out["messages"][2]["content"]
    assert [tool["function"]["name"] for tool in out["tools"]] == [tool["name"] for tool in body["tools"]]
    assert all("defer_loading" not in json.dumps(tool) for tool in out["tools"])
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}
    assert out["max_tokens"] == body["max_tokens"] and "reasoning_effort" not in out
    assert out["user"] == body["metadata"]["user_id"]


def test_thinking_and_effort_become_reasoning_effort_where_the_model_takes_it() -> None:
    body = recorded("claude_code_messages_gpt.json")
    for model, effort in (("gpt-5", "high"), ("o4-mini", "high"), ("gemini-2.5-pro", "high")):
        dropped: list[str] = []
        out = a2o.request({**body, "model": model}, dropped)
        assert out["reasoning_effort"] == effort and "thinking" not in dropped
        assert "output_config.effort" not in dropped
    enabled = {"model": "gpt-5", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    for budget, effort in ((1024, "low"), (8000, "medium"), (32000, "high")):
        out = a2o.request({**enabled, "thinking": {"type": "enabled", "budget_tokens": budget}})
        assert out["reasoning_effort"] == effort
    assert a2o.request({**enabled, "output_config": {"effort": "max"}})["reasoning_effort"] == "high"
    off = a2o.request({**enabled, "thinking": {"type": "disabled"}, "output_config": {"effort": "low"}})
    assert "reasoning_effort" not in off


def test_earlier_thinking_blocks_are_left_out_and_named() -> None:
    dropped: list[str] = []
    out = a2o.request({"model": "gpt-4o", "max_tokens": 5, "messages": [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "sig"},
                                          {"type": "text", "text": "A"}]},
        {"role": "user", "content": "y"}]}, dropped)
    assert out["messages"][1] == {"role": "assistant", "content": "A"}
    assert dropped == ["thinking blocks"]


def test_structured_output_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    out = a2o.request({"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                       "output_config": {"format": {"type": "json_schema", "schema": schema}}})
    assert out["response_format"] == {"type": "json_schema",
                                      "json_schema": {"name": "output", "schema": schema, "strict": True}}


def test_a_request_with_nothing_to_drop_names_nothing() -> None:
    dropped: list[str] = []
    a2o.request({"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, dropped)
    assert dropped == []
    with pytest.raises(TranslationError):
        a2o.request({"model": "gpt-4o", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}],
                     "output_config": {"effort": 3}})

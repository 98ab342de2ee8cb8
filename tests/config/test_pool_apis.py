"""A pool's ``apis``: which APIs its upstream speaks (the edge translates the others to one of them)."""

from __future__ import annotations

import pytest

from poolgate.config import ConfigError, parse_config


def pool(settings: str) -> str:
    return f"pools:\n  p:\n    api_key: sk-test-aaaa1111\n{settings}"


@pytest.mark.parametrize(("settings", "apis"), [
    ("", ["chat", "responses", "embeddings"]),
    ("    format: anthropic\n", ["messages", "count_tokens"]),
    ("    base_url: https://generativelanguage.googleapis.com/v1beta/openai\n", ["chat", "embeddings"]),
    ("    apis: [chat]\n", ["chat"]),
    ("    apis: [responses, chat, responses]\n", ["responses", "chat"]),
    ("    format: anthropic\n    apis: [messages]\n", ["messages"]),
])
def test_apis_default_to_the_formats_and_the_upstreams(settings: str, apis: list[str]) -> None:
    assert parse_config(pool(settings)).pools["p"].apis == apis


@pytest.mark.parametrize(("settings", "words"), [
    ("    apis: [messages]\n", "messages is not an API of openai-format upstreams"),
    ("    apis: [embeddings]\n", "must speak chat or responses"),
    ("    format: anthropic\n    apis: [count_tokens]\n", "must speak messages"),
    ("    apis: [completions]\n", "apis"),
])
def test_apis_that_cannot_be(settings: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(pool(settings))
    assert words in str(caught.value)

"""An upstream that echoes the account's key in its error (OpenAI's 401 masks all but ``sk-proj-`` and the last
four characters; a careless upstream may quote a part of it in clear): no 8-character part of the key reaches the
client, the selector's ``disabled_reason``, the database file or the log lines. Plus :mod:`poolgate.secrets` itself."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import pytest

from fake_upstream import FakeUpstream
from poolgate.secrets import MIN_PART, Scrubber, scrub_bytes, scrub_text
from tests.edge.conftest import CHAT, Stack, open_stack

ECHOED = "sk-proj-echokey-Zq8Xv2LmN4pR7tY1wK9sB3dF6gH0jT5uabcd"
"""The fake upstream answers ``echokey`` keys with OpenAI's real 401, the key masked as OpenAI masks it."""
LEAKED = "sk-proj-leakkey-Hq3Wc7NbV1xM5zK8pL2rT6yG9fD4sJ0eWxyz"
"""The fake upstream answers ``leakkey`` keys with a 500 whose message quotes 16 characters of the key."""


def parts(key: str) -> list[str]:
    return [key[i:i + MIN_PART] for i in range(len(key) - MIN_PART + 1)]


def found_parts(key: str, data: str | bytes) -> list[str]:
    """The 8-character parts of ``key`` found in ``data``."""
    raw = data.encode() if isinstance(data, str) else data
    return [part for part in parts(key) if part.encode() in raw]


def test_openai_masked_echo_keeps_only_the_redacted_form() -> None:
    message = (f"Incorrect API key provided: sk-proj-{'*' * 40}abcd. You can find your API key at "
               "https://platform.openai.com/account/api-keys.")
    assert scrub_text(message, ECHOED) == (
        "Incorrect API key provided: …abcd. You can find your API key at https://platform.openai.com/account/api-keys.")
    # Masked echoes of other keys too (older OpenAI forms, Anthropic-style prefixes), in text and UTF-8 bytes.
    assert scrub_text("key sk-abc1...wxyz, and sk-ant-api03-****wxyz!", "unrelated-credential") == (
        "key …wxyz, and …wxyz!")
    assert scrub_bytes("é sk-a…wxyz".encode(), "unrelated-credential").decode() == "é …wxyz"


@pytest.mark.parametrize("credential", [ECHOED, f"Bearer {ECHOED}"])
def test_every_part_of_eight_or_more_characters_is_removed(credential: str) -> None:
    scrubber = Scrubber(credential)
    for start in range(0, len(ECHOED) - MIN_PART + 1, 5):
        for length in (MIN_PART, MIN_PART + 3, len(ECHOED) - start):
            piece = ECHOED[start:start + length]
            text = f"before {piece} after"
            assert found_parts(ECHOED, scrubber.text(text)) == [], text
            assert scrubber.text(text) == "before …abcd after"
            assert found_parts(ECHOED, scrubber.bytes(text.encode())) == []
    short = ECHOED[10:17]  # 7 characters: too common to mean anything, kept
    assert scrubber.text(f"x {short} y") == f"x {short} y"


def test_scrubbing_stays_linear_on_hostile_text() -> None:
    """Text shaped to make a backtracking pattern quadratic: done at once (a quadratic scan of 64 KiB of it took
    tens of seconds, beyond the test's timeout)."""
    scrubber = Scrubber(ECHOED)
    assert scrubber.text("sk-" * 22000) == "sk-" * 22000
    assert scrubber.text("sk-a" + "*" * 65536 + "wxyz") == "…wxyz"
    assert scrubber.text(ECHOED[:9] * 8000).count("…abcd") == 1


@pytest.mark.parametrize("transport", ["stream", "unary"])
@pytest.mark.parametrize("stream", [False, True])
async def test_an_echoed_key_reaches_no_client_selector_database_or_log(
    fake_upstream: FakeUpstream, tmp_path: Path, caplog: pytest.LogCaptureFixture, stream: bool, transport: str,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger of the edge and the selector
    stack = await open_stack(fake_upstream, tmp_path, transport, openai_accounts=f"- {{name: echo, key: {ECHOED}}}",
                             anthropic_accounts=f"- {{name: leak, key: {LEAKED}}}")
    try:
        await _check_no_part_leaks(stack, tmp_path, caplog, stream)
    finally:
        await stack.close()


async def _check_no_part_leaks(stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture, stream: bool) -> None:
    body = {"model": "gpt-4o-mini", "messages": CHAT, "stream": stream}
    async with stack.http.post(f"{stack.url}/v1/chat/completions", json=body,
                               headers={"Authorization": "Bearer test-edge-key-0001"}) as response:
        openai_answer = await response.read()
        assert response.status == 503  # the pool's only key was rejected: upstream_auth_failed, with the reason
    message = json.loads(openai_answer)["error"]["message"]
    assert "(401 Incorrect API key provided: …abcd. You can find" in message
    body = {"model": "claude-x", "max_tokens": 8, "messages": CHAT, "stream": stream}
    async with stack.http.post(f"{stack.url}/v1/messages", json=body,
                               headers={"x-api-key": "test-edge-key-0001"}) as response:
        anthropic_answer = await response.read()
        assert response.status == 500  # the upstream's own error body, passed on scrubbed
    message = json.loads(anthropic_answer)["error"]["message"]
    assert message == "Internal error for the key with …Wxyz (fake upstream)."

    accounts = await stack.accounts()  # the selector's ListAccounts, through the edge
    echo, leak = accounts["openai/echo"], accounts["anthropic/leak"]
    assert echo["state"] == "ACCOUNT_STATE_DISABLED"
    assert "Incorrect API key provided: …abcd. You can find" in echo["reason"]  # ListAccounts' disabled_reason
    assert leak["consecutive_failures"] == 1
    assert stack.selector is not None
    await stack.selector.stop(grace=0)  # everything written to the database file
    stack.selector = None
    with sqlite3.connect(tmp_path / "state.db") as db:
        (reason,), = db.execute("SELECT disabled_reason FROM account_state WHERE account_id = 'openai/echo'")
    assert "Incorrect API key provided: …abcd" in reason
    stored = b"".join(path.read_bytes() for path in tmp_path.glob("state.db*"))
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "Incorrect API key provided" in logs or "credentials rejected" in logs
    for key in (ECHOED, LEAKED):
        assert found_parts(key, openai_answer + anthropic_answer) == []
        assert found_parts(key, repr(accounts)) == []
        assert found_parts(key, stored) == []
        assert found_parts(key, logs) == []

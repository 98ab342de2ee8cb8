"""The dashboard's operator actions over HTTP (``POST /dashboard/api/accounts/{enable,disable,reset}``,
``POST /dashboard/api/reload``) against a real selector: they change the selector's state only with one of its admin
tokens, which the edge passes on and never echoes or logs, and never when the selector's Admin service is open."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from fake_upstream import FakeUpstream
from poolgate.v1 import selector_pb2 as pb
from poolgate.v1 import selector_pb2_grpc
from proxy_edge.dashboard.actions import TOKEN_HEADER
from tests.edge.conftest import AUTH, Stack, open_stack

LEASE_TOKEN = "lease-token-000000000001"
ADMIN_TOKEN = "admin-token-000000000001"
SELECTOR_AUTH = f"auth: {{tokens: [{LEASE_TOKEN}], admin_tokens: [{ADMIN_TOKEN}]}}"
TWO_ACCOUNTS = """
    - {name: personal, key: sk-personal-000001}
    - {name: work, key: sk-work-000002}"""


def admin(token: str = ADMIN_TOKEN, **extra: str) -> dict[str, str]:
    return {**AUTH, TOKEN_HEADER: token, **extra}


async def selector_accounts(address: str, token: str = LEASE_TOKEN) -> dict[str, pb.AccountStatus]:
    """account_id -> status, as the selector's ListAccounts says."""
    async with grpc.aio.insecure_channel(address) as channel:
        listing = await selector_pb2_grpc.SelectorStub(channel).ListAccounts(
            pb.ListAccountsRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=5)
    return {a.account_id: a for pool in listing.pools for a in pool.accounts}


async def cool_down(address: str, pool: str, account_id: str, others: list[str], token: str = LEASE_TOKEN) -> None:
    """A lease on ``account_id`` (the pool's ``others`` excluded) reported as rate limited for ten minutes."""
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = selector_pb2_grpc.SelectorStub(channel)
        lease = await stub.SelectAccount(pb.SelectAccountRequest(pool=pool, exclude_account_ids=others),
                                         metadata=metadata, timeout=5)
        assert lease.account_id == account_id
        await stub.ReportOutcome(pb.ReportOutcomeRequest(lease_id=lease.lease_id, outcome=pb.OUTCOME_RATE_LIMITED,
                                                         http_status=429, retry_after_ms=600_000),
                                 metadata=metadata, timeout=5)


@pytest.fixture
async def guarded(tmp_path: Path, fake_upstream: FakeUpstream) -> AsyncIterator[Stack]:
    """A selector with lease and admin tokens, and its edge."""
    stack = await open_stack(fake_upstream, tmp_path, openai_accounts=TWO_ACCOUNTS, selector_settings=SELECTOR_AUTH)
    try:
        yield stack
    finally:
        await stack.close()


def address(stack: Stack) -> str:
    assert stack.selector is not None
    return stack.selector.address


async def test_enable_disable_and_reset_change_the_selectors_state(guarded: Stack) -> None:
    status, body, headers = await guarded.post("/dashboard/api/accounts/disable",
                                               {"pool": "openai", "account": "work", "reason": "rotating its key"},
                                               admin())
    assert status == 200, body
    assert body == {"account": {"id": "openai/work", "state": "disabled", "reason": "rotating its key"}}
    assert headers["Cache-Control"] == "no-store"
    work = (await selector_accounts(address(guarded)))["openai/work"]
    assert work.state == pb.ACCOUNT_STATE_DISABLED and work.reason == "rotating its key"
    # The dashboard's next snapshot shows it at once, not after its cache's half second.
    _, snapshot = await guarded.get_json("/dashboard/api/snapshot")
    shown = {a["id"]: a["state"] for pool in snapshot["pools"] for a in pool["accounts"]}
    assert shown["openai/work"] == "disabled"

    status, body, _ = await guarded.post("/dashboard/api/accounts/enable", {"pool": "openai", "account": "work"},
                                         admin())
    assert status == 200 and body["account"]["state"] != "disabled", body
    assert (await selector_accounts(address(guarded)))["openai/work"].state != pb.ACCOUNT_STATE_DISABLED

    await cool_down(address(guarded), "openai", "openai/personal", ["openai/work"])
    personal = (await selector_accounts(address(guarded)))["openai/personal"]
    assert personal.state == pb.ACCOUNT_STATE_COOLING and personal.cooldown_remaining_ms > 500_000
    status, body, _ = await guarded.post("/dashboard/api/accounts/reset", {"pool": "openai", "account": "personal"},
                                         admin())
    assert status == 200 and body["account"]["state"] != "cooling", body
    personal = (await selector_accounts(address(guarded)))["openai/personal"]
    assert personal.state != pb.ACCOUNT_STATE_COOLING and personal.cooldown_remaining_ms == 0


async def test_a_missing_wrong_or_lease_token_changes_nothing_and_is_never_echoed(
        guarded: Stack, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    disable = {"pool": "openai", "account": "work", "reason": "x"}
    wrong = "wrong-token-0000000000099"
    cases: list[tuple[dict[str, str], int, str]] = [
        (AUTH, 401, "admin_token_required"),
        (admin(wrong), 401, "admin_token_rejected"),
        (admin(LEASE_TOKEN), 403, "admin_token_forbidden"),
        (admin("tok en\u00e9"), 401, "admin_token_rejected"),
    ]
    for headers, want_status, want_code in cases:
        status, body, _ = await guarded.post("/dashboard/api/accounts/disable", disable, headers)
        assert (status, body["error"]["code"]) == (want_status, want_code), body
        assert "selector.auth.admin_tokens" in body["error"]["message"]
        for secret in (wrong, LEASE_TOKEN, ADMIN_TOKEN):
            assert secret not in str(body)
    status, body, _ = await guarded.post("/dashboard/api/reload", {}, admin(wrong))
    assert status == 401 and body["error"]["code"] == "admin_token_rejected"
    assert (await selector_accounts(address(guarded)))["openai/work"].state != pb.ACCOUNT_STATE_DISABLED
    for secret in (wrong, LEASE_TOKEN, ADMIN_TOKEN):
        assert secret not in caplog.text


async def test_bad_requests_get_clear_errors(guarded: Stack) -> None:
    path = "/dashboard/api/accounts/disable"
    cases: list[tuple[bytes | dict[str, Any], dict[str, str], int, str]] = [
        ({"pool": "openai", "account": "nobody"}, admin(), 404, "not_found"),
        ({"pool": "nowhere", "account": "work"}, admin(), 404, "not_found"),
        ({"pool": "openai"}, admin(), 400, "invalid_request"),
        ({"pool": "openai", "account": 7}, admin(), 400, "invalid_request"),
        ({"pool": "openai", "account": "work", "reason": "r" * 501}, admin(), 400, "invalid_request"),
        (b"{not json", admin(**{"Content-Type": "application/json"}), 400, "invalid_json"),
        (b"[1]", admin(**{"Content-Type": "application/json"}), 400, "invalid_json"),
        (b"pool=openai&account=work", admin(**{"Content-Type": "application/x-www-form-urlencoded"}), 415,
         "unsupported_media_type"),
        ({"pool": "openai", "account": "work"}, {TOKEN_HEADER: ADMIN_TOKEN}, 401, "invalid_api_key"),
        ({"pool": "openai", "account": "work"}, admin(Origin="https://elsewhere.example"), 403, "cross_origin"),
        ({"pool": "openai", "account": "work"}, admin(Origin="null"), 403, "cross_origin"),
        ({"pool": "openai", "account": "work"}, admin(**{"Sec-Fetch-Site": "cross-site"}), 403, "cross_origin"),
    ]
    for body, headers, want_status, want_code in cases:
        status, answer, _ = await guarded.post(path, body, headers)
        assert (status, answer["error"]["code"]) == (want_status, want_code), (body, headers, answer)
        assert answer["error"]["message"]
    assert (await selector_accounts(address(guarded)))["openai/work"].state != pb.ACCOUNT_STATE_DISABLED
    # The page's own origin is accepted.
    origin = guarded.url
    status, answer, _ = await guarded.post(path, {"pool": "openai", "account": "work"}, admin(Origin=origin))
    assert status == 200, answer
    status, answer = await guarded.get_json(path)
    assert status == 405 and answer["error"]["code"] == "method_not_allowed"
    # This selector was started without a config file: a reload is refused with the selector's reason.
    status, answer, _ = await guarded.post("/dashboard/api/reload", {}, admin())
    assert status == 409 and "without a config file" in answer["error"]["message"], answer


@pytest.mark.parametrize("selector_settings", ["", f"auth: {{tokens: [{LEASE_TOKEN}]}}"])
async def test_a_selector_without_admin_tokens_is_never_steered_from_the_dashboard(
        tmp_path: Path, fake_upstream: FakeUpstream, selector_settings: str) -> None:
    stack = await open_stack(fake_upstream, tmp_path, openai_accounts=TWO_ACCOUNTS,
                             selector_settings=selector_settings)
    try:
        for token in ("anything-at-all-0000001", LEASE_TOKEN):
            status, body, _ = await stack.post("/dashboard/api/accounts/disable",
                                               {"pool": "openai", "account": "work"}, admin(token))
            assert status in (401, 403), body
            assert "selector.auth.admin_tokens" in body["error"]["message"]
            if not selector_settings:  # Admin calls are open on loopback: the edge refuses them itself
                assert body["error"]["code"] == "admin_tokens_not_configured"
        accounts = await selector_accounts(address(stack))
        assert accounts["openai/work"].state != pb.ACCOUNT_STATE_DISABLED
    finally:
        await stack.close()


async def test_an_unreachable_selector_is_a_503(tmp_path: Path, fake_upstream: FakeUpstream) -> None:
    stack = await open_stack(fake_upstream, tmp_path, selector=False)
    try:
        status, body, _ = await stack.post("/dashboard/api/accounts/enable", {"pool": "openai", "account": "good"},
                                           admin())
        assert status == 503 and body["error"]["code"] == "selector_unavailable", body
    finally:
        await stack.close()

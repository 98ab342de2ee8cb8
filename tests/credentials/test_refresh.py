"""OAuth refresh against a local token endpoint: single flight, write-back, rotation, rejection, network failures."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import stat
import time

import pytest

from selector_service.credentials import file_source
from selector_service.credentials.files import FileCredential
from selector_service.domain.admission import Probing
from selector_service.domain.errors import NoAccountAvailableError
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport
from tests.credentials.conftest import EXPIRING, HOUR, IN_MARGIN, CredentialDir, FakeTokenEndpoint, Start, file_pool
from tests.support import eventually, open_accounts


async def test_refresh_in_margin_runs_once_under_50_concurrent_requests(
        start: Start, creds: CredentialDir, token_endpoint: FakeTokenEndpoint) -> None:
    # Enters its 10 min refresh margin 0.2 s after start; the background upkeep (every 60 s here) will not see it.
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", 600.2, profile_arn="arn:aws:codewhisperer:x")
    token_endpoint.allow("rt-a-0001", "a")
    token_endpoint.delay = 0.2  # the refresh is still running while all 50 requests arrive
    # Every lease at once (the probe limit is not what this test is about).
    running = await start(file_pool(creds.path, token_endpoint.url, extra="probe_leases: 64"), poll=60)
    account = running.account("kiro-a")
    await asyncio.sleep(0.25)
    assert token_endpoint.calls == [] and not running.manager.refresher.in_flight("p/kiro-a")
    grants = await asyncio.gather(*(running.lease() for _ in range(50)))
    # the token is still valid: nobody waited for the refresh
    assert {g.lease.account.credential.value for g in grants} == {"Bearer at-a-0001"}
    await running.settle()
    assert len(token_endpoint.calls) == 1
    assert token_endpoint.calls[0]["fields"] == {"grant_type": "refresh_token", "refresh_token": "rt-a-0001"}
    new_access, new_refresh = token_endpoint.issued
    on_disk = creds.read("kiro-a.json")
    assert (on_disk["access_token"], on_disk["refresh_token"]) == (new_access, new_refresh)
    assert on_disk["profile_arn"] == "arn:aws:codewhisperer:x" and on_disk["type"] == "kiro"
    assert stat.S_IMODE((creds.path / "kiro-a.json").stat().st_mode) == 0o600
    assert running.account("kiro-a") is account and account.requests_total == 50  # refreshed in place
    assert account.credential.value == f"Bearer {new_access}"
    assert account.expires_at == pytest.approx(time.time() + HOUR, abs=5)
    assert (await running.lease()).lease.account.credential.value == f"Bearer {new_access}"
    assert len(token_endpoint.calls) == 1


async def test_expiring_account_waits_for_one_refresh_under_50_concurrent_requests(
        start: Start, creds: CredentialDir, token_endpoint: FakeTokenEndpoint) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", EXPIRING)
    token_endpoint.allow("rt-a-0001", "a")
    token_endpoint.delay = 0.2
    running = await start(file_pool(creds.path, token_endpoint.url, extra="probe_leases: 64",
                                    oauth="body: json\nclient_id: poolgate-test"))
    grants = await asyncio.gather(*(running.lease(wait=5) for _ in range(50)))
    assert len(token_endpoint.calls) == 1
    assert token_endpoint.calls[0] == {"content_type": "application/json", "fields": {
        "grant_type": "refresh_token", "refresh_token": "rt-a-0001", "client_id": "poolgate-test"}, "cookie": False}
    new_access = token_endpoint.issued[0]
    assert {g.lease.account.credential.value for g in grants} == {f"Bearer {new_access}"}
    assert creds.read("kiro-a.json")["access_token"] == new_access  # written before it was handed out


async def test_new_tokens_are_not_used_before_they_are_written(
        start: Start, creds: CredentialDir, token_endpoint: FakeTokenEndpoint,
        monkeypatch: pytest.MonkeyPatch) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", IN_MARGIN)
    token_endpoint.allow("rt-a-0001", "a")
    writes: list[FileCredential] = []

    def disk_full(credential: FileCredential) -> None:
        writes.append(credential)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(file_source, "write_credential_file", disk_full)
    running = await start(file_pool(creds.path, token_endpoint.url), poll=60)
    await eventually(lambda: writes)
    await running.settle()
    account = running.account("kiro-a")
    assert account.credential.value == "Bearer at-a-0001" and not account.disabled
    assert running.manager.refresher.failures("p/kiro-a") == 1
    assert (await running.lease()).lease.account.credential.value == "Bearer at-a-0001"


async def test_tokens_rotated_by_another_process_are_picked_up(
        start: Start, creds: CredentialDir, token_endpoint: FakeTokenEndpoint) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", IN_MARGIN)
    running = await start(file_pool(creds.path, token_endpoint.url), poll=60)
    account = running.account("kiro-a")
    # Before our refresh ran, the provider's own tool refreshed and rewrote the file.
    creds.write("kiro-a.json", "at-a-other-0002", "rt-a-other-0002", HOUR)
    await running.settle()
    await running.poll()
    assert token_endpoint.calls == []  # the refresh found the file renewed: nothing to ask
    assert running.account("kiro-a") is account and not account.disabled
    assert account.credential.value == "Bearer at-a-other-0002"
    assert account.expires_at == pytest.approx(time.time() + HOUR, abs=5)


async def test_rotation_racing_our_refresh_is_taken_instead_of_failing(
        start: Start, creds: CredentialDir, token_endpoint: FakeTokenEndpoint) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", EXPIRING)
    token_endpoint.allow("rt-a-0001", "a")

    async def other_process_refreshes_first(fields: dict[str, str]) -> None:
        # The other process spent rt-a-0001 a moment before us: the endpoint rotated it, the file has new tokens.
        del token_endpoint.valid["rt-a-0001"]
        token_endpoint.allow("rt-a-other-0002", "a")
        creds.write("kiro-a.json", "at-a-other-0002", "rt-a-other-0002", HOUR)
        token_endpoint.before_answer = None

    token_endpoint.before_answer = other_process_refreshes_first
    running = await start(file_pool(creds.path, token_endpoint.url), poll=60)
    await eventually(lambda: token_endpoint.calls)
    await running.settle()
    account = running.account("kiro-a")
    assert len(token_endpoint.calls) == 1  # ours, rejected; then the file's new tokens were taken
    assert not account.disabled and account.credential.value == "Bearer at-a-other-0002"
    assert (await running.lease()).lease.account is account


async def test_invalid_grant_disables_and_a_new_login_enables_again(
        start: Start, creds: CredentialDir, token_endpoint: FakeTokenEndpoint) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-revoked-0001", IN_MARGIN)
    creds.write("kiro-b.json", "at-b-0001", "rt-b-0001", HOUR)
    running = await start(file_pool(creds.path, token_endpoint.url), poll=60)
    await eventually(lambda: token_endpoint.calls)
    await running.settle()
    account = running.account("kiro-a")
    assert account.disabled
    assert account.disabled_reason == (
        "credential refresh rejected: refresh token rejected by the token endpoint (400 invalid_grant: token …0001 "
        "is revoked); log in again with the provider's tool")
    saved = await running.repository.fetch("p/kiro-a")
    assert saved is not None and saved.disabled and saved.disabled_reason == account.disabled_reason
    for _ in range(3):
        grant = await running.lease()
        assert grant.lease.account.name == "kiro-b"
        await running.core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS))
    assert len(token_endpoint.calls) == 1  # never retried

    creds.write("kiro-a.json", "at-a-0002", "rt-a-0002", HOUR)  # logged in again
    await running.poll()
    assert running.account("kiro-a") is account and not account.disabled
    assert not (await running.repository.fetch("p/kiro-a")).disabled  # type: ignore[union-attr]


async def test_network_failure_is_retried_with_backoff_and_never_disables(
        start: Start, creds: CredentialDir, token_endpoint: FakeTokenEndpoint) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", EXPIRING)
    creds.write("kiro-b.json", "at-b-0001", "rt-b-0001", HOUR)
    token_endpoint.allow("rt-a-0001", "a")
    token_endpoint.mode = "unavailable"
    running = await start(file_pool(creds.path, token_endpoint.url), retry_base=0.2)
    account = running.account("kiro-a")
    await eventually(lambda: len(token_endpoint.calls) >= 3)
    calls = len(token_endpoint.calls)
    assert not account.disabled and running.manager.refresher.failures("p/kiro-a") >= 3
    state, reason = account.state(time.time())
    assert state is AccountState.COOLING and reason.startswith("credential expires in")
    for _ in range(4):  # the expiring account is skipped meanwhile
        grant = await running.lease()
        assert grant.lease.account.name == "kiro-b"
        await running.core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS))
    assert len(token_endpoint.calls) <= calls + 1  # spaced out, not once per request
    token_endpoint.mode = "ok"
    await eventually(lambda: account.credential.value != "Bearer at-a-0001")
    assert account.state(time.time())[0] is AccountState.PROBING  # back, though never used yet
    assert running.manager.refresher.failures("p/kiro-a") == 0


async def test_network_failure_backoff_grows(start: Start, creds: CredentialDir,
                                             token_endpoint: FakeTokenEndpoint) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", EXPIRING)
    token_endpoint.mode = "unavailable"
    await start(file_pool(creds.path, token_endpoint.url), poll=0.02, retry_base=0.1)
    await eventually(lambda: len(token_endpoint.times) >= 4)
    sent = token_endpoint.times
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    # 0.1 s, 0.2 s, 0.4 s, each minus up to 20 % jitter. Only lower bounds: a busy machine delays retries, never
    # hastens them; a backoff that did not grow would retry after 0.1 s at most and fail the later bounds.
    bounds = [0.1 * 2 ** i * 0.8 * 0.95 for i in range(3)]
    assert all(gap >= bound for gap, bound in zip(gaps[:3], bounds, strict=True)), (gaps, bounds)


async def test_expiring_and_unrefreshable_is_not_selected(start: Start, creds: CredentialDir) -> None:
    creds.write("kiro-a.json", "at-a-0001", None, EXPIRING)  # no refresh token, and no token_url either
    running = await start(file_pool(creds.path), poll=60)
    account = running.account("kiro-a")
    state, reason = account.state(time.time())
    assert state is AccountState.COOLING
    assert re.fullmatch(r"credential expires in 1[12]\d s, not refreshed", reason), reason
    started = time.monotonic()
    with pytest.raises(NoAccountAvailableError) as caught:
        await running.lease(wait=5)
    assert time.monotonic() - started < 1.0  # nothing will bring it back by itself: no point waiting
    assert "1 credential expiring" in str(caught.value) and "at-a-0001" not in str(caught.value)
    snapshot = running.core.snapshots("p")[0].accounts[0]
    assert snapshot.account.credential_redacted == "…0001" and "at-a" not in snapshot.reason


async def test_an_account_entering_its_skip_threshold_stops_being_selected(
        start: Start, creds: CredentialDir) -> None:
    creds.write("kiro-a.json", "at-a-0001", None, EXPIRING + 0.5)  # 0.5 s before the skip threshold
    creds.write("kiro-b.json", "at-b-0001", None, HOUR)
    running = await start(file_pool(creds.path, oauth="skip_expiring_threshold: 120"), poll=60)
    await open_accounts(running.core)
    assert {(await running.lease()).lease.account.name for _ in range(2)} == {"kiro-a", "kiro-b"}
    await asyncio.sleep(0.6)
    assert {(await running.lease()).lease.account.name for _ in range(4)} == {"kiro-b"}


async def test_no_token_in_the_written_file_name_or_temp_files(
        start: Start, creds: CredentialDir, token_endpoint: FakeTokenEndpoint) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", IN_MARGIN)
    token_endpoint.allow("rt-a-0001", "a")
    running = await start(file_pool(creds.path, token_endpoint.url), poll=60)
    await eventually(lambda: token_endpoint.calls)
    await running.settle()
    assert sorted(p.name for p in creds.path.iterdir()) == ["kiro-a.json"]
    assert json.loads((creds.path / "kiro-a.json").read_text())["access_token"] == token_endpoint.issued[0]


def rejected(lease_id: str) -> OutcomeReport:
    return OutcomeReport(lease_id, Outcome.AUTH_FAILED, http_status=401, detail="token revoked")


async def test_a_rejected_oauth_token_is_refreshed_once_instead_of_disabling(
        start: Start, creds: CredentialDir, token_endpoint: FakeTokenEndpoint) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", HOUR)  # valid for an hour, yet revoked upstream
    creds.write("kiro-b.json", "at-b-0001", "rt-b-0001", HOUR)
    token_endpoint.allow("rt-a-0001", "a")
    token_endpoint.delay = 0.2
    running = await start(file_pool(creds.path, token_endpoint.url, extra="strategy: fill_first"), poll=60)
    account = running.account("kiro-a")
    await open_accounts(running.core)
    first, second = await running.lease(), await running.lease()  # two requests in flight with the old token
    assert first.lease.account is account and second.lease.account is account
    await running.core.report(rejected(first.lease.lease_id))
    assert not account.disabled and account.auth_failures_total == 1
    assert account.state(time.time()) == (AccountState.COOLING, "credentials rejected, being refreshed")
    assert (await running.lease()).lease.account.name == "kiro-b"  # not leased while it waits
    await running.core.report(rejected(second.lease.lease_id))  # the same token again: the refresh is running
    await running.settle()
    assert len(token_endpoint.calls) == 1
    new_access = token_endpoint.issued[0]
    assert account.credential.value == f"Bearer {new_access}" and not account.disabled
    assert creds.read("kiro-a.json")["access_token"] == new_access
    grant = await running.lease()
    assert grant.lease.account is account and grant.lease.probe  # the new token is proven before it takes more
    assert account.admission.probing is Probing.NEW_CREDENTIAL
    await running.core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS))
    assert account.state(time.time())[0] is AccountState.HEALTHY
    saved = await running.repository.fetch("p/kiro-a")
    assert saved is not None and not saved.disabled and saved.auth_failures_total == 2


async def test_a_refreshed_token_rejected_again_disables(
        start: Start, creds: CredentialDir, token_endpoint: FakeTokenEndpoint) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", HOUR)
    token_endpoint.allow("rt-a-0001", "a")
    running = await start(file_pool(creds.path, token_endpoint.url), poll=60)
    account = running.account("kiro-a")
    await open_accounts(running.core)
    stale = await running.lease()  # granted before the refresh: its rejection is about the old token
    await running.core.report(rejected((await running.lease()).lease.lease_id))
    await running.settle()
    await running.core.report(rejected(stale.lease.lease_id))
    assert not account.disabled and account.credential.value != "Bearer at-a-0001"
    await running.core.report(rejected((await running.lease()).lease.lease_id))  # the new token fails too
    await running.settle()
    assert account.disabled and account.disabled_reason == "credentials rejected (401): token revoked"
    assert len(token_endpoint.calls) == 1  # no refresh loop
    saved = await running.repository.fetch("p/kiro-a")
    assert saved is not None and saved.disabled


async def test_a_rejected_token_whose_refresh_is_refused_disables(
        start: Start, creds: CredentialDir, token_endpoint: FakeTokenEndpoint) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-revoked-0001", HOUR)
    running = await start(file_pool(creds.path, token_endpoint.url), poll=60)
    account = running.account("kiro-a")
    await running.core.report(rejected((await running.lease()).lease.lease_id))
    await running.settle()
    assert account.disabled and account.disabled_reason.startswith("credential refresh rejected: ")
    assert len(token_endpoint.calls) == 1


async def test_a_rejected_key_that_cannot_be_refreshed_disables_at_once(
        start: Start, creds: CredentialDir) -> None:
    creds.write("kiro-a.json", "at-a-0001", None, HOUR)  # no refresh token, no token_url
    running = await start(file_pool(creds.path), poll=60)
    account = running.account("kiro-a")
    await running.core.report(rejected((await running.lease()).lease.lease_id))
    assert account.disabled and account.disabled_reason == "credentials rejected (401): token revoked"
    assert not running.manager.refresher.in_flight("p/kiro-a")

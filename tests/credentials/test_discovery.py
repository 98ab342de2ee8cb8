"""Accounts from a credential directory: discovery, bad files, and files added, changed and removed while serving."""

from __future__ import annotations

import logging
import os
import textwrap

import pytest

from poolgate.config import ConfigError, parse_config
from selector_service.domain.outcomes import Outcome, OutcomeReport
from tests.credentials.conftest import HOUR, CredentialDir, Start, file_pool
from tests.support import eventually, open_accounts


async def test_three_files_one_malformed(start: Start, creds: CredentialDir, caplog: pytest.LogCaptureFixture) -> None:
    creds.write("kiro-personal.json", "at-personal-0001", "rt-personal-0001", HOUR, profile_arn="arn:aws:p")
    creds.write("kiro-work.json", "at-work-0002", "rt-work-0002", HOUR)
    (creds.path / "kiro-broken.json").write_text('{"access_token": "at-broken-0003", ')
    creds.secrets.add("at-broken-0003")
    (creds.path / "notes.txt").write_text("not a credential")
    running = await start(file_pool(creds.path))
    pool = running.core.pools["p"]
    assert sorted(a.name for a in pool.accounts.values()) == ["kiro-personal", "kiro-work"]
    assert running.files.problems("p") == {
        "kiro-broken.json": "not valid JSON (line 1, column 36: Expecting property name enclosed in double quotes); "
                            "fix the file or log in again with the provider's tool"}
    warning = next(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(creds.path / "kiro-broken.json") in warning and "not valid JSON" in warning and "skipped" in warning
    personal = running.account("kiro-personal")
    assert personal.credential.header == "authorization"
    assert personal.credential.value == "Bearer at-personal-0001"
    assert personal.credential_redacted == "…0001"


async def test_accounts_and_files_mix_config_order_first(start: Start, creds: CredentialDir) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", HOUR, region="us-east-1")
    config = parse_config(textwrap.dedent(f"""
        pools:
          p:
            format: anthropic
            strategy: fill_first
            credentials_dir: {creds.path}
            credentials_headers: {{x-region: region, x-missing: nope}}
            oauth: {{header: "authorization: Bearer"}}
            accounts:
              - {{name: static, key: sk-static-key-0001}}
    """))
    running = await start(config)
    assert [a.name for a in running.core.pools["p"].accounts.values()] == ["static", "kiro-a"]
    static, kiro = running.account("static"), running.account("kiro-a")
    assert (static.credential.header, static.credential.value) == ("x-api-key", "sk-static-key-0001")
    assert (kiro.credential.header, kiro.credential.value) == ("authorization", "Bearer at-a-0001")
    assert dict(kiro.credential.extra_headers) == {"x-region": "us-east-1"}


@pytest.mark.parametrize(("setup", "message"), [
    ("empty", "no file in {dir} matches 'kiro-*.json'; log in with the provider's tool to create one, or fix "
              "credentials_glob"),
    ("missing", "{dir}/nope is not a directory"),
    ("all bad", "none of the 1 file(s) matching 'kiro-*.json' in {dir} can be used (kiro-a.json: has no "
                "access_token"),
])
async def test_nothing_usable_is_an_error_at_start(start: Start, creds: CredentialDir, setup: str,
                                                   message: str) -> None:
    directory = creds.path
    if setup == "missing":
        directory = creds.path / "nope"
    elif setup == "all bad":
        (creds.path / "kiro-a.json").write_text("{}")
    (creds.path / "other.json").write_text("{}")
    with pytest.raises(ConfigError) as caught:
        await start(file_pool(directory))
    assert len(caught.value.errors) == 1
    assert caught.value.errors[0].startswith("pools.p.credentials_dir: ")
    assert message.format(dir=creds.path) in caught.value.errors[0]


async def test_a_file_named_like_a_configured_account_is_an_error(start: Start, creds: CredentialDir) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", HOUR)
    config = parse_config(f"pools:\n  p:\n    credentials_dir: {creds.path}\n"
                          "    accounts: [{name: kiro-a, key: sk-static-0001}]\n")
    with pytest.raises(ConfigError, match="two accounts are named 'kiro-a' \\(from the static and files credential"):
        await start(config)


async def test_files_added_changed_and_removed_while_serving(start: Start, creds: CredentialDir) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", HOUR)
    running = await start(file_pool(creds.path))
    pool = running.core.pools["p"]
    await open_accounts(running.core)
    held = await running.lease()
    assert held.lease.account.name == "kiro-a"

    creds.write("kiro-b.json", "at-b-0001", "rt-b-0001", HOUR)  # picked up by the watcher, no restart
    # A member at once, selectable once the reload has loaded its saved health (a database round trip later).
    await eventually(lambda: "p/kiro-b" in pool.accounts and pool.is_available(pool.accounts["p/kiro-b"]))
    names = set()
    for _ in range(4):
        grant = await running.lease()
        names.add(grant.lease.account.name)
        await running.core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS))
    assert names == {"kiro-a", "kiro-b"}

    a = running.account("kiro-a")
    cooled = await running.lease()
    while cooled.lease.account is not a:
        await running.core.report(OutcomeReport(cooled.lease.lease_id, Outcome.SUCCESS))
        cooled = await running.lease()
    await running.core.report(OutcomeReport(cooled.lease.lease_id, Outcome.RATE_LIMITED, retry_after_ms=1000))
    creds.write("kiro-a.json", "at-a-0002", "rt-a-0002", HOUR)  # logged in again: same account, new tokens
    await eventually(lambda: a.credential.value == "Bearer at-a-0002")
    assert running.account("kiro-a") is a  # kept: health, load and leases
    assert a.cooldown_until > 0 and a.in_flight == 1

    os.remove(creds.path / "kiro-a.json")
    await eventually(lambda: "p/kiro-a" not in pool.accounts)
    for _ in range(3):
        grant = await running.lease()
        assert grant.lease.account.name == "kiro-b"
        await running.core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS))
    late = await running.core.report(OutcomeReport(held.lease.lease_id, Outcome.SUCCESS))  # drained
    assert late.recorded and a.in_flight == 0


async def test_a_file_turning_bad_keeps_its_last_good_tokens(start: Start, creds: CredentialDir,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", HOUR)
    running = await start(file_pool(creds.path), poll=60)
    account = running.account("kiro-a")
    (creds.path / "kiro-a.json").write_text('{"access_token": "at-a-0002"')  # a tool half way through writing
    creds.secrets.add("at-a-0002")
    await running.poll()
    assert running.account("kiro-a") is account and account.credential.value == "Bearer at-a-0001"
    assert "kiro-a.json" in running.files.problems("p")
    assert any("last good tokens stay in use" in r.getMessage() for r in caplog.records)
    creds.write("kiro-a.json", "at-a-0003", "rt-a-0003", HOUR)
    await running.poll()
    assert account.credential.value == "Bearer at-a-0003" and running.files.problems("p") == {}


async def test_all_files_removed_leaves_an_empty_pool_that_fills_again(start: Start, creds: CredentialDir) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", HOUR)
    running = await start(file_pool(creds.path), poll=60)
    os.remove(creds.path / "kiro-a.json")
    await running.poll()
    assert running.core.pools["p"].accounts == {}
    creds.write("kiro-c.json", "at-c-0001", "rt-c-0001", HOUR)
    await running.poll()
    assert (await running.lease()).lease.account.name == "kiro-c"


async def test_a_new_file_named_like_a_configured_account_is_left_out_while_serving(
        start: Start, creds: CredentialDir, caplog: pytest.LogCaptureFixture) -> None:
    creds.write("kiro-a.json", "at-a-0001", "rt-a-0001", HOUR)
    config = parse_config(f"pools:\n  p:\n    credentials_dir: {creds.path}\n"
                          "    accounts: [{name: kiro-b, key: sk-static-0002}]\n")
    running = await start(config, poll=60)
    static = running.account("kiro-b")
    creds.write("kiro-b.json", "at-b-0001", "rt-b-0001", HOUR)
    await running.poll()
    assert running.account("kiro-b") is static and static.credential.value == "Bearer sk-static-0002"
    assert any("two accounts are named 'kiro-b'" in r.getMessage() and "left out" in r.getMessage()
               for r in caplog.records)
    creds.write("kiro-c.json", "at-c-0001", "rt-c-0001", HOUR)  # other changes still apply
    await running.poll()
    assert "p/kiro-c" in running.core.pools["p"].accounts

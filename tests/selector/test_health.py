"""Every account health transition, driven through the selector core with a controlled clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from selector_service.domain.admission import Probing
from selector_service.domain.errors import NoAccountAvailableError
from selector_service.domain.leases import Grant
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport
from selector_service.domain.selector import SelectorCore
from selector_service.plugin.types import SelectionRequest
from tests.selector.conftest import CoreFactory, FakeClock, open_accounts, pool_config

ONE = "- {name: a, key: sk-test-aaaaaaaa1111}"
TWO = """
- {name: a, key: sk-test-aaaaaaaa1111}
- {name: b, key: sk-test-bbbbbbbb2222}
"""


async def lease(core: SelectorCore, exclude: tuple[str, ...] = (), session: str = "", pool: str = "p") -> Grant:
    return await core.select(SelectionRequest(pool=pool, session_key=session), exclude, timeout=0)


async def report(core: SelectorCore, grant: Grant, outcome: Outcome, **fields: object) -> None:
    result = await core.report(OutcomeReport(grant.lease.lease_id, outcome, **fields))  # type: ignore[arg-type]
    assert result.recorded


def state(core: SelectorCore, account_id: str) -> AccountState:
    account = core.pools["p"].accounts[account_id]
    return account.state(core._clock())[0]


async def served_by(core: SelectorCore, n: int) -> list[str]:
    """Lease and succeed ``n`` times; the account names that served."""
    names = []
    for _ in range(n):
        grant = await lease(core)
        names.append(grant.lease.account.name)
        await report(core, grant, Outcome.SUCCESS)
    return names


async def test_429_with_retry_after_cools_until_then(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO))
    first = await lease(core)
    await report(core, first, Outcome.RATE_LIMITED, http_status=429, retry_after_ms=30_000)
    cooled = first.lease.account.account_id
    assert state(core, cooled) is AccountState.COOLING
    assert cooled not in {f"p/{n}" for n in await served_by(core, 4)}
    clock.advance(29.9)
    assert cooled not in {f"p/{n}" for n in await served_by(core, 4)}
    clock.advance(0.2)
    assert state(core, cooled) is AccountState.PROBING  # its health is unknown until a probe answers
    assert cooled in {f"p/{n}" for n in await served_by(core, 4)}
    assert state(core, cooled) is AccountState.HEALTHY


async def test_retry_after_is_capped(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, cooldown="{max_retry_after: 60s}"))
    grant = await lease(core)
    await report(core, grant, Outcome.RATE_LIMITED, retry_after_ms=86_400_000)
    assert grant.lease.account.cooldown_remaining(clock()) == pytest.approx(60.0)


async def test_429_without_retry_after_backs_off_exponentially(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, cooldown="{base: 1s, max: 5s, jitter: 0}"))
    seen = []
    for _ in range(5):
        grant = await lease(core)
        await report(core, grant, Outcome.RATE_LIMITED)
        remaining = grant.lease.account.cooldown_remaining(clock())
        seen.append(round(remaining, 3))
        clock.advance(remaining + 0.001)
    assert seen == [1.0, 2.0, 4.0, 5.0, 5.0]


async def test_jitter_stays_within_its_fraction(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, cooldown="{base: 10s, max: 1h, jitter: 0.5}"))
    grant = await lease(core)
    await report(core, grant, Outcome.RATE_LIMITED)
    assert 10.0 <= grant.lease.account.cooldown_remaining(clock()) <= 15.0


async def test_new_cooldown_never_shortens_a_longer_one(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111}"))
    await open_accounts(core)
    first, second = await lease(core), await lease(core)
    await report(core, first, Outcome.RATE_LIMITED, retry_after_ms=600_000)
    await report(core, second, Outcome.RATE_LIMITED, retry_after_ms=5_000)
    assert first.lease.account.cooldown_remaining(clock()) == pytest.approx(600.0)


async def test_rate_limit_headers_at_zero_block_until_reset(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first"))
    grant = await lease(core)
    assert grant.lease.account.name == "a"
    await report(core, grant, Outcome.SUCCESS, rate_limit_headers={
        "x-ratelimit-remaining-requests": "0", "x-ratelimit-limit-requests": "100",
        "x-ratelimit-reset-requests": "20s", "x-ratelimit-remaining-tokens": "5000",
        "x-ratelimit-limit-tokens": "10000",
    })
    assert state(core, "p/a") is AccountState.COOLING
    assert set(await served_by(core, 3)) == {"b"}
    clock.advance(20.1)
    assert (await lease(core)).lease.account.name == "a"


async def test_anthropic_output_token_headers_are_kept_apart(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first", format="anthropic"))
    grant = await lease(core)
    reset = datetime.fromtimestamp(clock() + 30, tz=UTC).isoformat().replace("+00:00", "Z")
    await report(core, grant, Outcome.SUCCESS, rate_limit_headers={
        "anthropic-ratelimit-input-tokens-remaining": "40000", "anthropic-ratelimit-input-tokens-limit": "80000",
        "anthropic-ratelimit-output-tokens-remaining": "0", "anthropic-ratelimit-output-tokens-limit": "16000",
        "anthropic-ratelimit-output-tokens-reset": reset,
    })
    account = grant.lease.account
    assert account.quota.limits is not None
    assert account.quota.limits.limits["input_tokens"].remaining == 40000
    assert account.quota.limits.limits["output_tokens"].remaining == 0
    assert account.view.headroom == 0.0
    assert state(core, "p/a") is AccountState.COOLING
    clock.advance(30.1)
    assert state(core, "p/a") is AccountState.HEALTHY


async def test_configured_rpm_limit_is_honoured(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config("""
        - {name: a, key: sk-test-aaaaaaaa1111, rpm_limit: 2}
        - {name: b, key: sk-test-bbbbbbbb2222}
    """, strategy="fill_first"))
    assert await served_by(core, 4) == ["a", "a", "b", "b"]
    clock.advance(60.1)
    assert await served_by(core, 1) == ["a"]


async def test_learned_quota_refills_at_its_reset_without_a_request(make_core: CoreFactory, clock: FakeClock) -> None:
    """p2c prefers headroom; an account left idle on a nearly spent quota gets it back when the quota resets."""
    core = await make_core(pool_config(TWO, strategy="p2c"))
    for name, remaining, reset in (("a", "1", "10s"), ("b", "50", "1h")):
        grant = await lease(core, exclude=tuple(f"p/{other}" for other in "ab" if other != name))
        await report(core, grant, Outcome.SUCCESS, rate_limit_headers={
            "x-ratelimit-remaining-requests": remaining, "x-ratelimit-limit-requests": "100",
            "x-ratelimit-reset-requests": reset})
    a = core.pools["p"].accounts["p/a"]
    assert a.view.headroom == pytest.approx(0.01)
    assert set(await served_by(core, 4)) == {"b"}
    clock.advance(10.1)
    assert (await lease(core)).lease.account.name == "a"
    assert a.view.headroom == 1.0


async def test_an_expiring_credential_is_still_rechecked_on_an_account_with_learned_quota(
    make_core: CoreFactory, clock: FakeClock
) -> None:
    """Both re-checks are scheduled: the headroom's and the credential expiry's (past its skip threshold, 300 s by
    default, the account is not leased)."""
    core = await make_core(pool_config(TWO, strategy="fill_first"))
    a = core.pools["p"].accounts["p/a"]
    grant = await lease(core)
    assert grant.lease.account is a
    await report(core, grant, Outcome.SUCCESS, rate_limit_headers={
        "x-ratelimit-remaining-requests": "50", "x-ratelimit-limit-requests": "100",
        "x-ratelimit-reset-requests": "1h"})
    a.set_credential("sk-test-renewed-aaaa", expires_at=clock() + 400, now=clock())  # a token that expires
    core.account_changed(a)
    assert await served_by(core, 1) == ["a"]
    clock.advance(101)  # within the skip threshold of the expiry
    assert await served_by(core, 2) == ["b", "b"]


async def test_configured_window_headroom_recovers_once_the_minute_passes(
    make_core: CoreFactory, clock: FakeClock
) -> None:
    """least_loaded breaks ties by headroom: requests older than a minute no longer count against an idle account."""
    core = await make_core(pool_config("""
        - {name: a, key: sk-test-aaaaaaaa1111, rpm_limit: 10}
        - {name: b, key: sk-test-bbbbbbbb2222, rpm_limit: 10}
    """, strategy="least_loaded"))
    assert await served_by(core, 3) == ["a", "b", "a"]  # ties go to config order, then the one with more room
    clock.advance(60.5)
    # Every request has aged out: a tie again (on the old counts, b would look roomier: 9 left against 8).
    assert await served_by(core, 1) == ["a"]
    assert core.pools["p"].accounts["p/b"].view.headroom == 1.0


async def test_consecutive_server_errors_open_the_circuit(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first", circuit="{failures: 3, cooldown: 10s}"))
    for _ in range(3):
        grant = await lease(core)
        assert grant.lease.account.name == "a"
        await report(core, grant, Outcome.SERVER_ERROR, http_status=502)
    assert state(core, "p/a") is AccountState.CIRCUIT_OPEN
    assert set(await served_by(core, 3)) == {"b"}
    clock.advance(10.1)
    assert state(core, "p/a") is AccountState.PROBING  # half-open
    assert core.pools["p"].accounts["p/a"].admission.probing is Probing.HALF_OPEN
    probe = await lease(core)
    assert probe.lease.account.name == "a" and probe.lease.probe
    # Only one probe at a time: the next lease goes elsewhere.
    assert (await lease(core)).lease.account.name == "b"
    await report(core, probe, Outcome.SUCCESS)
    assert state(core, "p/a") is AccountState.HEALTHY
    assert probe.lease.account.health.failure_streak == 0


async def test_failed_probe_reopens_the_circuit_for_longer(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(ONE, circuit="{failures: 2, cooldown: 10s}"))
    for _ in range(2):
        await report(core, await lease(core), Outcome.NETWORK_ERROR)
    account = core.pools["p"].accounts["p/a"]
    assert account.cooldown_remaining(clock()) == pytest.approx(10.0)
    clock.advance(10.1)
    await report(core, await lease(core), Outcome.TIMEOUT)
    assert state(core, "p/a") is AccountState.CIRCUIT_OPEN
    assert account.cooldown_remaining(clock()) == pytest.approx(20.0)


async def test_auth_failure_disables_until_re_enabled(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first"))
    grant = await lease(core)
    await report(core, grant, Outcome.AUTH_FAILED, http_status=401, detail="invalid x-api-key")
    account = grant.lease.account
    assert state(core, "p/a") is AccountState.DISABLED
    assert account.disabled_reason == "credentials rejected (401): invalid x-api-key"
    clock.advance(86_400)
    assert set(await served_by(core, 5)) == {"b"}
    await core.persist(account.enable())
    core.pools["p"].refresh(account, clock())
    assert (await lease(core)).lease.account.name == "a"


async def test_success_clears_failure_streak_and_stale_cooldown(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111}", cooldown="{jitter: 0}"))
    await report(core, await lease(core), Outcome.SERVER_ERROR)
    await report(core, await lease(core), Outcome.SERVER_ERROR)
    account = core.pools["p"].accounts["p/a"]
    assert account.health.failure_streak == 2
    await report(core, await lease(core), Outcome.RATE_LIMITED)
    clock.advance(1.5)
    await report(core, await lease(core), Outcome.SUCCESS)
    health = account.health
    assert health.failure_streak == 0 and health.rate_limit_streak == 0 and health.cooldown_until == 0.0


async def test_an_older_success_does_not_lift_a_newer_cooldown(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111}"))
    await open_accounts(core)
    slow, fast = await lease(core), await lease(core)
    clock.advance(1)
    await report(core, fast, Outcome.RATE_LIMITED, retry_after_ms=60_000)
    await report(core, slow, Outcome.SUCCESS)  # granted before the 429: proves nothing about the quota now
    assert state(core, "p/a") is AccountState.COOLING


@pytest.mark.parametrize("outcome", [Outcome.CLIENT_ERROR, Outcome.CANCELLED])
async def test_client_side_outcomes_leave_health_alone(make_core: CoreFactory, outcome: Outcome) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111}", circuit="{failures: 1}"))
    await open_accounts(core)
    for _ in range(3):
        await report(core, await lease(core), outcome, http_status=400)
    account = core.pools["p"].accounts["p/a"]
    assert state(core, "p/a") is AccountState.HEALTHY
    assert account.health.failure_streak == 0 and account.error_rate == 0.0 and account.in_flight == 0


async def test_higher_priority_tier_serves_first(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config("""
        - {name: low, key: sk-test-low0000001, priority: low}
        - {name: hi1, key: sk-test-hi10000001, priority: high}
        - {name: hi2, key: sk-test-hi20000002, priority: 2}
        - {name: mid, key: sk-test-mid0000001}
    """))
    assert sorted(await served_by(core, 4)) == ["hi1", "hi1", "hi2", "hi2"]
    for name in ("hi1", "hi2"):
        grant = await lease(core, exclude=tuple(f"p/{n}" for n in ("hi1", "hi2") if n != name))
        await report(core, grant, Outcome.RATE_LIMITED, retry_after_ms=10_000)
    assert set(await served_by(core, 3)) == {"mid"}
    assert (await lease(core, exclude=("p/mid",))).lease.account.name == "low"


async def test_sticky_session_stays_then_moves_and_stays(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config("""
        - {name: a, key: sk-test-aaaaaaaa1111}
        - {name: b, key: sk-test-bbbbbbbb2222}
        - {name: c, key: sk-test-cccccccc3333}
    """, sticky_sessions="true"))
    first = await lease(core, session="s1")
    await report(core, first, Outcome.SUCCESS)
    home = first.lease.account.name
    for _ in range(5):
        grant = await lease(core, session="s1")
        assert grant.lease.account.name == home
        await report(core, grant, Outcome.SUCCESS)
    grant = await lease(core, session="s1")
    await report(core, grant, Outcome.RATE_LIMITED, retry_after_ms=60_000)
    moved = await lease(core, session="s1")
    assert moved.lease.account.name != home
    await report(core, moved, Outcome.SUCCESS)
    clock.advance(61)  # the old account is healthy again, but the session stays where it moved
    for _ in range(3):
        grant = await lease(core, session="s1")
        assert grant.lease.account.name == moved.lease.account.name
        await report(core, grant, Outcome.SUCCESS)


async def test_unreported_lease_expires_and_frees_its_slot(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111, max_concurrency: 1}", lease_ttl="60s"))
    grant = await lease(core)
    with pytest.raises(NoAccountAvailableError) as exc:
        await lease(core)
    assert exc.value.cause == "busy"
    clock.advance(61)
    again = await lease(core)
    assert again.lease.account.in_flight == 1
    late = await core.report(OutcomeReport(grant.lease.lease_id, Outcome.SUCCESS))
    assert not late.recorded and "expired" in late.detail


async def test_double_and_unknown_reports_are_safe(make_core: CoreFactory) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111}"))
    grant = await lease(core)
    await report(core, grant, Outcome.RATE_LIMITED, retry_after_ms=1000)
    again = await core.report(OutcomeReport(grant.lease.lease_id, Outcome.RATE_LIMITED))
    assert not again.recorded and "already reported" in again.detail
    unknown = await core.report(OutcomeReport("no-such-lease", Outcome.SUCCESS))
    assert not unknown.recorded and "unknown" in unknown.detail
    assert grant.lease.account.health.rate_limited_total == 1 and grant.lease.account.in_flight == 0


async def test_restart_keeps_cooldowns_and_disables(make_core: CoreFactory, clock: FakeClock, tmp_path) -> None:
    config = pool_config(TWO, strategy="fill_first")
    core = await make_core(config, database=tmp_path / "shared.db")
    await report(core, await lease(core), Outcome.RATE_LIMITED, retry_after_ms=600_000)
    await report(core, await lease(core), Outcome.AUTH_FAILED, http_status=403)
    restarted = await make_core(config, database=tmp_path / "shared.db")
    a, b = restarted.pools["p"].accounts["p/a"], restarted.pools["p"].accounts["p/b"]
    assert a.state(clock())[0] is AccountState.COOLING and a.cooldown_remaining(clock()) == pytest.approx(600.0)
    assert b.state(clock())[0] is AccountState.DISABLED
    with pytest.raises(NoAccountAvailableError):
        await lease(restarted)


async def test_changed_key_is_not_disabled_by_the_old_keys_failure(make_core: CoreFactory, tmp_path) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-oldkey0001}"), database=tmp_path / "s.db")
    await report(core, await lease(core), Outcome.AUTH_FAILED, http_status=401)
    rotated = await make_core(pool_config("- {name: a, key: sk-test-newkey0002}"), database=tmp_path / "s.db")
    assert (await lease(rotated)).lease.account.name == "a"


async def test_concurrent_rate_limited_reports_persist_exactly(make_core: CoreFactory, tmp_path) -> None:
    core = await make_core(pool_config("- {name: a, key: sk-test-aaaaaaaa1111}"), database=tmp_path / "exact.db")
    await open_accounts(core)
    grants = [await lease(core) for _ in range(100)]
    results = await asyncio.gather(*(
        core.report(OutcomeReport(g.lease.lease_id, Outcome.RATE_LIMITED, http_status=429)) for g in grants
    ))
    assert all(r.recorded for r in results)
    saved = await core._store.fetch("p/a")  # type: ignore[attr-defined]
    assert saved is not None
    assert saved.rate_limited_total == 100
    assert saved.rate_limit_streak == 1  # one burst of 429s is one piece of news: one backoff step


async def test_a_disable_reason_never_keeps_a_part_of_the_key(make_core: CoreFactory, clock: FakeClock) -> None:
    """Any client's report may quote the upstream's message; the selector scrubs it before it is kept or stored."""
    key = "sk-test-aaaaaaaa1111"
    core = await make_core(pool_config(f"- {{name: a, key: {key}}}"))
    grant = await lease(core)
    await report(core, grant, Outcome.AUTH_FAILED, http_status=401,
                 detail=f"401 Incorrect API key provided: sk-test-****1111 (was {key[3:15]})")
    reason = grant.lease.account.disabled_reason
    assert reason.startswith("credentials rejected (401): 401 Incorrect API key provided: …1111")
    assert not any(key[i:i + 8] in reason for i in range(len(key) - 7)), reason
    saved = await core._store.fetch("p/a")  # type: ignore[attr-defined]
    assert saved is not None and saved.disabled_reason == reason

"""Error classes: the rule table (the pool's classify: rules, then the built-ins) and what each class does to an
account, through the selector core with a controlled clock."""

from __future__ import annotations

import pytest

from poolgate.config import ConfigError, parse_config
from selector_service.domain.classify import ErrorClass, classify, pool_rules
from selector_service.domain.leases import Grant
from selector_service.domain.outcomes import AccountState, Outcome, OutcomeReport
from selector_service.domain.selector import SelectorCore
from selector_service.plugin.types import SelectionRequest
from tests.selector.conftest import CoreFactory, FakeClock, open_accounts, pool_config

TWO = """
- {name: a, key: sk-test-aaaaaaaa1111}
- {name: b, key: sk-test-bbbbbbbb2222}
"""


def report(outcome: Outcome, status: int, error_type: str = "", code: str = "", detail: str = "") -> OutcomeReport:
    return OutcomeReport("l", outcome, http_status=status, error_type=error_type, error_code=code, detail=detail)


@pytest.mark.parametrize(("given", "expected"), [
    (report(Outcome.RATE_LIMITED, 429, "insufficient_quota", "insufficient_quota",
            "429 You exceeded your current quota, please check your plan and billing details."),
     ErrorClass.QUOTA_EXHAUSTED),
    (report(Outcome.CLIENT_ERROR, 400, "invalid_request_error", "",
            "400 Your credit balance is too low to access the Anthropic API."), ErrorClass.QUOTA_EXHAUSTED),
    (report(Outcome.RATE_LIMITED, 429, "rate_limit_error"), ErrorClass.RATE_LIMITED),
    (report(Outcome.RATE_LIMITED, 429, "requests", "rate_limit_exceeded"), ErrorClass.RATE_LIMITED),
    (report(Outcome.RATE_LIMITED, 429, "RESOURCE_EXHAUSTED"), ErrorClass.RATE_LIMITED),
    (report(Outcome.RATE_LIMITED, 529, "overloaded_error"), ErrorClass.OVERLOADED),
    (report(Outcome.SERVER_ERROR, 503, "", "", "503 The engine is currently overloaded"), ErrorClass.OVERLOADED),
    (report(Outcome.CLIENT_ERROR, 400, "invalid_request_error", "context_length_exceeded"), ErrorClass.REQUEST_ERROR),
    (report(Outcome.CLIENT_ERROR, 400, "invalid_request_error", "", "400 prompt is too long: 210000 tokens > 200000"),
     ErrorClass.REQUEST_ERROR),
    (report(Outcome.AUTH_FAILED, 401, "authentication_error"), ErrorClass.AUTH),
    (report(Outcome.SERVER_ERROR, 500), ErrorClass.SERVER_ERROR),
    (report(Outcome.NETWORK_ERROR, 0), ErrorClass.NETWORK),
    (report(Outcome.TIMEOUT, 0), ErrorClass.TIMEOUT),
])
def test_the_builtin_table(given: OutcomeReport, expected: ErrorClass) -> None:
    assert classify(given, ())[0] is expected


def test_a_pools_rules_come_first() -> None:
    config = pool_config(TWO, classify="[{match: {status: 429, message: daily}, class: quota_exhausted, rest: 6h}, "
                                       "{match: {type: overloaded_error}, class: rate_limited}]")
    rules = pool_rules(config.pools["p"])
    assert classify(report(Outcome.RATE_LIMITED, 429, "", "", "429 Daily limit reached"), rules) == (
        ErrorClass.QUOTA_EXHAUSTED, 21600.0)
    assert classify(report(Outcome.RATE_LIMITED, 529, "overloaded_error"), rules)[0] is ErrorClass.RATE_LIMITED
    assert classify(report(Outcome.RATE_LIMITED, 429, "", "", "429 slow down"), rules)[0] is ErrorClass.RATE_LIMITED


@pytest.mark.parametrize(("rules", "words"), [
    ("[{match: {}, class: quota_exhausted}]", "pools.p.classify[0].match: match needs at least one of"),
    ("[{match: {status: 200}, class: auth}]", "pools.p.classify[0].match: status must be an HTTP error status"),
    ("[{match: {code: x}, class: weird}]", "pools.p.classify[0].class"),
    ("[{match: {code: x}, class: auth, rest: 1h}]", "rest applies only to the classes"),
    ("[{match: {code: x}, clas: auth}]", "pools.p.classify[0].clas"),
])
def test_bad_rules_are_refused_naming_the_path(rules: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f"pools:\n  p:\n    api_key: sk-test-aaaa1111\n    classify: {rules}\n")
    assert any(words in error for error in caught.value.errors), caught.value.errors


async def lease(core: SelectorCore) -> Grant:
    return await core.select(SelectionRequest(pool="p"), (), timeout=0)


async def fail(core: SelectorCore, grant: Grant, outcome: Outcome, status: int, **fields: object) -> None:
    result = await core.report(OutcomeReport(grant.lease.lease_id, outcome, http_status=status,
                                             **fields))  # type: ignore[arg-type]
    assert result.recorded


def state(core: SelectorCore, name: str, clock: FakeClock) -> tuple[AccountState, str]:
    return core.pools["p"].accounts[f"p/{name}"].state(clock())


async def test_out_of_quota_rests_for_quota_rest_then_probes_once(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first", quota_rest="30m"))
    await open_accounts(core)
    first = await lease(core)
    assert first.lease.account.name == "a"
    await fail(core, first, Outcome.RATE_LIMITED, 429, error_type="insufficient_quota", error_code="insufficient_quota",
               detail="429 You exceeded your current quota")
    current, reason = state(core, "a", clock)
    assert current is AccountState.COOLING and reason == "out of quota (insufficient_quota), resting 1800 s"
    served = set()
    for _ in range(20):  # ten seconds of load: the other account serves every request
        grant = await lease(core)
        served.add(grant.lease.account.name)
        await fail(core, grant, Outcome.SUCCESS, 200)
        clock.advance(0.5)
    assert served == {"b"}
    clock.advance(1800)
    assert state(core, "a", clock)[0] is AccountState.PROBING


async def test_a_quota_rest_follows_the_upstreams_reset_when_it_says(make_core: CoreFactory,
                                                                     clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first"))
    await open_accounts(core)
    await fail(core, await lease(core), Outcome.RATE_LIMITED, 429, error_type="insufficient_quota",
               retry_after_ms=7_200_000)
    assert state(core, "a", clock)[1] == "out of quota (insufficient_quota), resting 7200 s"


async def test_overloaded_fails_over_without_a_cooldown(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first", circuit="{failures: 2, cooldown: 30s}"))
    await open_accounts(core)
    await fail(core, await lease(core), Outcome.RATE_LIMITED, 529, error_type="overloaded_error")
    assert state(core, "a", clock)[0] is AccountState.HEALTHY  # the provider's trouble, not this account's
    await fail(core, await lease(core), Outcome.RATE_LIMITED, 529, error_type="overloaded_error")
    assert state(core, "a", clock)[0] is AccountState.CIRCUIT_OPEN  # a short circuit, as for server errors


async def test_a_request_error_leaves_the_account_healthy(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first", circuit="{failures: 1}"))
    await open_accounts(core)
    await fail(core, await lease(core), Outcome.SERVER_ERROR, 500, error_code="context_length_exceeded")
    account = core.pools["p"].accounts["p/a"]
    assert state(core, "a", clock)[0] is AccountState.HEALTHY and account.health.failure_streak == 0


async def test_a_plan_window_at_its_limit_rests_until_its_reset(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first"))
    await open_accounts(core)
    reset = clock() + 1800
    await fail(core, await lease(core), Outcome.RATE_LIMITED, 429, error_type="rate_limit_error", rate_limit_headers={
        "anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": f"{reset:.0f}",
        "anthropic-ratelimit-unified-5h-status": "rejected", "anthropic-ratelimit-unified-5h-reset": f"{reset:.0f}"})
    clock.advance(1799)
    core.pools["p"].process_due(clock())
    assert state(core, "a", clock)[0] is AccountState.COOLING
    assert (await lease(core)).lease.account.name == "b"
    clock.advance(2)
    core.pools["p"].process_due(clock())
    assert state(core, "a", clock)[0] is AccountState.PROBING


async def test_the_reserve_keeps_a_share_of_a_window_for_the_owner(make_core: CoreFactory, clock: FakeClock) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first", reserve=0.25))
    await open_accounts(core)
    reset = clock() + 600
    grant = await lease(core)
    await fail(core, grant, Outcome.SUCCESS, 200, rate_limit_headers={
        "anthropic-ratelimit-unified-5h-utilization": "0.8", "anthropic-ratelimit-unified-5h-reset": f"{reset:.0f}"})
    current, reason = state(core, "a", clock)
    assert current is AccountState.COOLING and reason.startswith("under the reserve (25%)")
    assert (await lease(core)).lease.account.name == "b"
    clock.advance(601)
    core.pools["p"].process_due(clock())
    assert state(core, "a", clock)[0] is AccountState.HEALTHY


@pytest.mark.parametrize(("detail", "seconds"), [
    ("429 Rate limit reached for gpt-4o in organization org-x on requests per day (RPD): Limit 10000, Used 10000, "
     "Requested 1. Please try again in 6m0s. Visit https://platform.openai.com/account/rate-limits", 360),
    ("429 Resource has been exhausted. Please retry in 37.5s.", 37.5),
    ("429 Rate limit reached. Please try again in 20ms.", 0.02),
])
async def test_the_wait_an_error_message_states_is_honoured(make_core: CoreFactory, clock: FakeClock, detail: str,
                                                            seconds: float) -> None:
    core = await make_core(pool_config(TWO, strategy="fill_first", cooldown="{base: 1s, jitter: 0}"))
    await open_accounts(core)
    await fail(core, await lease(core), Outcome.RATE_LIMITED, 429, detail=detail)
    account = core.pools["p"].accounts["p/a"]
    assert account.cooldown_until == pytest.approx(clock() + seconds)

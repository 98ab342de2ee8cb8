"""What an error says about the account, through real processes on both transports: a 429 for one model leaves the
account serving others; out of credit rests it for quota_rest, then one probe; an overloaded provider fails over
without a cooldown or a disable; a request error reaches the client once; a pool's own classify: rules apply. Upstream
calls are counted per key (and model) at the fake upstream."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.edge.conftest import AUTH, CHAT
from tests.health.conftest import Processes
from tests.support import eventually_async

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from cold_start import drive

TIMEOUT = aiohttp.ClientTimeout(total=60)


def calls(stats: dict[str, Any], key: str, model: str | None = None) -> int:
    if model is None:
        return int(stats["requests"].get(key, 0))
    return int(stats["models"].get(key, {}).get(model, 0))


async def test_a_429_for_one_model_leaves_the_account_serving_the_others(processes: Processes) -> None:
    first, second = "sk-fine-permodel-0001", "sk-fine-permodel-0002"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        await processes.script(session, first, "ratelimited60", model="permodel-a")
        try:
            statuses = []
            for _ in range(8):
                statuses += await drive(session, processes.edge, "permodel-a", 1, 1, headers=AUTH)
                statuses += await drive(session, processes.edge, "permodel-b", 1, 1, headers=AUTH)
            stats = await processes.fake_stats(session)
            accounts = await processes.accounts(session, "permodel")
        finally:
            await processes.script(session, first, None, model="permodel-a")
    assert statuses == [200] * 16
    assert calls(stats, first, "permodel-a") == 1  # one 429, then never again for that model while it rests
    assert calls(stats, first, "permodel-b") == 8  # the first account keeps serving the other model
    assert calls(stats, second, "permodel-a") == 8 and calls(stats, second, "permodel-b") == 0
    [cooldown] = accounts["first"]["model_cooldowns"]
    assert cooldown["scope"] == "permodel-a" and 50_000 < int(cooldown["remaining_ms"]) <= 60_000
    assert accounts["first"]["state"] == "ACCOUNT_STATE_HEALTHY"


async def test_out_of_credit_rests_for_quota_rest_then_gets_one_probe(processes: Processes) -> None:
    """quota_rest is 10 s here: ten seconds of load send one call to the account out of credit, and when its credit
    is back (the upstream answers normally), the first request after the rest is its one probe."""
    broke = "sk-nocredit-quota-0001"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        started = time.monotonic()
        statuses: list[int] = []
        while time.monotonic() - started < 9.0:
            statuses += await drive(session, processes.edge, "quota-x", 4, 2, headers=AUTH)
            await asyncio.sleep(0.2)
        stats = await processes.fake_stats(session)
        account = (await processes.accounts(session, "quota"))["broke"]
        assert account["state"] == "ACCOUNT_STATE_COOLING" and "out of quota (insufficient_quota)" in account["reason"]
        await processes.script(session, broke, "credit-back")  # the upstream answers this key normally again
        try:
            async def rested() -> bool:
                return (await processes.accounts(session, "quota"))["broke"]["state"] != "ACCOUNT_STATE_COOLING"

            await eventually_async(rested, 15, "the quota rest to end")
            before = calls(await processes.fake_stats(session), broke)
            probe = await drive(session, processes.edge, "quota-x", 1, 1, headers=AUTH)
            probed = calls(await processes.fake_stats(session), broke) - before

            # The edge reports the probe's outcome after answering the client: until the selector has it, the
            # account's one probe is still out and the next request goes elsewhere. Wait for the report.
            async def healthy() -> bool:
                return (await processes.accounts(session, "quota"))["broke"]["state"] == "ACCOUNT_STATE_HEALTHY"

            await eventually_async(healthy, 10, "the probe's success to be reported")
            after = await drive(session, processes.edge, "quota-x", 5, 1, headers=AUTH)
            served_after = calls(await processes.fake_stats(session), broke) - before - probed
        finally:
            await processes.script(session, broke, None)
    assert set(statuses) == {200} and len(statuses) >= 40
    assert calls(stats, broke) == 1, stats["requests"]
    assert probe == [200] and probed == 1  # the first request after the rest is the account's probe
    assert after == [200] * 5 and served_after == 5  # the probe succeeded: the account serves again (fill_first)


async def test_an_overloaded_provider_fails_over_without_a_cooldown_or_a_disable(processes: Processes) -> None:
    busy = "sk-overloaded-over-0001"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        statuses = await drive(session, processes.edge, "overload-x", 10, 1, headers=AUTH)
        stats = await processes.fake_stats(session)
        account = (await processes.accounts(session, "overload"))["busy"]
    assert statuses == [200] * 10  # every request failed over to the other account
    assert calls(stats, busy) == 3  # the circuit breaker's three failures, then it rests
    assert account["state"] == "ACCOUNT_STATE_CIRCUIT_OPEN" and account["model_cooldowns"] == []


async def test_a_request_error_reaches_the_client_once_with_one_upstream_call(processes: Processes) -> None:
    strict, other = "sk-contextlimit-req-0001", "sk-fine-req-0002"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        body = {"model": "request-x", "messages": CHAT}
        async with session.post(f"{processes.edge}/v1/chat/completions", json=body, headers=AUTH) as response:
            status, answer = response.status, await response.json()
        stats = await processes.fake_stats(session)
        account = (await processes.accounts(session, "request"))["strict"]
    assert status == 400 and answer["error"]["code"] == "context_length_exceeded"
    assert calls(stats, strict) == 1 and calls(stats, other) == 0  # no failover: another account would say the same
    assert account["state"] in ("ACCOUNT_STATE_HEALTHY", "ACCOUNT_STATE_PROBING") and account["model_cooldowns"] == []
    assert int(account["failures_total"]) == 0 and int(account["rate_limited_total"]) == 0


async def test_a_pools_own_rule_classifies_an_error(processes: Processes) -> None:
    odd = "sk-broken-rules-0001"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        statuses = await drive(session, processes.edge, "rules-x", 6, 1, headers=AUTH)
        stats = await processes.fake_stats(session)
        account = (await processes.accounts(session, "rules"))["odd"]
    assert statuses == [200] * 6  # the 500 failed over, and the account rests as out of quota
    assert calls(stats, odd) == 1
    assert account["state"] == "ACCOUNT_STATE_COOLING" and account["reason"].startswith("out of quota")
    assert 3_500_000 < int(account["cooldown_remaining_ms"]) <= 3_600_000  # the rule's rest: 1 h


async def test_a_models_rest_holds_under_concurrency_with_one_probe_per_window(processes: Processes) -> None:
    """The first account answers 429 with Retry-After 2 for model a only. After that first 429, five seconds of
    requests for a and for b, 16 in flight: the account gets one call for a per 2 s window (its probes), and serves
    b all along."""
    first, second = "sk-fine-scopeload-0001", "sk-fine-scopeload-0002"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        assert await drive(session, processes.edge, "scopeload-b", 1, 1, headers=AUTH) == [200]  # first: known fine
        await processes.script(session, first, "ratelimited2", model="scopeload-a")
        try:
            assert await drive(session, processes.edge, "scopeload-a", 1, 1, headers=AUTH) == [200]  # failed over
            stop = time.monotonic() + 5.0

            async def load(model: str) -> list[int]:
                statuses: list[int] = []
                while time.monotonic() < stop:
                    statuses += await drive(session, processes.edge, model, 32, 8, headers=AUTH)
                return statuses

            for_a, for_b = await asyncio.gather(load("scopeload-a"), load("scopeload-b"))
            stats = await processes.fake_stats(session)
        finally:
            await processes.script(session, first, None, model="scopeload-a")
    assert set(for_a) == {200} and set(for_b) == {200}
    probes = calls(stats, first, "scopeload-a") - 1
    assert 1 <= probes <= 2, stats["models"]  # 5 s of 2 s windows after the first 429: never a second call in one
    assert calls(stats, second, "scopeload-a") == len(for_a) + 1
    assert calls(stats, first, "scopeload-b") == len(for_b) + 1 and calls(stats, second, "scopeload-b") == 0


async def test_headers_at_zero_for_under_a_second_rest_the_model_then_give_it_one_probe(processes: Processes) -> None:
    """An account whose headers say it may make 3 requests a second (each answer taking 150 ms), under 3 s of load
    at concurrency 8 with fill_first: each time its headers reach zero it rests until their reset, a few hundred
    milliseconds, and then gets one call, its probe, whose answer comes before any other call reaches it. Its
    other requests go to the second account; no client sees an error."""
    tight = "sk-slow150-limit3-persecond-shortrest-0001"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        before = len((await processes.fake_stats(session))["arrivals"].get(tight, []))
        stop = time.monotonic() + 3.0
        statuses: list[int] = []
        while time.monotonic() < stop:
            statuses += await drive(session, processes.edge, "shortrest-x", 32, 8, headers=AUTH)
        arrivals = (await processes.fake_stats(session))["arrivals"][tight][before:]
    assert set(statuses) == {200}
    # After a quiet spell (a rest), the next call is alone: the one after it comes once its answer (150 ms) is in.
    after_rests = [i for i in range(1, len(arrivals) - 1) if arrivals[i] - arrivals[i - 1] >= 0.25]
    assert len(after_rests) >= 2, arrivals  # it rested, and served again, more than once in 3 s
    for i in after_rests:
        assert arrivals[i + 1] - arrivals[i] >= 0.14, (i, arrivals)

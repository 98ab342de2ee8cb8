"""Accounts in trouble get one probe, not a burst: counted per key at the fake upstream, through real processes, on
both transports (the module's ``processes`` fixture)."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from pathlib import Path

import aiohttp

from tests.edge.conftest import AUTH, CHAT
from tests.health.conftest import Processes

# The benchmark's load (bench/cold_start.py): the same requests, counted alike.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from cold_start import drive

TIMEOUT = aiohttp.ClientTimeout(total=60)


def _calls(stats: dict[str, object], key: str) -> int:
    requests = stats["requests"]
    assert isinstance(requests, dict)
    return int(requests.get(key, 0))


async def test_cold_start_sends_one_call_to_each_bad_account(processes: Processes) -> None:
    """429 (Retry-After 30), 401 and a fine account on a fresh database: 1,000 requests at concurrency 32, then 200
    streams. Every request that arrives before the first answers waits for a known account, none goes to a bad
    one."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        statuses = await drive(session, processes.edge, "storm-x", 1000, 32, headers=AUTH)
        statuses += await drive(session, processes.edge, "storm-x", 200, 32, stream=True, headers=AUTH)
        stats = await processes.fake_stats(session)
        accounts = await processes.accounts(session, "storm")
    assert [s for s in statuses if s != 200] == []
    limited, rejected = _calls(stats, "sk-ratelimited-storm-0001"), _calls(stats, "sk-unauthorized-storm-0002")
    fine = _calls(stats, "sk-fine-storm-0003")
    assert rejected == 1, stats["requests"]
    assert limited <= 1, stats["requests"]
    assert (limited + rejected + fine) / len(statuses) <= 1.003
    assert accounts["rejected"]["state"] == "ACCOUNT_STATE_DISABLED"
    assert accounts["limited"]["state"] in ("ACCOUNT_STATE_COOLING", "ACCOUNT_STATE_PROBING")
    assert accounts["fine"]["state"] == "ACCOUNT_STATE_HEALTHY"


async def test_retry_after_3_gets_one_call_per_cooldown_window(processes: Processes) -> None:
    """An account answering 429 with Retry-After: 3 under 9 s of load at concurrency 16: one probe per window."""
    key = "sk-ratelimited3-window-0001"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        stop = time.monotonic() + 9.0
        statuses: list[int] = []
        while time.monotonic() < stop:
            statuses += await drive(session, processes.edge, "window-x", 64, 16, headers=AUTH)
        stats = await processes.fake_stats(session)
    assert [s for s in statuses if s != 200] == []
    arrivals = stats["arrivals"][key]  # type: ignore[index]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert 1 <= len(arrivals) <= 4, arrivals  # 9 s of 3 s windows
    assert all(gap >= 2.9 for gap in gaps), gaps  # never twice within one window


async def test_a_burst_of_429s_is_one_backoff_step(processes: Processes) -> None:
    """Ten requests in flight on a known account when it starts answering 429 without Retry-After: it rests one
    base backoff (1 s here, up to 1.2 with jitter), not ten steps, and serves again within two once the upstream
    recovers, after exactly one probe."""
    key = "sk-fine-burst-0001"
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        assert await drive(session, processes.edge, "burst-x", 4, 1, headers=AUTH) == [200] * 4  # known to be fine
        # The 429s come after 300 ms, so that all ten are at the upstream before the first answers.
        await processes.script(session, key, "throttled slow300")
        burst = await drive(session, processes.edge, "burst-x", 10, 10, headers=AUTH)
        recovered_at = time.monotonic()
        await processes.script(session, key, None)
        before = _calls(await processes.fake_stats(session), key)
        account = (await processes.accounts(session, "burst"))["only"]
        [cooldown] = account["model_cooldowns"]  # the account rests for the model the 429s were for
        assert cooldown["scope"] == "burst-x" and int(cooldown.get("remaining_ms", 0)) <= 1200, account
        served = await drive(session, processes.edge, "burst-x", 1, 1, headers=AUTH)
        served_after = time.monotonic() - recovered_at
        calls_after = _calls(await processes.fake_stats(session), key) - before
    assert len(burst) == 10 and set(burst) == {429}
    assert before == 4 + 10
    assert served == [200] and calls_after == 1  # the one probe, which succeeds
    assert served_after <= 2.0, served_after


async def test_cold_start_waits_one_time_to_first_byte_not_a_generation(processes: Processes) -> None:
    """Headers after 200 ms, then a stream of about 5 s: 32 streams at a cold start all get their first byte in
    about two times to first byte (the probes' answers open the accounts), not after the probes' streams end."""
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        started = time.monotonic()

        async def first_byte() -> float:
            body = {"model": "cold-x", "messages": CHAT, "stream": True}
            async with session.post(f"{processes.edge}/v1/chat/completions", json=body, headers=AUTH) as response:
                assert response.status == 200
                await response.content.readany()
                at = time.monotonic() - started
                await response.read()
                return at

        times = await asyncio.gather(*(first_byte() for _ in range(32)))
        stats = await processes.fake_stats(session)
    assert max(times) < 1.5, sorted(times)  # the streams last about 5 s
    assert sum(_calls(stats, f"sk-slow200drip400-cold-000{n}") for n in (1, 2, 3)) == 32

"""What the dashboard shows, in one JSON snapshot: every account's live state (``ListAccounts``), today's usage
(``GetUsage``, day bucket) per account and per client, and the last hour per minute (``GetUsage``, minute buckets).

However many pages are open, the selector is asked at most every :data:`ACCOUNTS_TTL` seconds for the accounts and
every :data:`USAGE_TTL` seconds for the usage (one call in flight at a time, shared by every waiting page), and only
while someone is watching.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiohttp import web

from poolgate.v1 import selector_pb2 as pb
from proxy_edge.handlers import SELECTOR
from proxy_edge.metrics import METRICS
from proxy_edge.selector_client import SelectorError
from proxy_edge.usage import timestamp

ACCOUNTS_TTL = 0.5
USAGE_TTL = 5.0
SERIES_MINUTES = 60
DAY = 86400

T = TypeVar("T")
_STATES: dict[int, str] = {
    v.number: v.name.removeprefix("ACCOUNT_STATE_").lower() for v in pb.AccountState.DESCRIPTOR.values}
_PROBE_REASONS = {v.number: v.name.removeprefix("PROBE_REASON_").lower() for v in pb.ProbeReason.DESCRIPTOR.values}
_FORMATS = {v.number: v.name.removeprefix("API_FORMAT_").lower() for v in pb.ApiFormat.DESCRIPTOR.values}


def state_name(state: int) -> str:
    """The page's name of an AccountState ("healthy", "circuit_open", ...)."""
    return _STATES.get(state, "unspecified")


class _Cached(Generic[T]):
    """A value fetched at most every ``ttl`` seconds, with one fetch in flight shared by every caller."""

    def __init__(self, ttl: float, fetch: Callable[[], Awaitable[T]]) -> None:
        self._ttl = ttl
        self._fetch = fetch
        self._value: T | None = None
        self._at = 0.0
        self._task: asyncio.Task[T] | None = None

    async def get(self) -> T:
        loop = asyncio.get_running_loop()
        if self._value is not None and loop.time() - self._at < self._ttl:
            return self._value
        if self._task is None:
            self._task = loop.create_task(self._refresh())
            self._task.add_done_callback(_retrieve)  # callers that went away leave no unretrieved exception
        return await asyncio.shield(self._task)

    def forget(self) -> None:
        """Fetch afresh on the next ``get`` (after a change the cached value does not show yet)."""
        self._value = None

    async def _refresh(self) -> T:
        try:
            value = await self._fetch()
            self._value, self._at = value, asyncio.get_running_loop().time()
            return value
        finally:
            self._task = None


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


@dataclass(slots=True)
class Usage:
    """Today's totals and the last hour's minute series, per account id."""

    as_of: float
    day_start: float
    series_start: float
    today: dict[str, pb.UsageRow]
    minutes: dict[str, list[pb.UsageRow]]
    error: str = ""
    clients: list[pb.UsageRow] | None = None
    """Today's usage per client (clients with none are not listed)."""


class DashboardFeed:
    """Builds snapshots for one edge application."""

    def __init__(self, app: web.Application, clock: Callable[[], float] = time.time) -> None:
        self._app = app
        self._clock = clock
        self._started = clock()
        self._accounts = _Cached(ACCOUNTS_TTL, self._fetch_accounts)
        self._usage = _Cached(USAGE_TTL, self._fetch_usage)
        self._last_usage: Usage | None = None

    def forget_accounts(self) -> None:
        """The next snapshot lists the accounts afresh (an operator just changed one)."""
        self._accounts.forget()

    async def _fetch_accounts(self) -> pb.ListAccountsResponse:
        return await self._app[SELECTOR].list_accounts()

    async def _fetch_usage(self) -> Usage:
        now = self._clock()
        day_start = now - now % DAY
        series_start = now - now % 60 - (SERIES_MINUTES - 1) * 60
        selector = self._app[SELECTOR]
        try:
            today, minutes, clients = await asyncio.gather(
                selector.get_usage(pb.GetUsageRequest(since=timestamp(day_start), until=timestamp(now + 1),
                                                      bucket=pb.USAGE_BUCKET_DAY)),
                selector.get_usage(pb.GetUsageRequest(since=timestamp(series_start), until=timestamp(now + 1),
                                                      bucket=pb.USAGE_BUCKET_MINUTE)),
                selector.get_usage(pb.GetUsageRequest(since=timestamp(day_start), until=timestamp(now + 1),
                                                      bucket=pb.USAGE_BUCKET_DAY, by_client=True)))
        except SelectorError as exc:
            if self._last_usage is not None and exc.code != "usage_log_off":
                self._last_usage.error = exc.message
                return self._last_usage
            return Usage(now, day_start, series_start, {}, {}, exc.message)
        by_minute: dict[str, list[pb.UsageRow]] = {}
        for row in minutes.rows:
            by_minute.setdefault(row.account_id, []).append(row)
        usage = Usage(now, day_start, series_start, {row.account_id: row for row in today.rows}, by_minute,
                      clients=[row for row in clients.rows if row.client])
        self._last_usage = usage
        return usage

    async def snapshot(self) -> dict[str, Any]:
        """The dashboard's JSON; raises SelectorError when the selector cannot list the accounts."""
        listing, usage = await asyncio.gather(self._accounts.get(), self._usage.get())
        metrics = self._app[METRICS]
        now = self._clock()
        return {
            "generated_at_ms": round(now * 1000),
            "edge": {
                "uptime_s": round(now - self._started),
                "in_flight": dict(metrics.in_flight_by_pool),
            },
            "usage": {
                "as_of_ms": round(usage.as_of * 1000),
                "day_start_ms": round(usage.day_start * 1000),
                "series_start_ms": round(usage.series_start * 1000),
                "minutes": SERIES_MINUTES,
                "error": usage.error or None,
            },
            "pools": [_pool(pool, usage) for pool in listing.pools],
            "clients": [_client(row) for row in sorted(usage.clients or (), key=lambda row: row.client)],
        }


def _client(row: pb.UsageRow) -> dict[str, Any]:
    """One client's usage today (its name only: never a key)."""
    return {"name": row.client, "requests": row.requests, "errors": row.errors, "rate_limited": row.rate_limited,
            "input_tokens": row.input_tokens, "output_tokens": row.output_tokens, "cost": row.cost}


def _pool(pool: pb.PoolStatus, usage: Usage) -> dict[str, Any]:
    return {
        "name": pool.name,
        "format": _FORMATS.get(pool.format, "unspecified"),
        "strategy": pool.strategy,
        "available": pool.available,
        "waiting": pool.waiting,
        "accounts": [_account(account, usage) for account in pool.accounts],
    }


def _account(a: pb.AccountStatus, usage: Usage) -> dict[str, Any]:
    h = a.headroom
    today = usage.today.get(a.account_id)
    requests = [0] * SERIES_MINUTES
    tokens = [0] * SERIES_MINUTES
    for row in usage.minutes.get(a.account_id, ()):
        index = int((row.bucket_start.seconds - usage.series_start) // 60)
        if 0 <= index < SERIES_MINUTES:
            requests[index] += row.requests
            tokens[index] += row.input_tokens + row.output_tokens
    state, reason, cooldown_ms = state_name(a.state), a.reason, a.cooldown_remaining_ms
    resting = [c for c in a.model_cooldowns if c.remaining_ms > 0]
    if resting and state in ("healthy", "probing"):
        # The account serves other models; shown as cooling for the models it rests for, with the longest rest.
        state = "cooling"
        reason = "; ".join(c.reason for c in resting)
        cooldown_ms = max(c.remaining_ms for c in resting)
    return {
        "id": a.account_id,
        "name": a.name,
        "state": state,
        "reason": reason,
        "probe_reason": _PROBE_REASONS.get(a.probe_reason, "unspecified") if a.probe_reason else "",
        "cooldown_ms": cooldown_ms,
        "models": [{"scope": c.scope, "remaining_ms": c.remaining_ms, "reason": c.reason, "probing": c.probing}
                   for c in a.model_cooldowns],
        "in_flight": a.in_flight,
        "max_concurrency": a.max_concurrency,
        "priority": a.priority,
        "weight": a.weight,
        "requests": a.requests_total,
        "successes": a.successes_total,
        "failures": a.failures_total,
        "rate_limited": a.rate_limited_total,
        "error_rate": a.error_rate,
        "recent_latency_ms": a.recent_latency_ms,
        "credential": a.credential_redacted,
        "headroom": {
            "fraction": h.fraction,
            "requests_remaining": h.requests_remaining, "requests_limit": h.requests_limit,
            "input_tokens_remaining": h.input_tokens_remaining, "input_tokens_limit": h.input_tokens_limit,
            "output_tokens_remaining": h.output_tokens_remaining, "output_tokens_limit": h.output_tokens_limit,
            "reset_in_ms": h.reset_in_ms,
            "known": any(v >= 0 for v in (h.requests_remaining, h.input_tokens_remaining,
                                          h.output_tokens_remaining)),
        },
        "today": None if today is None else {
            "requests": today.requests, "successes": today.successes, "errors": today.errors,
            "rate_limited": today.rate_limited,
            "input_tokens": today.input_tokens, "output_tokens": today.output_tokens, "cost": today.cost,
            "latency_p50_ms": today.latency_p50_ms,
        },
        "series": {"requests": requests, "tokens": tokens},
    }

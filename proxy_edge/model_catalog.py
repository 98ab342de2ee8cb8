"""The models each pool's upstream lists, for ``GET /v1/models``: what a ``models:`` glob pattern (``gpt-*``) offers.

A pattern is not a model a client can pick from a list, so the list shows the upstream's own names that the pattern
serves. They are asked for with one account of the pool, leased from the selector as a light call (it counts in
neither the account's concurrency nor its request rate) and reported like any call, so a rejected key is noticed
here too. Answers are kept :data:`FRESH_FOR` seconds, failures :data:`RETRY_AFTER` seconds, and one pool is asked
once at a time: listing models never sends a burst upstream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

from poolgate.secrets import Scrubber
from proxy_edge import outcomes as oc
from proxy_edge.egress import Egress
from proxy_edge.headers import rate_limit_headers, upstream_request_headers
from proxy_edge.leases import Lease, Outcome
from proxy_edge.selector_client import SelectorClient, SelectorError

log = logging.getLogger("poolgate.edge")

FRESH_FOR = 600.0
RETRY_AFTER = 60.0
TIMEOUT = 5.0
"""The longest an upstream's answer is waited for."""
WAIT = 6.0
"""The longest a model list request waits for the upstreams (a lease included)."""
MAX_BODY = 1024 * 1024
MAX_MODELS = 5000
MAX_NAME = 256


@dataclass(slots=True)
class _Entry:
    names: tuple[str, ...]
    until: float


class ModelCatalog:
    """Model names per pool as their upstreams list them (empty while unknown or when the upstream cannot say)."""

    def __init__(self, formats: Mapping[str, str], session: aiohttp.ClientSession, selector: SelectorClient,
                 egress: Egress | None = None) -> None:
        self._formats = formats
        """Each pool's API format (the routing of the moment)."""
        self._session = session
        self._selector = selector
        self._egress = egress
        self._entries: dict[str, _Entry] = {}
        self._fetching: dict[str, asyncio.Task[tuple[str, ...]]] = {}

    async def names(self, pools: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """What each of ``pools`` lists: from the cache, else asked (all pools at once, each at most once)."""
        wanted = [pool for pool in pools if pool in self._formats]
        now = time.monotonic()
        tasks = {}
        for pool in wanted:
            entry = self._entries.get(pool)
            if entry is None or entry.until <= now:
                task = self._fetching.get(pool)
                if task is None:
                    task = self._fetching[pool] = asyncio.create_task(self._refresh(pool))
                tasks[pool] = task
        if tasks:  # a pool whose accounts are all busy is not waited for: its patterns list configured names
            await asyncio.wait([asyncio.shield(task) for task in tasks.values()], timeout=WAIT)
        return {pool: self._entries[pool].names if pool in self._entries else () for pool in wanted}

    async def _refresh(self, pool: str) -> tuple[str, ...]:
        try:
            names = await self._fetch(pool)
            until = FRESH_FOR
        except Exception as exc:  # any failure: keep what was known, ask again later
            log.info("could not list the models of pool %s (%s); the model list shows only configured names", pool,
                     exc)
            names = self._entries[pool].names if pool in self._entries else ()
            until = RETRY_AFTER
        finally:
            self._fetching.pop(pool, None)
        self._entries[pool] = _Entry(names, time.monotonic() + until)
        return names

    async def _fetch(self, pool: str) -> tuple[str, ...]:
        try:
            lease = await self._selector.select(pool, "", "", [], light=True)
        except SelectorError as exc:
            raise RuntimeError(exc.message) from None
        anthropic = self._formats[pool] == "anthropic"
        path = "/v1/models" if anthropic else "/models"
        headers = upstream_request_headers((), lease.credential, lease.extra_headers, anthropic)
        report = Outcome()
        started = time.monotonic()
        url = URL(lease.base_url.rstrip("/") + path)
        route = self._egress.route(lease.proxy, url) if self._egress is not None else None
        try:
            async with self._session.get(url, headers=headers, params={"limit": "1000"} if anthropic else None,
                                         timeout=aiohttp.ClientTimeout(total=TIMEOUT),
                                         proxy=route.url if route is not None else None) as response:
                report.http_status = response.status
                report.rate_limit_headers = rate_limit_headers(response.headers.items())
                body = await response.content.read(MAX_BODY + 1)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._report(lease, report, oc.TIMEOUT if isinstance(exc, TimeoutError) else oc.NETWORK_ERROR,
                         started, type(exc).__name__)
            raise RuntimeError(f"{type(exc).__name__} asking {pool}'s upstream") from None
        if not 200 <= report.http_status < 300:
            detail = Scrubber(lease.credential[1]).text(body[:200].decode(errors="replace"))
            self._report(lease, report, oc.outcome_for_status(report.http_status), started,
                         f"listing models: {detail}")
            raise RuntimeError(f"the upstream answered {report.http_status}")
        self._report(lease, report, oc.SUCCESS, started, "")
        return _model_ids(body)

    def _report(self, lease: Lease, report: Outcome, outcome: int, started: float, detail: str) -> None:
        report.outcome = outcome
        report.latency_ms = int((time.monotonic() - started) * 1000)
        report.detail = detail[:300]
        self._selector.report_later(lease, report)


def _model_ids(body: bytes) -> tuple[str, ...]:
    """The ``data[].id`` of an OpenAI or Anthropic model list (bounded in count and length)."""
    if len(body) > MAX_BODY:
        raise RuntimeError("the model list is larger than 1 MiB")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise RuntimeError("the model list is not JSON") from None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise RuntimeError("the model list has no data array")
    ids = [item["id"] for item in items[:MAX_MODELS] if isinstance(item, dict) and isinstance(item.get("id"), str)]
    return tuple(dict.fromkeys(i for i in ids if 0 < len(i) <= MAX_NAME and i.isprintable()))

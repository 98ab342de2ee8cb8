"""The usage log: one record per reported attempt, written in batches off the request path, and rolled up per
account per time bucket on demand."""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from poolgate.config import Config

log = logging.getLogger("poolgate.selector.usage")

FLUSH_INTERVAL = 1.0
FLUSH_SIZE = 2000
MAX_BUFFERED = 100_000
"""Records held while the database is slower than the reports (about 15 MB); beyond, new records are dropped and
counted, so a slow or stuck database cannot grow the selector's memory without bound."""
PRUNE_INTERVAL = 3600.0
BUCKETS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(slots=True)
class UsageRecord:
    at: float
    pool: str
    account_id: str
    account_name: str
    model: str
    outcome: str
    http_status: int
    latency_ms: int
    ttft_ms: int
    input_tokens: int
    output_tokens: int
    cost: float
    client: str = ""
    """The client the attempt was made for (``SelectAccountRequest.client.name``); empty for none."""


@dataclass(slots=True)
class UsageRollup:
    """One account's usage in one time bucket."""

    bucket_start: float
    pool: str
    account_id: str
    account_name: str
    client: str = ""
    """Set when rolled up per client (or filtered by one)."""
    requests: int = 0
    successes: int = 0
    errors: int = 0
    rate_limited: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latencies: list[int] = field(default_factory=list)
    ttfts: list[int] = field(default_factory=list)

    def percentiles(self, *qs: int, ttft: bool = False) -> list[float]:
        """The ``qs`` percentiles (1-99) of the latencies (or times to first token), from one sort."""
        values = self.ttfts if ttft else self.latencies
        if not values:
            return [0.0 for _ in qs]
        if len(values) == 1:
            return [float(values[0]) for _ in qs]
        cuts = statistics.quantiles(values, n=100, method="inclusive")
        return [float(cuts[q - 1]) for q in qs]


class UsageStore(Protocol):
    async def append_usage(self, records: list[UsageRecord]) -> None: ...
    async def usage_between(self, since: float, until: float, pool: str, account_id: str,
                            client: str = "") -> list[UsageRecord]: ...
    async def prune_usage(self, before: float) -> int: ...


class PriceTable:
    """Per-model prices in USD per million tokens, from the config's ``prices:`` (exact names or globs)."""

    def __init__(self, prices: Mapping[str, tuple[float, float]]) -> None:
        self._prices = dict(prices)
        self._cache: dict[str, tuple[float, float] | None] = {}

    @classmethod
    def from_config(cls, config: Config) -> PriceTable:
        return cls({model: (price.input, price.output) for model, price in config.prices.items()})

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        if model not in self._cache:
            price = self._prices.get(model)
            if price is None:
                price = next((p for pattern, p in self._prices.items() if fnmatch.fnmatchcase(model, pattern)), None)
            self._cache[model] = price
        price = self._cache[model]
        if price is None:
            return 0.0
        return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000


class UsageRecorder:
    """Buffers records in memory; a background task writes them in one transaction per second."""

    def __init__(self, store: UsageStore, retention: float, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._retention = retention
        self._buffer: list[UsageRecord] = []
        self._task: asyncio.Task[None] | None = None
        self._full = asyncio.Event()
        self._closing = False
        self._overflowing = False
        self.dropped = 0
        """Records not written: dropped while :data:`MAX_BUFFERED` were waiting, or lost with a failed write."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="poolgate-usage-writer")

    def record(self, record: UsageRecord) -> None:
        buffer = self._buffer
        if len(buffer) >= MAX_BUFFERED:
            if not self._overflowing:
                self._overflowing = True
                log.warning("the usage log's database is not keeping up: %d records wait to be written; new records "
                            "are dropped until it catches up (poolgate_selector_usage_records_dropped counts them)",
                            len(buffer))
            self.dropped += 1
            return
        buffer.append(record)
        if len(buffer) >= FLUSH_SIZE:
            self._full.set()

    async def flush(self) -> None:
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        try:
            await self._store.append_usage(batch)
        except Exception as exc:  # the usage log must never take the selector down
            self.dropped += len(batch)
            log.error("could not write %d usage record(s): %s", len(batch), exc)
        else:
            if self._overflowing:
                self._overflowing = False
                log.warning("the usage log's database caught up (%d records dropped so far)", self.dropped)

    async def close(self) -> None:
        """Write what is buffered and stop: the writer finishes the batch it is writing (not cancelled in the middle
        of it, which lost the batch) and ends its loop."""
        self._closing = True
        if self._task is not None:
            self._full.set()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        since_prune = PRUNE_INTERVAL  # prune once at start
        while True:
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation that comes as the wait
                # ends, and close() then waited for this loop forever.
                async with asyncio.timeout(FLUSH_INTERVAL):
                    await self._full.wait()
            except TimeoutError:
                pass
            self._full.clear()
            await self.flush()
            if self._closing:
                return
            since_prune += FLUSH_INTERVAL
            if since_prune >= PRUNE_INTERVAL:
                since_prune = 0.0
                try:
                    removed = await self._store.prune_usage(self._clock() - self._retention)
                    if removed:
                        log.info("usage log: removed %d record(s) past retention", removed)
                except Exception as exc:
                    log.warning("usage log pruning failed: %s", exc)

    async def rollup(
        self, since: float, until: float, bucket: str, pool: str = "", account_id: str = "", client: str = "",
        by_client: bool = False,
    ) -> list[UsageRollup]:
        """Per account per bucket (per client per bucket with ``by_client``), oldest first; only ``client``'s usage
        when given. Includes records not yet written."""
        await self.flush()
        width = BUCKETS[bucket]
        rows: dict[tuple[float, str], UsageRollup] = {}
        for record in await self._store.usage_between(since, until, pool, account_id, client):
            start = record.at - record.at % width
            key = (start, record.client if by_client else record.account_id)
            rollup = rows.get(key)
            if rollup is None:
                rollup = rows[key] = (UsageRollup(start, "", "", "", record.client) if by_client else UsageRollup(
                    start, record.pool, record.account_id, record.account_name, client))
            rollup.requests += 1
            if record.outcome == "success":
                rollup.successes += 1
                rollup.latencies.append(record.latency_ms)
                if record.ttft_ms:
                    rollup.ttfts.append(record.ttft_ms)
            elif record.outcome not in ("client_error", "cancelled"):
                rollup.errors += 1
            if record.outcome == "rate_limited":
                rollup.rate_limited += 1
            rollup.input_tokens += record.input_tokens
            rollup.output_tokens += record.output_tokens
            rollup.cost += record.cost
        return sorted(rows.values(), key=lambda r: (r.bucket_start, r.pool, r.account_id, r.client))

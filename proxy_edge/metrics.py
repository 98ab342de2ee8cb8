"""The edge's Prometheus metrics, in a registry of its own per application (several edges may share a process).

Label children are resolved once and kept in dictionaries, so a request costs a few dictionary look-ups, counter
increments and two histogram observations. Every label value comes from the config, never from a client: pools and
account names (never credentials) as configured, and models as the config names them or ``other`` (the caller
passes :meth:`proxy_edge.routing.Router.metric_model`), so the number of series is bounded by the config.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _in_flight_family() -> GaugeMetricFamily:
    return GaugeMetricFamily("poolgate_edge_in_flight_requests", "Client requests being served, per pool",
                             labels=["pool"])


class _InFlightCollector(Collector):
    """The in-flight gauge, read from the plain per-pool counts when scraped: the request path keeps one count, with
    no lock (the event loop is its only writer)."""

    def __init__(self, counts: dict[str, int]) -> None:
        self._counts = counts

    def describe(self) -> list[Metric]:
        return [_in_flight_family()]

    def collect(self) -> list[Metric]:
        family = _in_flight_family()
        for pool, count in list(self._counts.items()):
            family.add_metric([pool], count)
        return [family]


class EdgeMetrics:
    """The edge's series, and the methods the request path calls to update them."""

    def __init__(self, pools: list[str] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "poolgate_edge_requests", "Client requests routed to a pool, by requested model and final HTTP status",
            ["pool", "model", "status"], registry=registry)
        self.unrouted = Counter(
            "poolgate_edge_unrouted_requests", "Requests answered before reaching a pool (auth, bad body, unknown "
            "model, other endpoints), by route and HTTP status", ["route", "status"], registry=registry)
        self.attempts = Counter(
            "poolgate_edge_attempts", "Upstream attempts per account, by how they began (success: the upstream "
            "answered 2xx)", ["pool", "account", "outcome"], registry=registry)
        self.failovers = Counter(
            "poolgate_edge_failovers", "Requests moved to another account after a failed attempt",
            ["from_pool", "to_pool", "reason"], registry=registry)
        self.duration = Histogram(
            "poolgate_edge_request_duration_seconds", "Time from the request to the end of its response (streams "
            "included)", ["pool"], buckets=LATENCY_BUCKETS, registry=registry)
        self.ttft = Histogram(
            "poolgate_edge_time_to_first_token_seconds", "Streamed responses: time from the request until the "
            "first event was sent to the client", ["pool"], buckets=LATENCY_BUCKETS, registry=registry)
        self.in_flight_by_pool: dict[str, int] = {}
        """Client requests being served, per pool: the dashboard reads it, and the registry exports it."""
        registry.register(_InFlightCollector(self.in_flight_by_pool))
        self._requests: dict[tuple[str, str, str], Counter] = {}
        self._unrouted: dict[tuple[str, int], Counter] = {}
        self._attempts: dict[tuple[str, str, str], Counter] = {}
        self._failovers: dict[tuple[str, str, str], Counter] = {}
        self._pools: dict[str, tuple[Histogram, Histogram]] = {}
        for pool in pools or ():
            self._pool(pool)

    def _pool(self, pool: str) -> tuple[Histogram, Histogram]:
        children = self._pools.get(pool)
        if children is None:
            children = self._pools[pool] = (self.duration.labels(pool), self.ttft.labels(pool))
            self.in_flight_by_pool.setdefault(pool, 0)
        return children

    def request_started(self, pool: str) -> None:
        self._pool(pool)
        self.in_flight_by_pool[pool] += 1

    def request_finished(self, pool: str, model: str, status: int, seconds: float, ttft: float | None) -> None:
        """A routed request ended (its in-flight count was raised by :meth:`request_started`); ``model`` is a label
        the config gives (a configured name or ``other``)."""
        duration, first_token = self._pool(pool)
        self.in_flight_by_pool[pool] -= 1
        duration.observe(seconds)
        if ttft is not None:
            first_token.observe(ttft)
        key = (pool, model, str(status))
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(*key)
        child.inc()

    def request_unrouted(self, route: str, status: int) -> None:
        key = (route, status)
        child = self._unrouted.get(key)
        if child is None:
            child = self._unrouted[key] = self.unrouted.labels(route, str(status))
        child.inc()

    def attempt(self, pool: str, account: str, outcome: str) -> None:
        key = (pool, account, outcome)
        child = self._attempts.get(key)
        if child is None:
            child = self._attempts[key] = self.attempts.labels(*key)
        child.inc()

    def failover(self, from_pool: str, to_pool: str, reason: str) -> None:
        key = (from_pool, to_pool, reason)
        child = self._failovers.get(key)
        if child is None:
            child = self._failovers[key] = self.failovers.labels(*key)
        child.inc()

    def exposition(self) -> bytes:
        """The registry in Prometheus's text format."""
        return generate_latest(self.registry)


METRICS = web.AppKey("edge_metrics", EdgeMetrics)


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``: the edge's series (no client auth, like other exporters; no credential appears)."""
    return web.Response(body=request.app[METRICS].exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

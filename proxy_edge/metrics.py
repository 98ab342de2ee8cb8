"""The edge's Prometheus metrics, in a registry of its own per application (several edges may share a process).

Label children are resolved once and kept in dictionaries, so a request costs a few dictionary look-ups, counter
increments and a few histogram observations. Every label value comes from the config, never from a client: pools and
account names (never credentials) as configured, and models as the config names them or ``other`` (the caller
passes :meth:`proxy_edge.routing.Router.metric_model`), so the number of series is bounded by the config.

Beside poolgate's own series, requests are counted in the OpenTelemetry GenAI client metrics
(``gen_ai.client.token.usage``, ``gen_ai.client.operation.duration``) as a Prometheus exporter names them: dots become
underscores, a unit of seconds is suffixed, and ``{token}`` (an annotation) is not. The registry also holds
``poolgate_build_info`` and the process's own series (``process_*``, ``python_info``); no ``_created`` series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from poolgate.process_metrics import add_process_series

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
GENAI_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
"""The bucket boundaries the GenAI semantic conventions give ``gen_ai.client.token.usage``."""
GENAI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
"""The bucket boundaries the GenAI semantic conventions give ``gen_ai.client.operation.duration``."""
GENAI_OPERATIONS = {"/v1/chat/completions": "chat", "/v1/responses": "chat", "/v1/messages": "chat",
                    "/v1/embeddings": "embeddings"}
"""``gen_ai.operation.name`` per client path; other paths (token counting) are no GenAI operation."""
TOKEN_USAGE = web.RequestKey("poolgate_token_usage", tuple[int, int])
"""The upstream's token usage for the request, ``(input, output)``, for the code that reads the answer to set; the
request's trace observes it in ``gen_ai_client_token_usage`` when the request ends."""


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


OTHER_CLIENT = "other"
"""The ``client`` label of requests from no client of ``edge.clients`` (plain ``api_keys``, auth off): the label's
values stay bounded by the config."""

class EdgeMetrics:
    """The edge's series, and the methods the request path calls to update them; ``formats`` gives each pool's API
    format (the GenAI ``gen_ai_provider_name`` label)."""

    def __init__(self, pools: Iterable[str] = (), formats: Mapping[str, str] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        add_process_series(registry)
        self.requests = Counter(
            "poolgate_edge_requests", "Client requests routed to a pool, by requested model, final HTTP status and "
            "client (a name of edge.clients, else other)", ["pool", "model", "status", "client"], registry=registry)
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
        genai = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"]
        self.genai_tokens = Histogram(
            "gen_ai_client_token_usage", "Tokens used per request as the upstream reported them (OpenTelemetry "
            "gen_ai.client.token.usage)", [*genai, "gen_ai_token_type"], buckets=GENAI_TOKEN_BUCKETS,
            registry=registry)
        self.genai_duration = Histogram(
            "gen_ai_client_operation_duration_seconds", "Time from the request to the end of its response "
            "(OpenTelemetry gen_ai.client.operation.duration); error_type: the HTTP status of a failed request",
            [*genai, "error_type"], buckets=GENAI_DURATION_BUCKETS, registry=registry)
        self._providers: Mapping[str, str] = formats if formats is not None else {}
        self._genai_durations: dict[tuple[str, str, str, int], Histogram] = {}
        self._genai_tokens: dict[tuple[str, str, str, str], Histogram] = {}
        self.in_flight_by_pool: dict[str, int] = {}
        """Client requests being served, per pool: the dashboard reads it, and the registry exports it."""
        registry.register(_InFlightCollector(self.in_flight_by_pool))
        self._requests: dict[tuple[str, str, str, str], Counter] = {}
        self._unrouted: dict[tuple[str, int], Counter] = {}
        self._attempts: dict[tuple[str, str, str], Counter] = {}
        self._failovers: dict[tuple[str, str, str], Counter] = {}
        self._pools: dict[str, tuple[Histogram, Histogram]] = {}
        for pool in pools:
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

    def request_finished(self, pool: str, model: str, status: int, seconds: float, ttft: float | None,
                         operation: str = "", client: str = OTHER_CLIENT) -> None:
        """A routed request ended (its in-flight count was raised by :meth:`request_started`); ``model`` is a label
        the config gives (a configured name or ``other``), and so is ``client`` (a name of ``edge.clients`` or
        ``other``); ``operation``: its GenAI operation name, if it has one."""
        if operation:
            genai_key = (operation, pool, model, status)
            genai = self._genai_durations.get(genai_key)
            if genai is None:
                genai = self._genai_durations[genai_key] = self.genai_duration.labels(
                    operation, self._provider(pool), model, str(status) if status >= 400 else "")
            genai.observe(seconds)
        duration, first_token = self._pool(pool)
        self.in_flight_by_pool[pool] -= 1
        duration.observe(seconds)
        if ttft is not None:
            first_token.observe(ttft)
        key = (pool, model, str(status), client)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(*key)
        child.inc()

    def token_usage(self, operation: str, pool: str, model: str, input_tokens: int, output_tokens: int) -> None:
        """A GenAI request's tokens as the upstream reported them (an embedding has no output tokens)."""
        self._tokens(operation, pool, model, "input").observe(input_tokens)
        if operation != "embeddings":
            self._tokens(operation, pool, model, "output").observe(output_tokens)

    def _tokens(self, operation: str, pool: str, model: str, token_type: str) -> Histogram:
        key = (operation, pool, model, token_type)
        child = self._genai_tokens.get(key)
        if child is None:
            child = self._genai_tokens[key] = self.genai_tokens.labels(operation, self._provider(pool), model,
                                                                      token_type)
        return child

    def _provider(self, pool: str) -> str:
        return self._providers.get(pool, "_OTHER")  # the conventions' value for a provider they do not name

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

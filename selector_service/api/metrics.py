"""The selector's Prometheus metrics, served over HTTP on their own port.

Per-account figures are read from the live state when scraped (nothing to update on the request path); only the
selection and queue-wait histograms are observed per call. Account labels are names, never credentials. The registry
also holds ``poolgate_build_info`` and the process's own series (``process_*``, ``python_info``); no ``_created``
series.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from poolgate.addresses import split_port_only
from poolgate.config.schema import Config
from poolgate.process_metrics import add_process_series
from selector_service.domain.outcomes import AccountState

if TYPE_CHECKING:
    from aiohttp import web
from selector_service.domain.selector import SelectorCore


class SelectorMetrics:
    """The registry for one selector, and the histograms the gRPC layer observes."""

    def __init__(self, core: SelectorCore) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        add_process_series(self.registry)
        self.selection_seconds = Histogram(
            "poolgate_selector_selection_seconds", "Selection time inside the selector (SelectAccount and the "
            "Exchange stream), queueing included",
            ["pool"], registry=self.registry,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 5, 30))
        self.queue_wait_seconds = Histogram(
            "poolgate_selector_queue_wait_seconds", "Time selections waited for a free account",
            ["pool"], registry=self.registry, buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30))
        self.registry.register(_StateCollector(core))

    def observe_selection(self, pool: str, seconds: float, waited: float) -> None:
        """A granted selection, by ``SelectAccount`` or on the Exchange stream: its time, and its wait if it queued."""
        self.selection_seconds.labels(pool).observe(seconds)
        if waited:
            self.queue_wait_seconds.labels(pool).observe(waited)


class _StateCollector(Collector):
    def __init__(self, core: SelectorCore) -> None:
        self.core = core

    def describe(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The families without samples: registering then costs nothing per account (without it the registry
        would call :meth:`collect` once to learn the names, building every sample for nothing)."""
        yield from _families()
        if self.core.usage is not None:
            yield _usage_dropped()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        families = _families()
        (in_flight, max_conc, state, cooldown, headroom, leases, outcomes, tokens, waiting, transitions,
         model_cooldown) = families
        named: frozenset[str] | None = None  # read from the config when an account rests for a model
        for snapshot in self.core.snapshots():
            waiting.add_metric([snapshot.name], snapshot.waiting)
            for item in snapshot.accounts:
                a = item.account
                key = [snapshot.name, a.name]
                load, health = a.load, a.health
                in_flight.add_metric(key, load.in_flight)
                max_conc.add_metric(key, a.max_concurrency)
                for candidate in AccountState:
                    state.add_metric([*key, candidate.value], 1.0 if candidate is item.state else 0.0)
                cooldown.add_metric(key, item.cooldown_remaining)
                headroom.add_metric(key, a.quota.headroom)
                leases.add_metric(key, load.requests_total)
                outcomes.add_metric([*key, "success"], load.successes_total)
                outcomes.add_metric([*key, "rate_limited"], health.rate_limited_total)
                outcomes.add_metric([*key, "auth_failed"], health.auth_failures_total)
                outcomes.add_metric([*key, "failure"], health.failures_total)
                tokens.add_metric([*key, "input"], load.input_tokens_total)
                tokens.add_metric([*key, "output"], load.output_tokens_total)
                if a.rests.rests:
                    named = configured_models(self.core.config) if named is None else named
                    rests: dict[str, float] = {}
                    for scope, rest in a.rests.rests.items():
                        label = scope if scope in named or scope in snapshot.config.model_groups else OTHER_MODEL
                        rests[label] = max(rests.get(label, 0.0), rest.until - snapshot.taken_at)
                    for label, seconds in rests.items():
                        model_cooldown.add_metric([*key, label], max(0.0, seconds))
        for (pool, before, after), count in self.core.transitions.items():
            transitions.add_metric([pool, before, after], count)
        yield from families
        if self.core.usage is not None:
            dropped = _usage_dropped()
            dropped.add_metric([], self.core.usage.dropped)
            yield dropped


def _usage_dropped() -> CounterMetricFamily:
    return CounterMetricFamily("poolgate_selector_usage_records_dropped",
                               "Usage log records not written (the database fell behind or failed)")


def _families() -> tuple[GaugeMetricFamily | CounterMetricFamily, ...]:
    labels = ["pool", "account"]
    in_flight = GaugeMetricFamily("poolgate_selector_in_flight", "Leases in flight per account", labels=labels)
    max_conc = GaugeMetricFamily("poolgate_selector_max_concurrency", "Configured max concurrency (0: none)",
                                 labels=labels)
    state = GaugeMetricFamily("poolgate_selector_account_state", "1 for the account's current state",
                              labels=[*labels, "state"])
    cooldown = GaugeMetricFamily("poolgate_selector_cooldown_seconds", "Seconds until the account may serve",
                                 labels=labels)
    headroom = GaugeMetricFamily("poolgate_selector_headroom_ratio", "Share of rate-limit quota left",
                                 labels=labels)
    leases = CounterMetricFamily("poolgate_selector_leases", "Leases handed out", labels=labels)
    outcomes = CounterMetricFamily("poolgate_selector_outcomes", "Reported outcomes by kind",
                                   labels=[*labels, "outcome"])
    tokens = CounterMetricFamily("poolgate_selector_tokens", "Tokens reported", labels=[*labels, "direction"])
    waiting = GaugeMetricFamily("poolgate_selector_waiting", "SelectAccount calls queued", labels=["pool"])
    transitions = CounterMetricFamily("poolgate_selector_state_transitions",
                                      "Account state changes caused by reported outcomes",
                                      labels=["pool", "from_state", "to_state"])
    model_cooldown = GaugeMetricFamily(
        "poolgate_selector_model_cooldown_seconds",
        "Seconds until an account serves a model again (per-model rests; 0: the model's probe is next); the model "
        "label is a name the config gives or a model_groups glob, else 'other'",
        labels=[*labels, "model"])
    return (in_flight, max_conc, state, cooldown, headroom, leases, outcomes, tokens, waiting, transitions,
            model_cooldown)


OTHER_MODEL = "other"


def configured_models(config: Config) -> frozenset[str]:
    """The model names the config gives (``models:`` names and the upstream models its values name): the only
    model labels besides groups, so clients cannot grow the metrics by naming models."""
    names = {name for name in config.models if not any(c in name for c in "*?[")}
    for value in config.models.values():
        for item in [value] if isinstance(value, str) else value:
            names.add(item.partition("/")[2] or item)
    return frozenset(names)


async def start_metrics_server(metrics: SelectorMetrics, listen: str) -> tuple[web.AppRunner, int]:
    """Serve GET /metrics on ``listen`` (host:port); returns the runner (to clean up) and the bound port."""
    from aiohttp import web  # only when metrics are on: aiohttp is ~9 MB the selector otherwise does not need

    async def handle(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    from poolgate.http_site import start_site

    app = web.Application()
    app.router.add_get("/metrics", handle)
    host, port = split_port_only(listen)
    return await start_site(app, host, port)

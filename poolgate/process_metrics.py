"""What both processes' Prometheus registries carry besides their own series: the build and the process."""

from __future__ import annotations

import platform

from prometheus_client import CollectorRegistry, Gauge, PlatformCollector, ProcessCollector, disable_created_metrics

from poolgate import __version__


def add_process_series(registry: CollectorRegistry) -> None:
    """``poolgate_build_info`` and the process's series (CPU, memory, open files; Python's version) in ``registry``,
    and no ``_created`` series from this process (prometheus_client's switch is for the whole process)."""
    disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
    Gauge("poolgate_build_info", "The poolgate version and the Python it runs on (always 1)", ["version", "python"],
          registry=registry).labels(__version__, platform.python_version()).set(1)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)

"""Where a selector's resident memory goes before it serves anything: RSS after importing each library it needs, in
the order it loads them, in one fresh interpreter; last, what prometheus_client adds, which the selector loads only
when it serves metrics (``selector.metrics_listen``).

    python bench/import_memory.py
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (label, modules imported together); the libraries first and the selector's own modules after them, so the
# libraries' share shows.
STEPS = (
    ("yaml", ("yaml",)),
    ("pydantic", ("pydantic",)),
    ("gRPC, protobuf, generated stubs", ("grpc", "google.protobuf", "poolgate.v1.selector_pb2_grpc")),
    ("gRPC health and reflection", ("grpc_health.v1.health", "grpc_reflection.v1alpha.reflection")),
    ("pluggy", ("pluggy",)),
    ("SQLAlchemy", ("sqlalchemy",)),
    # Not sqlalchemy.ext.asyncio, which imports the ORM: the selector bridges Core to asyncio itself (core_engine).
    ("aiosqlite, its dialect, greenlet", ("aiosqlite", "sqlalchemy.dialects.sqlite.aiosqlite", "greenlet")),
    ("poolgate config models", ("poolgate.config",)),
    ("selector modules", ("selector_service.app",)),
    ("uvloop", ("uvloop",)),
)


def rss_mb() -> float:
    # Not edge_bench.rss_mb: importing edge_bench would load aiohttp, which this script must not count.
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    start = last = rss_mb()
    print(f"{'step':<42}{'+MB':>7}{'RSS MB':>9}")
    print(f"{'interpreter':<42}{start:>7.1f}{start:>9.1f}")
    for label, modules in STEPS:
        for module in modules:
            importlib.import_module(module)
        now = rss_mb()
        print(f"{label:<42}{now - last:>7.1f}{now:>9.1f}")
        last = now
    print(f"{'all imports':<42}{last - start:>7.1f}{last:>9.1f}")
    importlib.import_module("prometheus_client")
    now = rss_mb()
    print(f"{'+ prometheus_client (with metrics_listen)':<42}{now - last:>7.1f}{now:>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the fake upstream keeps while it serves: its stats (``GET /_fake/stats``) and the scripts that make a key
answer as if it held other words (``POST /_fake/script``, :meth:`fake_upstream.FakeUpstream.script`)."""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class FakeStats:
    requests: Counter[str] = field(default_factory=Counter)
    paths: dict[str, Counter[str]] = field(default_factory=dict)
    """key -> path (``/v1/responses`` …) -> requests."""
    models: dict[str, Counter[str]] = field(default_factory=dict)
    """key -> the model asked for (requests whose JSON body names one) -> requests."""
    first_seen: dict[str, float] = field(default_factory=dict)
    """When each key's first request arrived (monotonic seconds)."""
    arrivals: dict[str, deque[float]] = field(default_factory=dict)
    """When each key's latest requests arrived (monotonic seconds, the last ARRIVALS_KEPT)."""
    minutes: dict[str, tuple[float, int]] = field(default_factory=dict)
    """Each key's rate-limit window: when its minute started (monotonic seconds) and the requests in it."""
    cancelled: int = 0
    in_flight: int = 0
    with_cookie: int = 0
    """Requests that came with a ``Cookie`` header."""


ARRIVALS_KEPT = 1000
STATS = web.AppKey("stats", FakeStats)
SCRIPT = web.AppKey("script", dict[tuple[str, str | None], str])
"""(key, model) -> the words that script the key's answers for that model instead of the key's own; model None: for
every model without a script of its own."""
LATENCY = web.AppKey("latency", float)


def count_request(request: web.Request, key: str) -> float:
    """Count the request in the stats; returns the seconds since the key's first request."""
    stats = request.app[STATS]
    stats.requests[key] += 1
    stats.paths.setdefault(key, Counter())[request.path] += 1
    now = time.monotonic()
    stats.arrivals.setdefault(key, deque(maxlen=ARRIVALS_KEPT)).append(now)
    return now - stats.first_seen.setdefault(key, now)


def minute_window(app: web.Application, key: str, length: float = 60.0) -> tuple[int, float]:
    """Count a request in ``key``'s rate window of ``length`` seconds, a minute unless a key asks for less (a new one
    starts with the first request after the last ended, as providers' per-minute limits do); returns the requests in
    it and the seconds until it ends."""
    windows = app[STATS].minutes
    now = time.monotonic()
    started, used = windows.get(key, (0.0, 0))
    if now - started >= length or used == 0:
        started, used = now, 0
    windows[key] = (started, used + 1)
    return used + 1, started + length - now


def words_for(app: web.Application, key: str, model: str | None) -> str:
    """The words that script ``key``'s answers for ``model``: its per-model script, else its key-wide one, else the
    key itself."""
    scripts = app[SCRIPT]
    if model is not None and (key, model) in scripts:
        return scripts[key, model]
    return scripts.get((key, None), key)


def set_script(app: web.Application, key: str, words: str | None, model: str | None) -> None:
    if words is None:
        app[SCRIPT].pop((key, model), None)
    else:
        app[SCRIPT][key, model] = words

"""Configured limits counted locally: requests or tokens per minute (a sliding window) and per calendar day."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import tzinfo

from poolgate.day_windows import day_end

WINDOW = 60.0  # seconds: rpm / itpm / otpm limits are per minute
WINDOW_LABELS = {"requests": "requests per minute", "input_tokens": "input tokens per minute",
                 "output_tokens": "output tokens per minute", "requests_day": "requests per day",
                 "tokens_day": "tokens per day"}


class MinuteWindow:
    """Sum of amounts over the last minute (requests or tokens), amortised O(1), and the configured limit on it."""

    __slots__ = ("entries", "limit", "total")

    def __init__(self, limit: int) -> None:
        self.entries: deque[tuple[float, int]] = deque()
        self.total = 0
        self.limit = limit

    def add(self, now: float, amount: int) -> None:
        if amount > 0:
            self.entries.append((now, amount))
            self.total += amount

    def take_back(self, at: float, amount: int) -> None:
        """Undo an :meth:`add` of ``amount`` at ``at`` (nothing when it has aged out already)."""
        try:
            self.entries.remove((at, amount))
        except ValueError:
            return
        self.total -= amount

    def used(self, now: float) -> int:
        entries = self.entries
        while entries and entries[0][0] <= now - WINDOW:
            self.total -= entries.popleft()[1]
        return self.total

    def frees_at(self) -> float:
        return self.entries[0][0] + WINDOW if self.entries else 0.0

    @property
    def pending(self) -> bool:
        """Whether some use will age out by itself."""
        return bool(self.entries)

    def clear(self) -> None:
        self.entries.clear()
        self.total = 0


class DayWindow:
    """Sum of amounts since the start of the calendar day (in the pool's quota_timezone), and the limit on it."""

    __slots__ = ("ends", "limit", "total", "zone")

    def __init__(self, limit: int, zone: tzinfo) -> None:
        self.limit = limit
        self.zone = zone
        self.total = 0
        self.ends = 0.0

    def add(self, now: float, amount: int) -> None:
        if amount > 0:
            self.used(now)
            self.total += amount

    def used(self, now: float) -> int:
        if now >= self.ends:
            self.total, self.ends = 0, day_end(now, self.zone)
        return self.total

    def frees_at(self) -> float:
        return self.ends

    @property
    def pending(self) -> bool:
        return self.total > 0

    def clear(self) -> None:
        self.total = 0


Window = MinuteWindow | DayWindow


def full_until(windows: Mapping[str, Window], now: float) -> float:
    """When the fullest of ``windows`` frees up, if one is at its limit; 0.0 when none is."""
    until = 0.0
    for window in windows.values():
        if window.used(now) >= window.limit:
            until = max(until, window.frees_at())
    return until


def room(windows: Mapping[str, Window]) -> float:
    """The share left on the tightest of ``windows`` (1.0 when there is none)."""
    return min((max(0.0, 1.0 - window.total / window.limit) for window in windows.values()), default=1.0)

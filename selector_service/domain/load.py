"""An account's load: leases in flight, what it has served, and how recent calls went (not persisted)."""

from __future__ import annotations

EWMA_ALPHA = 0.2


class Load:
    """Counters and recent averages of one account, kept in memory by this selector."""

    __slots__ = ("error_rate", "error_samples", "in_flight", "input_tokens_total", "output_tokens_total",
                 "recent_latency_ms", "requests_total", "successes_total")

    def __init__(self) -> None:
        self.in_flight = 0
        self.requests_total = self.successes_total = 0
        self.input_tokens_total = self.output_tokens_total = 0
        self.recent_latency_ms = 0.0
        self.error_rate = 0.0
        self.error_samples = 0
        """Outcomes counted in error_rate (it is a plain average of the first few)."""

    def count_tokens(self, input_tokens: int, output_tokens: int) -> None:
        self.input_tokens_total += max(0, input_tokens)
        self.output_tokens_total += max(0, output_tokens)

    def count_outcome(self, failed: bool, latency_ms: int) -> None:
        """An outcome the account answers for (not a cancelled call or a client error). The share of recent
        outcomes that failed: a plain average of the first 1/EWMA_ALPHA outcomes (so 3 failures of 3 read 1.0), then
        exponentially weighted, the latest outcome counting EWMA_ALPHA; and for a success, its latency likewise."""
        self.error_samples += 1
        self.error_rate += max(EWMA_ALPHA, 1.0 / self.error_samples) * ((1.0 if failed else 0.0) - self.error_rate)
        if failed:
            return
        self.successes_total += 1
        if latency_ms > 0:
            latency = float(latency_ms)
            self.recent_latency_ms = latency if not self.recent_latency_ms else (
                self.recent_latency_ms + EWMA_ALPHA * (latency - self.recent_latency_ms))

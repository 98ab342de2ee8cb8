"""Admission by knowledge: an account whose health is unknown takes only probe leases until the upstream answers one.

Health is unknown for a new account (at start, added by a reload, an operator or a credential file), after a cooldown,
when an open circuit turns half-open, after an operator re-enables or resets an account, and for a credential renewed
after a rejection. Every piece of bad news starts a new *epoch*: leases granted before it are stale, so their outcomes
still count in totals but do not step backoffs or circuits again, and they cannot vouch for the account.

While probing, at most ``probe_leases`` leases of the current epoch are in flight (a probe unanswered for
``probe_timeout`` gives up its slot). The first fresh success (an early report at the upstream's response headers, or
the final report) opens the account; with ``slow_start`` it then takes 2, 4, 8 … leases in flight, doubling per
success, until the cap passes ``slow_start`` and the account is fully open.
"""

from __future__ import annotations

import enum
import math

NO_EPOCH = -1
"""An epoch no lease is granted in: an outcome passed with it proves nothing (its lease has vouched already)."""


class Probing(enum.Enum):
    """Why an account's health is unknown (shown to operators)."""

    NEW = "new"
    AFTER_COOLDOWN = "after cooldown"
    HALF_OPEN = "half-open"
    OPERATOR = "re-enabled by an operator"
    RESTORED = "restored from a saved cooldown"
    NEW_CREDENTIAL = "new credential"


class Admission:
    """How many leases an account may take now, by what is known of its health. One per account."""

    __slots__ = ("_next_probe", "_probes", "cap", "epoch", "probe_leases", "probe_timeout", "probing", "slow_start")

    def __init__(self, probe_leases: int = 1, slow_start: int = 0, probe_timeout: float = 30.0) -> None:
        self.cap = 0
        """Slow start: most leases in flight while the account ramps up; 0 when fully open."""
        self.configure(probe_leases, slow_start, probe_timeout)
        self.epoch = 0
        """Counts health changes; a lease remembers the epoch it was granted in."""
        self.probing: Probing | None = Probing.NEW
        self._probes: dict[int, float] = {}
        """The probes of this epoch not yet returned: probe id -> when granted."""
        self._next_probe = 1

    @property
    def probes_in_flight(self) -> int:
        return len(self._probes)

    def configure(self, probe_leases: int, slow_start: int, probe_timeout: float) -> None:
        """Take the pool's settings (at start, and on reload: what is known of the account stays)."""
        self.probe_leases = probe_leases
        self.slow_start = slow_start
        self.probe_timeout = probe_timeout
        if not slow_start:
            self.cap = 0

    def distrust(self, why: Probing) -> None:
        """Health changed (bad news, or an operator's word): leases granted so far are stale, the next are probes."""
        self.epoch += 1
        self.probing = why
        self._probes.clear()
        self.cap = 0

    def blocked_until(self, in_flight: int, now: float) -> float:
        """0.0 when a lease may be admitted now; else when one may (``math.inf``: when a lease returns).

        A probe whose answer is ``probe_timeout`` overdue (a long non-stream generation, or a client that died
        holding it) no longer holds its slot: the account then admits another probe."""
        if self.probing is not None:
            if len(self._probes) < self.probe_leases:
                return 0.0
            lapses = min(self._probes.values()) + self.probe_timeout
            return 0.0 if lapses <= now else lapses
        return math.inf if self.cap and in_flight >= self.cap else 0.0

    def admit(self, now: float) -> int:
        """Count a lease granted now; returns its probe id (its early answer opens the account), 0 if not a probe."""
        if self.probing is None:
            return 0
        probes = self._probes
        while len(probes) >= self.probe_leases:  # only when the oldest has lapsed (see blocked_until)
            del probes[min(probes, key=probes.__getitem__)]
        probe_id = self._next_probe
        self._next_probe += 1
        probes[probe_id] = now
        return probe_id

    def returned(self, probe_id: int) -> None:
        """A lease came back (reported, expired or given back)."""
        if probe_id:
            self._probes.pop(probe_id, None)

    def fresh(self, epoch: int) -> bool:
        """Whether a lease granted in ``epoch`` was granted after the account's last health change."""
        return epoch == self.epoch

    def proven(self, epoch: int) -> bool:
        """A lease of ``epoch`` succeeded; returns whether that opened (or widened) the account."""
        if epoch != self.epoch:
            return False
        if self.probing is not None:
            self.probing = None
            self.cap = 2 * self.probe_leases if self.slow_start else 0
        elif self.cap:
            self.cap *= 2
        else:
            return False
        if self.cap and self.cap > self.slow_start:
            self.cap = 0
        return True

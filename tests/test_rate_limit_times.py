"""The times in rate-limit headers, read once for the edge and the selector."""

from __future__ import annotations

import time

import pytest

from poolgate.rate_limit_times import parse_header_duration, parse_reset, parse_retry_after
from proxy_edge.headers import MAX_RETRY_AFTER_MS, retry_after_ms

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(("text", "seconds"), [
    ("6m0s", 360.0), ("20ms", 0.02), ("1.5s", 1.5), ("1h2m3s", 3723.0), ("30", 30.0), ("bogus", None), ("", None),
    ("6m0sx", None),
])
def test_durations(text: str, seconds: float | None) -> None:
    assert parse_header_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize(("text", "at"), [
    ("1m30s", NOW + 90),
    ("2027-01-15T08:00:30Z", NOW + 30),
    ("2027-01-15T09:00:30+01:00", NOW + 30),
    ("Fri, 15 Jan 2027 08:01:00 GMT", NOW + 60),
    ("Fri, 15 Jan 2027 08:01:00 -0000", NOW + 60),  # an HTTP date with an unknown zone: UTC too
    ("tomorrow", 0.0),
])
def test_reset_times(text: str, at: float) -> None:
    assert parse_reset(text, NOW) == pytest.approx(at)


@pytest.mark.parametrize(("headers", "seconds"), [
    ({"retry-after": "30"}, 30.0),
    ({"retry-after-ms": "1500"}, 1.5),
    ({"retry-after-ms": "1500", "retry-after": "30"}, 1.5),  # the precise one wins
    ({"retry-after-ms": "soon", "retry-after": "30"}, 30.0),
    ({"retry-after": "6m0s"}, 360.0),
    ({"retry-after": "Fri, 15 Jan 2027 08:01:00 GMT"}, 60.0),
    ({"retry-after": "Fri, 15 Jan 2027 07:59:00 GMT"}, 0.0),  # already past
    ({"retry-after": "whenever"}, None),
    ({}, None),
])
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, NOW) == (pytest.approx(seconds) if seconds is not None else None)


def test_a_time_without_a_zone_is_utc_whatever_the_machine_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_reset("2027-01-15T08:00:30", NOW) == pytest.approx(NOW + 30)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "Infinity"])
def test_infinity_is_no_duration(text: str) -> None:
    assert parse_header_duration(text) is None
    assert parse_reset(text, NOW) == 0.0
    assert parse_retry_after({"retry-after": text}, NOW) is None
    assert parse_retry_after({"retry-after-ms": text, "retry-after": "5"}, NOW) == 5.0


@pytest.mark.parametrize("headers", [{"retry-after": "1e300"}, {"retry-after-ms": "1e300"},
                                     {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}])
def test_the_edge_caps_a_wait_to_what_a_report_may_carry(headers: dict[str, str]) -> None:
    assert retry_after_ms(headers, NOW) == MAX_RETRY_AFTER_MS == 10**12
    assert retry_after_ms({"retry-after": "inf"}, NOW) == 0

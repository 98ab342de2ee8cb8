"""Reading providers' rate-limit headers."""

from __future__ import annotations

import pytest

from selector_service.domain.ratelimits import MODEL_KINDS, PLAN_KINDS, Limit, parse_headers

NOW = 1_800_000_000.0


def test_openai_headers() -> None:
    snapshot = parse_headers({
        "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "125",
        "x-ratelimit-reset-requests": "1m30s", "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "9000", "x-ratelimit-reset-tokens": "6s",
    }, NOW)
    requests = snapshot.limits["requests"]
    assert (requests.remaining, requests.limit, requests.reset_at) == (125, 500, NOW + 90)
    # The combined token limit bounds input and output alike.
    assert snapshot.limits["input_tokens"].remaining == snapshot.limits["output_tokens"].remaining == 9000
    assert snapshot.fraction() == pytest.approx(0.25)
    assert snapshot.exhausted_until(NOW) == 0.0


def test_anthropic_headers_keep_input_and_output_apart() -> None:
    snapshot = parse_headers({
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-input-tokens-limit": "40000", "anthropic-ratelimit-input-tokens-remaining": "0",
        "anthropic-ratelimit-input-tokens-reset": "2027-01-15T08:00:30Z",
        "anthropic-ratelimit-output-tokens-limit": "8000", "anthropic-ratelimit-output-tokens-remaining": "8000",
    }, NOW)
    assert snapshot.limits["input_tokens"].remaining == 0
    assert snapshot.limits["output_tokens"].remaining == 8000
    assert snapshot.exhausted_until(NOW) == pytest.approx(1_800_000_030.0)
    assert snapshot.fraction() == 0.0


def test_no_headers_means_nothing_known() -> None:
    snapshot = parse_headers({"content-type": "application/json"}, NOW)
    assert snapshot.limits == {} and snapshot.fraction() == 1.0


def test_the_soonest_reset_of_a_window_in_use() -> None:
    now = 1_800_000_000.0
    snapshot = parse_headers({
        "anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2027-01-15T08:00:30Z",
        "anthropic-ratelimit-input-tokens-limit": "1000", "anthropic-ratelimit-input-tokens-remaining": "1000",
        "anthropic-ratelimit-input-tokens-reset": "2027-01-15T08:00:10Z"}, now)
    # The input-token window is full: nothing is used up that its reset would give back.
    assert snapshot.soonest_reset(now) == now + 30  # 1_800_000_000 is 2027-01-15T08:00:00Z
    assert parse_headers({}, now).soonest_reset(now) == 0.0


def test_a_plans_windows_from_the_unified_headers() -> None:
    now = 1_800_000_000.0
    snapshot = parse_headers({
        "anthropic-ratelimit-unified-status": "allowed",
        "anthropic-ratelimit-unified-5h-utilization": "0.42", "anthropic-ratelimit-unified-5h-reset": "1800003600",
        "anthropic-ratelimit-unified-5h-status": "allowed",
        "anthropic-ratelimit-unified-7d-utilization": "0.18", "anthropic-ratelimit-unified-7d-reset": "1800500000",
        "anthropic-ratelimit-unified-overage-status": "rejected"}, now)
    assert snapshot.limits["window_5h"] == Limit(580, 1000, 1_800_003_600.0)
    assert snapshot.limits["window_7d"] == Limit(820, 1000, 1_800_500_000.0)
    assert "window_overage" not in snapshot.limits  # paid extra usage is not a limit of the plan
    assert snapshot.exhausted_until(now) == 0.0 and snapshot.fraction() == 0.58
    assert snapshot.exhausted_until(now, reserve=0.6) == 1_800_003_600.0  # an owner keeps 60 % for themselves


def test_a_rejected_window_rests_until_its_reset() -> None:
    now = 1_800_000_000.0
    snapshot = parse_headers({
        "anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": "1800001800",
        "anthropic-ratelimit-unified-5h-status": "rejected", "anthropic-ratelimit-unified-5h-reset": "1800001800",
        "anthropic-ratelimit-unified-5h-utilization": "0.97"}, now)
    assert snapshot.limits["window_5h"].remaining == 0
    assert snapshot.exhausted_until(now) == 1_800_001_800.0
    assert parse_headers({"anthropic-ratelimit-unified-5h-utilization": "x"}, now).limits == {}


def test_a_combined_token_limit_bounds_input_and_output_apart_and_a_separate_one_wins() -> None:
    snapshot = parse_headers({
        "x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "10", "x-ratelimit-reset-tokens": "2s",
    }, NOW)
    inp, out = snapshot.limits["input_tokens"], snapshot.limits["output_tokens"]
    assert inp == out == Limit(10, 1000, NOW + 2) and inp is not out  # each refills on its own
    inp.remaining = 0
    assert out.remaining == 10
    both = parse_headers({
        "anthropic-ratelimit-tokens-limit": "9000", "anthropic-ratelimit-tokens-remaining": "5",
        "anthropic-ratelimit-input-tokens-limit": "4000", "anthropic-ratelimit-input-tokens-remaining": "3999",
    }, NOW)
    assert both.limits["input_tokens"] == Limit(3999, 4000, 0.0)
    assert both.limits["output_tokens"] == Limit(5, 9000, 0.0)


def test_a_plans_limits_alone_are_asked_for_by_kind() -> None:
    snapshot = parse_headers({
        "x-ratelimit-limit-requests": "10", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "5s",
        "anthropic-ratelimit-unified-5h-utilization": "1.0", "anthropic-ratelimit-unified-5h-reset": "1800000100",
    }, NOW)
    assert snapshot.exhausted_until(NOW) == NOW + 100
    assert snapshot.exhausted_until(NOW, kinds=PLAN_KINDS) == NOW + 100
    assert snapshot.exhausted_until(NOW, kinds=MODEL_KINDS) == NOW + 5
    assert parse_headers({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "5s"},
                         NOW).exhausted_until(NOW, kinds=PLAN_KINDS) == 0.0

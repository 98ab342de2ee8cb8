"""Every factory rejects bad options with a message naming the option and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.plugins.conftest import make_strategy

BUILT_INS = ["round_robin", "fill_first", "random", "p2c", "least_loaded", "weighted", "zenith", "reset_soonest"]


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("round_robin", {"cursor": 1}, r"unknown option\(s\) cursor; allowed options: seed"),
        ("fill_first", {"seed": 1}, r"unknown option\(s\) seed; allowed options: none"),
        ("least_loaded", {"by": "latency"}, r"unknown option\(s\) by"),
        ("weighted", {"weights": [1, 2]}, r"unknown option\(s\) weights; allowed options: seed"),
        ("random", {"seed": "abc"}, r"option 'seed' must be an integer, got 'abc'"),
        ("random", {"seed": True}, r"option 'seed' must be an integer"),
        ("p2c", {"seed": 1.5}, r"option 'seed' must be an integer"),
        ("zenith", {"headroom": -0.5}, r"option 'headroom' must be a finite number >= 0"),
        ("zenith", {"latency": "fast"}, r"option 'latency' must be a finite number >= 0"),
        ("zenith", {"errors": float("nan")}, r"option 'errors' must be a finite number >= 0"),
        (
            "zenith",
            {"headroom": 0, "latency": 0, "errors": 0},
            r"options 'headroom', 'latency' and 'errors' must not all be 0",
        ),
        ("zenith", {"sample_size": 0}, r"option 'sample_size' must be an integer >= 1, got 0"),
        ("zenith", {"sample_size": 2.0}, r"option 'sample_size' must be an integer >= 1"),
        ("zenith", {"sample_size": True}, r"option 'sample_size' must be an integer >= 1"),
        ("zenith", {"weight": 1}, r"unknown option\(s\) weight; allowed options: errors, headroom, latency, "),
    ],
)
def test_bad_options_are_rejected(name: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"strategy {name!r}: {message}"):
        make_strategy(name, options)


@pytest.mark.parametrize("name", BUILT_INS)
def test_options_must_be_a_mapping(name: str) -> None:
    with pytest.raises(ValueError, match="strategy_options must be a mapping"):
        make_strategy(name, ["seed"])  # type: ignore[arg-type]


@pytest.mark.parametrize("name", BUILT_INS)
def test_no_options_is_fine(name: str) -> None:
    make_strategy(name, {})


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("random", {"seed": 0}),
        ("p2c", {"seed": -3}),
        ("round_robin", {"seed": 1}),
        ("weighted", {"seed": 1}),
        ("zenith", {"headroom": 1, "latency": 0, "errors": 0.5, "sample_size": 3, "seed": 7}),
    ],
)
def test_good_options_are_accepted(name: str, options: dict[str, Any]) -> None:
    make_strategy(name, options)

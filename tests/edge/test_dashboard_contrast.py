"""The dashboard's colours, read from its stylesheet: every text colour reaches WCAG AA contrast (4.5:1) on every
surface it is drawn on, the state pills' tinted backgrounds included. (The browser test measures the rendered page.)"""

from __future__ import annotations

import re
from importlib import resources

import pytest

CSS = resources.files("proxy_edge.dashboard").joinpath("static", "dashboard.css").read_text()
ROOT = dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", CSS.split("}", 1)[0]))
SURFACES = ("bg", "panel", "panel-2")
TEXT = ("text", "muted", "faint", "accent", "healthy", "cooling", "open", "probing", "disabled")
AA = 4.5

Rgb = tuple[float, float, float]


def rgb(hex_colour: str) -> Rgb:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def luminance(colour: Rgb) -> float:
    def channel(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
    r, g, b = colour
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: Rgb, b: Rgb) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def over(top: Rgb, alpha: float, under: Rgb) -> Rgb:
    r, g, b = (t * alpha + u * (1 - alpha) for t, u in zip(top, under, strict=True))
    return r, g, b


def test_the_ratios_are_computed_as_wcag_defines_them() -> None:
    assert contrast(rgb("#000000"), rgb("#ffffff")) == pytest.approx(21)
    assert contrast(rgb("#767676"), rgb("#ffffff")) == pytest.approx(4.54, abs=0.01)  # the classic AA grey


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("text", TEXT)
def test_every_text_colour_is_readable_on_every_surface(text: str, surface: str) -> None:
    ratio = contrast(rgb(ROOT[text]), rgb(ROOT[surface]))
    assert ratio >= AA, f"--{text} on --{surface}: {ratio:.2f}:1"


def test_state_pills_are_readable_on_their_tint() -> None:
    pills = re.findall(r"\.pill\.(\w+) \{ color: var\(--([\w-]+)\); background: rgba\(([\d, .]+)\); \}", CSS)
    assert len(pills) == 5, pills
    for state, variable, tint in pills:
        *channels, alpha = (float(v) for v in tint.split(","))
        r, g, b = channels
        for surface in SURFACES:
            behind = over((r, g, b), alpha, rgb(ROOT[surface]))
            ratio = contrast(rgb(ROOT[variable]), behind)
            assert ratio >= AA, f"{state} pill on --{surface}: {ratio:.2f}:1"

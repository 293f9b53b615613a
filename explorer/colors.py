"""Colour scales shared by the terminal UI and the HTML exports. Stdlib only.

A mode gives two end colours; values run from ``lo`` (first colour) through a light grey
midpoint to ``hi`` (second colour), so the middle of a scale reads as "nothing special".
"""

from __future__ import annotations

_MID = (0xF7, 0xF7, 0xF7)


def _hex(c: str) -> tuple[int, int, int]:
    c = c.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def lerp_color(lo: str, hi: str, t: float) -> str:
    """Colour between ``lo`` (t = 0) and ``hi`` (t = 1) through a light midpoint, as #rrggbb."""
    t = 0.0 if t != t else max(0.0, min(1.0, t))  # NaN -> 0
    a, b = _hex(lo), _hex(hi)
    if t < 0.5:
        u = t / 0.5
        rgb = tuple(round(x + (m - x) * u) for x, m in zip(a, _MID))
    else:
        u = (t - 0.5) / 0.5
        rgb = tuple(round(m + (y - m) * u) for m, y in zip(_MID, b))
    return "#%02x%02x%02x" % rgb


def text_color_for(bg: str) -> str:
    """Black or white, whichever reads better on ``bg``."""
    r, g, b = _hex(bg)
    return "#000000" if (0.299 * r + 0.587 * g + 0.114 * b) > 140 else "#ffffff"


def scale_color(value: float | None, lo: float, hi: float, colors: tuple[str, str]) -> str | None:
    """The colour of ``value`` on the scale lo..hi (None for a missing or NaN value)."""
    if value is None or value != value:
        return None
    t = 0.5 if hi == lo else (value - lo) / (hi - lo)
    return lerp_color(colors[0], colors[1], t)

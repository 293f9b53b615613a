"""A small inline SVG line plot for per-layer series (reports). Stdlib only.

One series, x = layer index, y = the value; missing values (None) break the line. The
axes carry the series name, the first and last layer and the y range, so the picture can
be read without the page around it.
"""

from __future__ import annotations

import math
from typing import Sequence

from explorer.io.html_page import esc

WIDTH, HEIGHT = 392, 170
LEFT, RIGHT, TOP, BOTTOM = 70, 12, 22, 30  # room for a y label such as 4.461e-58


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def line_plot(name: str, values: Sequence[float | None], *, x_label: str = "layer",
              marker: int | None = None) -> str:
    """An ``<svg>`` element plotting ``values`` against their index.

    Args:
        name: the series name, shown as the title.
        values: one value per layer; None (or NaN) where there is none.
        x_label: what the x axis counts.
        marker: an index to mark with a vertical line (e.g. the layer a mode shows), or None.
    """
    pts = [(i, float(v)) for i, v in enumerate(values) if v is not None and math.isfinite(float(v))]
    n = len(values)
    parts = [f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{esc(name)} per {esc(x_label)}">',
             f'<text x="{LEFT}" y="14" font-size="12" font-weight="bold">{esc(name)}</text>']
    if not pts:
        parts.append(f'<text x="{LEFT}" y="{HEIGHT // 2}" font-size="12" fill="#666">no values</text></svg>')
        return "".join(parts)
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    if hi == lo:  # a flat series: give it a visible band around its value
        pad = abs(lo) * 0.05 or 1.0
        lo, hi = lo - pad, hi + pad
    w, h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: float) -> float:
        return LEFT + (w * i / (n - 1) if n > 1 else w / 2)

    def y(v: float) -> float:
        return TOP + h * (1 - (v - lo) / (hi - lo))

    axis = "#444"
    parts += [
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + h}" stroke="{axis}"/>',
        f'<line x1="{LEFT}" y1="{TOP + h}" x2="{LEFT + w}" y2="{TOP + h}" stroke="{axis}"/>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" font-size="11" text-anchor="end">{_fmt(hi)}</text>',
        f'<text x="{LEFT - 4}" y="{TOP + h}" font-size="11" text-anchor="end">{_fmt(lo)}</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 14}" font-size="11" text-anchor="middle">0</text>',
        f'<text x="{LEFT + w}" y="{HEIGHT - 14}" font-size="11" text-anchor="middle">{n - 1}</text>',
        f'<text x="{LEFT + w / 2:.1f}" y="{HEIGHT - 3}" font-size="11" text-anchor="middle">{esc(x_label)}</text>',
    ]
    if marker is not None and 0 <= marker < n:
        parts.append(f'<line x1="{x(marker):.1f}" y1="{TOP}" x2="{x(marker):.1f}" y2="{TOP + h}" '
                     'stroke="#999" stroke-dasharray="3,3"/>')
    # Consecutive present values form one segment; a gap (None) starts a new one.
    segments: list[list[tuple[int, float]]] = []
    for i, v in pts:
        if segments and segments[-1][-1][0] == i - 1:
            segments[-1].append((i, v))
        else:
            segments.append([(i, v)])
    for seg in segments:
        coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in seg)
        parts.append(f'<polyline fill="none" stroke="#2166ac" stroke-width="1.6" points="{coords}"/>')
    for i, v in pts:
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.4" fill="#2166ac">'
                     f'<title>{esc(x_label)} {i}: {_fmt(v)}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)

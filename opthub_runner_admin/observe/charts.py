"""Small charts for the status page, drawn here as inline SVG.

No script and nothing fetched from elsewhere: the page works offline and in
a browser that runs no JavaScript. Every label is escaped; the numbers are
the page's own.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from .board import DepthSample

#: Drawing area of one chart, in SVG user units (the page scales it to its box).
WIDTH = 600
HEIGHT = 140
#: Room left of the plot for the scale, and below it for the time axis.
LEFT = 34
BOTTOM = 18


def _top(value: float) -> int:
    """A round upper bound of the scale, at least 1."""
    for step in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000):
        if value <= step:
            return step
    return int(value) + 1


def _frame(title: str, peak: int, body: str, span_seconds: float) -> str:
    plot_h = HEIGHT - BOTTOM
    minutes = int(span_seconds // 60)
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{html.escape(title, quote=True)}" xmlns="http://www.w3.org/2000/svg">'
        f'<line class="axis" x1="{LEFT}" y1="{plot_h}" x2="{WIDTH}" y2="{plot_h}"/>'
        f'<line class="grid" x1="{LEFT}" y1="1" x2="{WIDTH}" y2="1"/>'
        f'<text class="scale" x="{LEFT - 4}" y="10" text-anchor="end">{peak}</text>'
        f'<text class="scale" x="{LEFT - 4}" y="{plot_h}" text-anchor="end">0</text>'
        f'<text class="scale" x="{LEFT}" y="{HEIGHT - 4}">{minutes} min ago</text>'
        f'<text class="scale" x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end">now</text>'
        f"{body}</svg>"
    )


def bar_chart(title: str, values: Sequence[int], span_seconds: float) -> str:
    """One bar per value, oldest on the left (jobs finished per minute)."""
    peak = _top(max(values, default=0))
    plot_w = WIDTH - LEFT
    plot_h = HEIGHT - BOTTOM
    slot = plot_w / max(len(values), 1)
    bars = []
    for n, value in enumerate(values):
        if value <= 0:
            continue
        height = max(1.0, value / peak * (plot_h - 2))
        x = LEFT + n * slot + slot * 0.1
        bars.append(
            f'<rect class="bar" x="{x:.1f}" y="{plot_h - height:.1f}" width="{slot * 0.8:.1f}"'
            f' height="{height:.1f}"><title>{value}</title></rect>'
        )
    return _frame(title, peak, "".join(bars), span_seconds)


def depth_chart(title: str, samples: Sequence[DepthSample], span_seconds: float) -> str:
    """Visible messages (filled) and messages in flight (line) over time, now on the right."""
    peak = _top(max((max(s.visible, s.in_flight) for s in samples), default=0))
    plot_w = WIDTH - LEFT
    plot_h = HEIGHT - BOTTOM

    def point(ago: float, value: int) -> str:
        x = LEFT + plot_w * (1 - min(ago, span_seconds) / span_seconds)
        y = plot_h - value / peak * (plot_h - 2)
        return f"{x:.1f},{y:.1f}"

    body = ""
    if samples:
        visible = " ".join(point(s.ago, s.visible) for s in samples)
        first_x = point(samples[0].ago, 0).split(",")[0]
        last_x = point(samples[-1].ago, 0).split(",")[0]
        area = f"{first_x},{plot_h} {visible} {last_x},{plot_h}"
        held = " ".join(point(s.ago, s.in_flight) for s in samples)
        dots = "".join(
            f'<circle class="dot" cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="2.5"/>'
            for p in visible.split(" ")
        )
        body = (
            f'<polygon class="area" points="{area}"/>'
            f'<polyline class="visible" points="{visible}"/>'
            f'<polyline class="in-flight" points="{held}"/>{dots}'
        )
    return _frame(title, peak, body, span_seconds)

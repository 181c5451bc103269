"""Small SVG charts drawn on the server, for the admin: no script, no request to anywhere, text escaped.

A chart is a ``<svg>`` element with a ``<title>`` (what a screen reader says) and, for each point, a
``<title>`` of its own (what a mouse-over shows): the figures stay readable without the picture.
"""

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

WIDTH, HEIGHT = 640, 180
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 24, 28
#: Colours that stay apart for the common kinds of colour blindness (Okabe and Ito's palette).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


@dataclass(frozen=True)
class Series:
    name: str
    #: one value per label, None where there is nothing to show
    values: Sequence[float | None]


def bar_chart(title: str, labels: Sequence[str], values: Sequence[float], *, unit: str = "") -> str:
    """One bar per label (a night): ``values`` non-negative."""
    top = _nice_top(max(values, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels), 1)
    parts = [_frame(title, top, unit)]
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = plot_h * (value / top) if top else 0.0
        x, y = LEFT + index * step + step * 0.15, TOP + plot_h - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{height:.1f}" fill="{PALETTE[0]}">'
            f"<title>{escape(f'{label}: {_number(value)}{unit}')}</title></rect>"
        )
    parts.append(_x_labels(labels, step))
    return _svg(title, parts)


def line_chart(title: str, labels: Sequence[str], series: Sequence[Series], *, top: float | None = None) -> str:
    """One line per series over the labels; a gap where a value is None. ``top``: the y axis's top (the
    largest value, rounded up, when None)."""
    values = [value for item in series for value in item.values if value is not None]
    top = top if top is not None else _nice_top(max(values, default=0.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(len(labels), 1)
    parts = [_frame(title, top, "")]
    for number, item in enumerate(series):
        colour = PALETTE[number % len(PALETTE)]
        points: list[tuple[float, float]] = []
        for index, value in enumerate(item.values):
            if value is None:
                parts.append(_polyline(points, colour))
                points = []
                continue
            x, y = LEFT + index * step + step / 2, TOP + plot_h - (plot_h * value / top if top else 0.0)
            points.append((x, y))
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(f'{item.name}, {labels[index]}: {_number(value)}')}</title></circle>"
            )
        parts.append(_polyline(points, colour))
    parts.append(_legend(series))
    parts.append(_x_labels(labels, step))
    return _svg(title, parts)


def _svg(title: str, parts: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label={quoteattr(title)} class="braintrust-ops-chart"><title>{escape(title)}</title>'
        + "".join(part for part in parts if part)
        + "</svg>"
    )


def _frame(title: str, top: float, unit: str) -> str:
    base = HEIGHT - BOTTOM
    return (
        f'<text x="{LEFT}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>'
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#999"/>'
        f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}" stroke="#999"/>'
        f'<text x="{LEFT - 4}" y="{TOP + 4}" font-size="10" text-anchor="end">{escape(_number(top) + unit)}</text>'
        f'<text x="{LEFT - 4}" y="{base}" font-size="10" text-anchor="end">0</text>'
    )


def _x_labels(labels: Sequence[str], step: float) -> str:
    if not labels:
        return ""
    every = max(1, len(labels) // 6)  # about six dates along the axis
    return "".join(
        f'<text x="{LEFT + index * step + step / 2:.1f}" y="{HEIGHT - 10}" font-size="10" text-anchor="middle">'
        f"{escape(label)}</text>"
        for index, label in enumerate(labels)
        if index % every == 0
    )


def _legend(series: Sequence[Series]) -> str:
    return "".join(
        f'<text x="{WIDTH - RIGHT - 4}" y="{TOP + 12 * number}" font-size="10" text-anchor="end" '
        f'fill="{PALETTE[number % len(PALETTE)]}">{escape(item.name)}</text>'
        for number, item in enumerate(series)
    )


def _polyline(points: list[tuple[float, float]], colour: str) -> str:
    if len(points) < 2:
        return ""
    coordinates = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline points="{coordinates}" fill="none" stroke="{colour}" stroke-width="1.5"/>'


def _nice_top(value: float) -> float:
    """The axis's top: the value rounded up to 1, 2 or 5 times a power of ten (1 for nothing to show)."""
    # Below the smallest normal float, 10 ** floor(log10) underflows (to 0 for 5e-324, which Hypothesis
    # found) and no factor fits: nothing a person could see either.
    if not value >= sys.float_info.min or not math.isfinite(value):
        return 1.0
    power = 10.0 ** math.floor(math.log10(value))
    return next(factor * power for factor in (1, 2, 5, 10) if value <= factor * power * (1 + 1e-12))


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"

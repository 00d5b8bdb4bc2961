"""Charts drawn on the server as SVG text: no charting library to vendor or keep up, nothing fetched
from anywhere, and the same picture in a browser, a test or a screenshot.

Readable without colour: each series has its own dash pattern and marker shape as well as its own
colour, the legend names them in words, and every chart carries a ``<title>`` and a ``<desc>`` that
say what it shows (screen readers read them; the pages show the same numbers in tables too). Every
text that reaches the SVG is escaped, so a model or key name cannot inject markup.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape as _escape

WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 40
# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies) …
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
# … and, for readers who cannot tell them apart at all, a dash pattern and a marker per series.
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4", "4 4")
MARKERS = ("circle", "square", "triangle", "diamond", "cross", "circle", "square")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    """Text for SVG: markup escaped, and the characters XML cannot hold at all (control characters) dropped."""
    return _escape(_NOT_XML.sub("", text))


def _attr(text: str) -> str:
    return _escape(_NOT_XML.sub("", text), {'"': "&quot;"})


def nice_step(value: float) -> float:
    """The smallest round number (1, 2, 2.5 or 5 times a power of ten) at or above ``value``."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * (1 + 1e-9):
            return float(step * power)
    return float(10 * power)


def ticks(top_value: float, count: int = 4) -> list[float]:
    """Round tick values from zero up to at least ``top_value``: about ``count`` of them, evenly spaced."""
    if not math.isfinite(top_value) or top_value <= 0:
        return [0.0, 0.25, 0.5, 0.75, 1.0]
    step = nice_step(top_value / count)
    n = max(1, math.ceil(top_value / step - 1e-9))
    return [step * i for i in range(n + 1)]


def nice_max(value: float) -> float:
    """A round top for an axis at or above ``value``."""
    return ticks(value)[-1]


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "square":
        return f'<rect x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6" fill="{colour}"/>'
    if kind == "triangle":
        return f'<path d="M{x:.1f} {y - 4:.1f}L{x + 4:.1f} {y + 3:.1f}L{x - 4:.1f} {y + 3:.1f}Z" fill="{colour}"/>'
    if kind == "diamond":
        return f'<path d="M{x:.1f} {y - 4:.1f}L{x + 4:.1f} {y:.1f}L{x:.1f} {y + 4:.1f}L{x - 4:.1f} {y:.1f}Z" ' \
               f'fill="{colour}"/>'
    if kind == "cross":
        return f'<path d="M{x - 3:.1f} {y - 3:.1f}L{x + 3:.1f} {y + 3:.1f}M{x - 3:.1f} {y + 3:.1f}L{x + 3:.1f} ' \
               f'{y - 3:.1f}" stroke="{colour}" stroke-width="2"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>'


def _time_label(t: float, step: float, width: float) -> str:
    """A tick's time (UTC), as precise as the chart needs: the hour within a day, the day within months."""
    stamp = time.gmtime(t)
    if width <= 86400:
        return time.strftime("%H:%M", stamp)
    if step >= 86400 or width > 31 * 86400:
        return time.strftime("%b %d", stamp)
    return time.strftime("%b %d %H:%M", stamp)


def line_chart(ident: str, title: str, times: Sequence[float], series: Sequence[Series], *, step: float,
               unit: Callable[[float], str] = lambda v: f"{v:,.0f}", summary: str = "") -> str:
    """Lines over time (UTC), one per series, on a shared axis from zero. ``ident`` makes the chart's
    element ids unique on a page that shows several."""
    marks = ticks(max((v for s in series for v in s.values if v is not None), default=0.0))
    top = marks[-1]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    width = (times[-1] - times[0] + step) if times else step
    count = max(len(times), 1)

    def x(i: int) -> float:
        return LEFT + (plot_w * (i + 0.5) / count)

    def y(v: float) -> float:
        return TOP + plot_h - plot_h * (v / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{ident}-t {ident}-d" class="chart" id="{ident}" font-family="sans-serif" '
             'font-size="11">',
             f'<title id="{ident}-t">{escape(title)}</title>',
             f'<desc id="{ident}-d">{escape(summary or title)}</desc>',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#bbb"/>']
    for mark in marks:
        gy = y(mark)
        if mark > 0:
            parts.append(f'<line x1="{LEFT}" y1="{gy:.1f}" x2="{LEFT + plot_w}" y2="{gy:.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end">{escape(unit(mark))}</text>')
    every = max(1, math.ceil(count / 6))
    for i in range(0, len(times), every):
        parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                     f'{escape(_time_label(times[i], step, width))}</text>')
    parts.append(f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 6}" text-anchor="end" fill="#555">UTC</text>')
    legend_x = LEFT
    for n, line in enumerate(series):
        colour, dash, marker = COLOURS[n % len(COLOURS)], DASHES[n % len(DASHES)], MARKERS[n % len(MARKERS)]
        points = [(x(i), y(v)) for i, v in enumerate(line.values) if v is not None]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        if len(points) > 1:
            path = " ".join(f"{'M' if i == 0 else 'L'}{px:.1f} {py:.1f}" for i, (px, py) in enumerate(points))
            parts.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr} '
                         f'class="series" data-name="{_attr(line.name)}"/>')
        every = max(1, len(points) // 24)  # markers stay legible on a dense line
        parts.extend(_marker(marker, px, py, colour) for px, py in points[::every])
        parts.append(f'<line x1="{legend_x}" y1="14" x2="{legend_x + 22}" y2="14" stroke="{colour}" '
                     f'stroke-width="2"{dash_attr}/>{_marker(marker, legend_x + 11, 14, colour)}'
                     f'<text x="{legend_x + 28}" y="18">{escape(line.name)}</text>')
        legend_x += 36 + 7 * len(line.name)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(ident: str, title: str, rows: Sequence[tuple[str, Sequence[float | None]]], names: Sequence[str], *,
              unit: Callable[[float], str] = lambda v: f"{v:,.0f}", summary: str = "") -> str:
    """Horizontal bars: one group per row (its label on the left), one bar per name, each bar with its
    value written at its end (and its own fill pattern, not only its colour)."""
    bar_h, gap = 12, 10
    group_h = bar_h * max(len(names), 1) + gap
    label_w = 200
    height = TOP + group_h * max(len(rows), 1) + 24
    plot_w = WIDTH - label_w - 90
    top = nice_max(max((v for _, values in rows for v in values if v is not None), default=0.0))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
             f'aria-labelledby="{ident}-t {ident}-d" class="chart" id="{ident}" font-family="sans-serif" '
             'font-size="11">',
             f'<title id="{ident}-t">{escape(title)}</title>',
             f'<desc id="{ident}-d">{escape(summary or title)}</desc>',
             f'<defs><pattern id="{ident}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="6" height="6" fill="#D55E00"/>'
             '<line x1="0" y1="0" x2="0" y2="6" stroke="#fff" stroke-width="2"/></pattern></defs>']
    fills = ("#0072B2", f"url(#{ident}-hatch)", "#009E73", "#CC79A7")
    legend_x = label_w
    for n, name in enumerate(names):
        parts.append(f'<rect x="{legend_x}" y="6" width="14" height="10" fill="{fills[n % len(fills)]}"/>'
                     f'<text x="{legend_x + 18}" y="15">{escape(name)}</text>')
        legend_x += 30 + 7 * len(name)
    for r, (label, values) in enumerate(rows):
        y0 = TOP + r * group_h
        shown = label if len(label) <= 32 else label[:31] + "…"
        parts.append(f'<text x="{label_w - 8}" y="{y0 + group_h / 2 + 2:.1f}" text-anchor="end">{escape(shown)}</text>')
        for n, value in enumerate(values):
            y = y0 + n * bar_h
            width = 0.0 if value is None else plot_w * value / top
            parts.append(f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="{bar_h - 2}" '
                         f'fill="{fills[n % len(fills)]}" class="bar"/>')
            text = "n/a" if value is None else unit(value)
            parts.append(f'<text x="{label_w + width + 4:.1f}" y="{y + bar_h - 3}">{escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)

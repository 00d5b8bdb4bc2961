"""The eval's outputs: a Markdown table and an SVG of the curves, written by hand (no plotting library).

Why SVG: a text format diffable in git and viewable in any browser, and no matplotlib dependency for
two line charts. Left panel: accuracy against strong-call share (RouteLLM's plot, with both models'
accuracies dashed); right panel: accuracy against mean cost per prompt, each router's non-decreasing
convex hull (what AIQ integrates) drawn over its points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path

import numpy as np

from podium.errors import ConfigError
from podium.evaluation.metrics import CPT_LEVELS, non_decreasing_hull
from podium.evaluation.replay import ORACLE, EvalResult

_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def write_outputs(out: str | Path, files: Mapping[str, tuple[str, str]]) -> list[Path]:
    """Write each ``file name → (content, what)`` under ``out`` (created), for every ``podium eval`` mode.
    Every target is checked before any is written, so a refused one leaves no half set behind; an
    OS error is one ConfigError naming the folder."""
    from podium.safe_files import check_writable_target, safe_write

    folder = Path(out)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = [check_writable_target(folder / name, what) for name, (_, what) in files.items()]
        for path, (content, what) in zip(paths, files.values(), strict=True):
            safe_write(path, content, what)
    except OSError as exc:
        raise ConfigError(f"cannot write to {folder}: {exc.strerror or exc}") from None
    return paths


def markdown_table(result: EvalResult) -> str:
    """The metrics table plus the lines a reader needs to trust it (data, folds, models)."""
    d = result.dataset
    head = "| router | APGR | " + " | ".join(f"CPT({level}%)" for level in CPT_LEVELS) + " | AIQ |"
    rows = [head, "|" + "---|" * (3 + len(CPT_LEVELS))]
    for r in result.routers:
        name = f"{r.name} (reference: reads the answers)" if r.name == ORACLE else \
            r.name if r.cross_fitted else f"{r.name}, not cross-fitted"
        cpts = " | ".join(f"{r.cpt[level]:.1f} %" for level in CPT_LEVELS)
        rows.append(f"| {name} | {r.apgr:.3f} | {cpts} | {r.aiq:.4f} |")
    notes = [
        f"Dataset {d.name}: {len(d):,} prompts ({d.dropped} contaminated dropped); strong {d.strong} "
        f"{result.strong_accuracy:.2f} %, weak {d.weak} {result.weak_accuracy:.2f} %.",
        f"Cross-fitted {result.folds}-fold (seed {result.seed}): each prompt scored by a router fitted on the "
        "other folds of the same benchmark (in-domain, unlike RouteLLM's routers trained on other data).",
        "APGR and CPT (strong-call share for that PGR) as RouteLLM's evaluate.py computes them; AIQ as "
        "RouterBench's (accuracy 0-1 averaged over mean cost per prompt).",
    ]
    return "\n".join(rows) + "\n\n" + "\n".join(notes) + "\n"


def svg_curves(result: EvalResult, width: int = 1000, height: int = 420) -> str:
    """Both panels as one SVG document."""
    panel_w = width // 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">', f'<rect width="{width}" height="{height}" fill="white"/>']
    d = result.dataset
    acc = [p.accuracy for r in result.routers for p in r.points] + [result.weak_accuracy, result.strong_accuracy]
    y_lo, y_hi = min(acc) - 2, max(acc) + 2
    series = [(r.name, [(p.strong_share, p.accuracy) for p in sorted(r.points, key=lambda p: p.strong_share)])
              for r in result.routers]
    parts += _panel(0, panel_w, height, f"{d.name}: accuracy vs strong-model calls", "strong-model calls (%)",
                    (0.0, 100.0), (y_lo, y_hi), series, result)
    costs = [p.cost for r in result.routers for p in r.points]
    hulls = []
    for r in result.routers:
        hull = non_decreasing_hull(np.array([p.cost for p in r.points]), np.array([p.accuracy for p in r.points]))
        hulls.append((r.name, [(float(c), float(a)) for c, a in hull]))
    parts += _panel(panel_w, panel_w, height, f"{d.name}: accuracy vs cost (AIQ hulls)",
                    "mean cost per prompt (USD)", (min(costs), max(costs)), (y_lo, y_hi), hulls, result)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(x0: int, w: int, h: int, title: str, xlabel: str, xr: tuple[float, float], yr: tuple[float, float],
           series: Sequence[tuple[str, list[tuple[float, float]]]], result: EvalResult) -> list[str]:
    left, right, top, bottom = x0 + 55, x0 + w - 15, 30, h - 95
    span_x = (xr[1] - xr[0]) or 1.0
    span_y = (yr[1] - yr[0]) or 1.0
    sx: Callable[[float], float] = lambda v: left + (v - xr[0]) / span_x * (right - left)  # noqa: E731
    sy: Callable[[float], float] = lambda v: bottom - (v - yr[0]) / span_y * (bottom - top)  # noqa: E731
    out = [f'<text x="{x0 + w / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#333"/>',
           f'<text x="{(left + right) / 2}" y="{bottom + 32}" text-anchor="middle">{escape(xlabel)}</text>',
           f'<text x="{x0 + 14}" y="{(top + bottom) / 2}" text-anchor="middle" '
           f'transform="rotate(-90 {x0 + 14} {(top + bottom) / 2})">accuracy (%)</text>']
    for i in range(5):
        xv, yv = xr[0] + span_x * i / 4, yr[0] + span_y * i / 4
        xt = f"{xv:.0f}" if span_x >= 10 else f"{xv:.2g}"
        out.append(f'<text x="{sx(xv):.1f}" y="{bottom + 15}" text-anchor="middle">{xt}</text>')
        out.append(f'<text x="{left - 5}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:.0f}</text>')
    for value, label, colour in ((result.strong_accuracy, result.dataset.strong, "#d62728"),
                                 (result.weak_accuracy, result.dataset.weak, "#7f7f7f")):
        out.append(f'<line x1="{left}" x2="{right}" y1="{sy(value):.1f}" y2="{sy(value):.1f}" stroke="{colour}" '
                   f'stroke-dasharray="5,4"><title>{escape(label)}</title></line>')
    legend_y = bottom + 50
    for i, (name, pts) in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>' for x, y in pts]
        lx = left + (i % 3) * 140
        ly = legend_y + (i // 3) * 16
        out.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{ly - 4}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 22}" y="{ly}">{escape(name)}</text>')
    return out

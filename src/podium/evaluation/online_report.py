"""What ``podium eval --online`` prints and writes: a Markdown table and an SVG of the stream.

Why two tables: the issue's goal is about the second half of the stream (has the bandit learned enough
to beat the static heuristic at the same share of strong calls?), and regret is about the whole
stream (what learning cost on the way). The SVG's top row is ``podium eval``'s own pair of panels
(:func:`~podium.evaluation.report.svg_curves`) on the second half, with the bandit as one point beside
the heuristic's curve; the bottom row follows the stream: running accuracy, cumulative cost and
cumulative regret.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

import numpy as np

from podium.evaluation.metrics import CurvePoint
from podium.evaluation.online import (
    OnlineRun,
    Policy,
    bandit_reward,
    best,
    fixed_policies,
    regret_curve,
    second_half,
)
from podium.evaluation.replay import EvalResult, RouterResult
from podium.evaluation.report import svg_curves

_COLOURS = ("#1f77b4", "#d62728", "#7f7f7f", "#2ca02c", "#ff7f0e", "#9467bd")


def _usd(value: float) -> str:
    return "never" if math.isinf(value) else f"${value:.6f}"


def markdown_online(run: OnlineRun) -> str:
    """Both tables and the notes that define them."""
    d, s = run.dataset, second_half(run)
    policies = fixed_policies(run)
    n, h = len(run.order), run.half
    gap = s.heuristic_cost - s.cost
    rows = [
        f"Second half of the stream (steps {h + 1:,}-{n:,}), same prompts for every row:",
        "",
        "| policy | strong calls | accuracy | mean cost per prompt |",
        "|---|---|---|---|",
        f"| bandit (online, explores {run.explore:.0%}) | {s.share:.1f} % | {s.accuracy:.2f} % | {_usd(s.cost)} |",
        f"| podium-heuristic at the bandit's share (interpolated) | {s.share:.1f} % | {s.heuristic_accuracy:.2f} % "
        "| |",
        f"| podium-heuristic at the bandit's accuracy (hull) | | {s.accuracy:.2f} % | {_usd(s.heuristic_cost)} |",
        f"| always strong ({d.strong}) | 100.0 % | {s.strong_accuracy:.2f} % | |",
        f"| always weak ({d.weak}) | 0.0 % | {s.weak_accuracy:.2f} % | |",
        "",
        f"Goal (second half better than the static heuristic router): **{'met' if s.met else 'missed'}** — "
        f"{s.accuracy - s.heuristic_accuracy:+.2f} accuracy points at {s.share:.1f} % strong calls"
        + _cost_note(gap, s.cost) + ".",
        "",
        f"Whole stream ({n:,} prompts): reward per step = quality - λ·cost / that prompt's strong cost, λ = 1 - knob = "
        f"{run.lam:.2f}; regret = the policy's total reward - the bandit's (negative: the bandit earned more).",
        "",
        "| policy | strong calls | accuracy | reward per step | bandit's regret | regret in 2nd half |",
        "|---|---|---|---|---|---|",
    ]
    mine = bandit_reward(run)
    rows.append(f"| bandit | {run.strong.mean():.1%} | {run.quality.mean():.2%} | {mine.mean():.4f} | | |")
    for p in policies:
        total = float(p.reward.sum() - mine.sum())
        late = float(p.reward[h:].sum() - mine[h:].sum())
        rows.append(f"| {p.name} | {p.strong.mean():.1%} | {p.quality.mean():.2%} | {p.reward.mean():.4f} | "
                    f"{total:+.1f} | {late:+.1f} |")
    fixed = best(policies, ("always strong", "always weak"))
    threshold = best(policies)
    rows += [
        "",
        f"Best fixed model in hindsight: {fixed.name} (regret {regret_curve(run, fixed)[-1]:+.1f}); best threshold "
        f"of the heuristic: {threshold.name} (regret {regret_curve(run, threshold)[-1]:+.1f}).",
        f"Dataset {d.name}: {n:,} prompts in a random order (seed {run.seed}); knob {run.knob:.2f}; exploration "
        f"draws {run.explored.mean():.1%} of steps (asked {run.explore:.0%}); only the chosen model's outcome is "
        "revealed to the bandit.",
        f"After the stream: {run.explanation}.",
    ]
    return "\n".join(rows) + "\n"


def _cost_note(gap: float, cost: float) -> str:
    """How the heuristic's cost for the bandit's accuracy compares with the bandit's own."""
    if math.isinf(gap):
        return "; no mix of the heuristic's thresholds reaches the bandit's accuracy"
    share = abs(gap) / max(cost, 1e-12)
    return (f"; the heuristic needs {share:.1%} more per prompt to match the bandit's accuracy" if gap > 0 else
            f"; the heuristic matches the bandit's accuracy for {share:.1%} less per prompt")


def _point_result(name: str, share: float, accuracy: float, cost: float) -> RouterResult:
    nan = float("nan")
    return RouterResult(name, [CurvePoint(nan, share, accuracy, cost)], nan, {}, nan)


def svg_online(run: OnlineRun, width: int = 1000) -> str:
    """Top: the second half against the heuristic's curve; bottom: the stream, step by step."""
    s = second_half(run)
    h = run.half
    d = run.dataset.subset(run.order[h:])
    heuristic = RouterResult("podium-heuristic", s.heuristic_points, float("nan"), {}, float("nan"))
    top = svg_curves(EvalResult(d, 0, run.seed, s.strong_accuracy, s.weak_accuracy,
                                [heuristic, _point_result("bandit (2nd half)", s.share, s.accuracy, s.cost)]),
                     width=width)
    top = top.replace(f"{d.name}: accuracy", f"{d.name}, 2nd half: accuracy", 2)
    steps = np.arange(1, len(run.order) + 1)
    policies = fixed_policies(run)
    shown = [p for p in policies if p.name in ("always strong", "always weak")] + [best(policies)]
    shown = list({p.name: p for p in shown}.values())
    accuracy = [("bandit", steps, np.cumsum(run.quality) / steps * 100)] + \
        [(p.name, steps, np.cumsum(p.quality) / steps * 100) for p in shown]
    cost = [("bandit", steps, np.cumsum(run.cost))] + [(p.name, steps, np.cumsum(p.cost)) for p in shown]
    regret = [(f"vs {p.name}", steps, regret_curve(run, p)) for p in _regret_refs(policies)]
    height, panel = 420 + 360, width // 3
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             'font-size="12">', f'<rect width="{width}" height="{height}" fill="white"/>',
             _nested(top, 0), '<g transform="translate(0,420)">']
    parts += _lines(0, panel, "running accuracy (%)", accuracy, h)
    parts += _lines(panel, panel, "cumulative cost (USD)", cost, h)
    parts += _lines(2 * panel, panel, "cumulative regret (reward)", regret, h)
    parts += ["</g>", "</svg>"]
    return "\n".join(parts) + "\n"


def _regret_refs(policies: list[Policy]) -> list[Policy]:
    fixed = best(policies, ("always strong", "always weak"))
    threshold = best(policies)
    return [fixed] if threshold.name == fixed.name else [fixed, threshold]


def _nested(svg: str, y: int) -> str:
    """An SVG document placed inside another at height ``y`` (a nested <svg> element)."""
    body = svg.split(">", 1)[1].rsplit("</svg>", 1)[0]
    return f'<svg x="0" y="{y}" width="1000" height="420">{body}</svg>'


def _lines(x0: int, w: int, title: str, series: Sequence[tuple[str, np.ndarray, np.ndarray]], half: int
           ) -> list[str]:
    left, right, top, bottom = x0 + 60, x0 + w - 10, 25, 250
    xs = np.concatenate([s[1] for s in series])
    ys = np.concatenate([s[2] for s in series])
    x_lo, x_hi = float(xs.min()), float(xs.max())
    y_lo, y_hi = float(ys.min()), float(ys.max())
    if y_hi == y_lo:
        y_lo, y_hi = y_lo - 1, y_hi + 1
    sx: Callable[[float], float] = lambda v: left + (v - x_lo) / ((x_hi - x_lo) or 1) * (right - left)  # noqa: E731
    sy: Callable[[float], float] = lambda v: bottom - (v - y_lo) / (y_hi - y_lo) * (bottom - top)  # noqa: E731
    out = [f'<text x="{(left + right) / 2}" y="15" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{right - left}" height="{bottom - top}" fill="none" stroke="#333"/>',
           f'<line x1="{sx(half):.1f}" x2="{sx(half):.1f}" y1="{top}" y2="{bottom}" stroke="#999" '
           'stroke-dasharray="3,3"><title>half of the stream</title></line>',
           f'<text x="{(left + right) / 2}" y="{bottom + 30}" text-anchor="middle">prompts seen</text>']
    for i in range(3):
        xv, yv = x_lo + (x_hi - x_lo) * i / 2, y_lo + (y_hi - y_lo) * i / 2
        out.append(f'<text x="{sx(xv):.1f}" y="{bottom + 14}" text-anchor="middle">{xv:.0f}</text>')
        out.append(f'<text x="{left - 4}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:.3g}</text>')
    for i, (name, x, y) in enumerate(series):
        colour = _COLOURS[i % len(_COLOURS)]
        step = max(1, len(x) // 400)  # at most ~400 vertices per line
        pts = " ".join(f"{sx(float(a)):.1f},{sy(float(b)):.1f}" for a, b in zip(x[::step], y[::step], strict=True))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        out.append(f'<line x1="{left}" x2="{left + 16}" y1="{bottom + 46 + 14 * i}" y2="{bottom + 46 + 14 * i}" '
                   f'stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{left + 20}" y="{bottom + 50 + 14 * i}">{escape(name)}</text>')
    return out

"""RouteLLM's and RouterBench's router metrics, computed the way their evaluation code computes them.

Why copy their arithmetic rather than the papers' prose: the published numbers come from the code, and
its choices (decile thresholds, trapezoids over the sampled points, linear interpolation for CPT) move the
figures by a few points. Sources: lm-sys/RouteLLM ``routellm/evals/benchmarks.py`` and ``evaluate.py``;
withmartian/routerbench's AIQ (``calc_AIQ`` and ``get_non_descreasing_convex_hull_of``).

RouteLLM (accuracy and strong-call share both in percent, as there):

- **thresholds**: the 11 bin edges of ``pd.qcut(scores, 10)``, i.e. the 0, 10, …, 100 % quantiles of the
  router's scores with linear interpolation (duplicate edges are kept, as "including duplicates" there);
- **one curve point per threshold**: a prompt goes to the strong model when its score is ``>=`` the
  threshold, except at the last (largest) edge where it must be ``>`` it — so the curve runs from 100 %
  strong calls down to 0 %;
- **PGR** of a point = (accuracy - weak accuracy) / (strong accuracy - weak accuracy);
- **APGR**: the points sorted by strong-call share, ``AUC = trapz(accuracy, share / 100)``, and
  APGR = (AUC - weak·span) / (strong·span - weak·span) where span is the share range covered (1.0 here):
  the area under the PGR curve;
- **CPT(x %)**: ``np.interp(weak + x·(strong - weak), accuracies, shares)`` over the points in order of
  share — the strong-call share needed to reach PGR x, by linear interpolation (capped at the ends as
  ``np.interp`` caps; accuracies are not forced monotone, as there).

RouterBench:

- **AIQ** = 1/(c_max - c_min) ∫ R̃(c) dc, where R̃ is the non-decreasing convex hull of the router's
  (cost, quality) points: the upper concave hull (any cost between two operating points is reachable by
  mixing them), flat after its highest point (a router can always waste money), extended flat to the
  largest cost of any router compared. ``calc_AIQ`` divides by c_max because its costs start at 0; with
  c_min = 0 both agree, and here c_min is the all-weak cost, shared by every router.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
CPT_LEVELS = (20, 50, 80)  # RouteLLM's "20% qual", "50% qual", "80% qual"


@dataclass(frozen=True)
class CurvePoint:
    """One operating point of a router: its threshold, strong-call share (%), accuracy (%), mean cost (USD)."""

    threshold: float
    strong_share: float
    accuracy: float
    cost: float


def routellm_thresholds(scores: Floats, num_results: int = 10) -> Floats:
    """The bin edges ``pd.qcut(scores, num_results, retbins=True)`` returns (linear quantiles)."""
    return np.quantile(np.asarray(scores, dtype=np.float64), np.linspace(0.0, 1.0, num_results + 1))


def replay_curve(scores: Floats, strong_quality: Floats, weak_quality: Floats, strong_cost: Floats,
                 weak_cost: Floats, num_results: int = 10) -> list[CurvePoint]:
    """Route every prompt at each RouteLLM threshold and record share, accuracy and mean cost."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or len(scores) == 0 or len(scores) != len(strong_quality):
        raise ValueError("one score per prompt is needed")
    thresholds = routellm_thresholds(scores, num_results)
    points = []
    for i, threshold in enumerate(thresholds):
        strong = scores >= threshold if i != len(thresholds) - 1 else scores > threshold
        quality = np.where(strong, strong_quality, weak_quality)
        cost = np.where(strong, strong_cost, weak_cost)
        points.append(CurvePoint(float(threshold), float(strong.mean() * 100), float(quality.mean() * 100),
                                 float(cost.mean())))
    return points


def _by_share(points: Sequence[CurvePoint]) -> tuple[Floats, Floats]:
    ordered = sorted(points, key=lambda p: p.strong_share)  # stable; equal shares have equal accuracy
    return (np.array([p.strong_share for p in ordered]), np.array([p.accuracy for p in ordered]))


def _gap(strong_accuracy: float, weak_accuracy: float) -> float:
    gap = strong_accuracy - weak_accuracy
    if gap == 0:
        raise ValueError("the strong and weak models score the same: PGR is undefined")
    return gap


def pgr(accuracy: float, strong_accuracy: float, weak_accuracy: float) -> float:
    """Performance gap recovered by one operating point."""
    return (accuracy - weak_accuracy) / _gap(strong_accuracy, weak_accuracy)


def apgr(points: Sequence[CurvePoint], strong_accuracy: float, weak_accuracy: float) -> float:
    """RouteLLM's ``apgr_metric``: area under the PGR curve over the strong-call share."""
    shares, accuracies = _by_share(points)
    x = shares / 100
    auc = float(np.trapezoid(accuracies, x))
    weak_auc = float(np.trapezoid(np.full(len(x), weak_accuracy), x))
    strong_auc = float(np.trapezoid(np.full(len(x), strong_accuracy), x))
    _gap(strong_accuracy, weak_accuracy)
    return (auc - weak_auc) / (strong_auc - weak_auc)


def cpt(points: Sequence[CurvePoint], strong_accuracy: float, weak_accuracy: float, level: float) -> float:
    """RouteLLM's ``pct_call_metric``: strong-call share (%) to reach PGR ``level`` percent."""
    _gap(strong_accuracy, weak_accuracy)
    shares, accuracies = _by_share(points)
    target = level / 100 * (strong_accuracy - weak_accuracy) + weak_accuracy
    return float(np.interp(target, accuracies, shares))


def non_decreasing_hull(costs: Floats, qualities: Floats) -> Floats:
    """RouterBench's non-decreasing convex hull of (cost, quality) points, as an (m, 2) array by cost."""
    pts = sorted({(float(c), float(q)) for c, q in zip(costs, qualities, strict=True)})
    hull: list[tuple[float, float]] = []
    for c, q in pts:  # Andrew's monotone chain, upper half; for equal costs the higher quality survives
        while hull and hull[-1][0] == c:
            hull.pop()
        while len(hull) >= 2:
            (c1, q1), (c2, q2) = hull[-2], hull[-1]
            if (c2 - c1) * (q - q1) - (q2 - q1) * (c - c1) >= 0:  # middle point on or below the chord
                hull.pop()
            else:
                break
        hull.append((c, q))
    top = max(range(len(hull)), key=lambda i: (hull[i][1], -i))
    best = hull[top][1]
    flat = hull[: top + 1] + [(c, best) for c, _ in hull[top + 1:]]
    return np.array(flat, dtype=np.float64)


def aiq(costs: Floats, qualities: Floats, c_min: float | None = None, c_max: float | None = None) -> float:
    """Average quality over the cost range under the non-decreasing convex hull (RouterBench's AIQ).

    ``c_min``/``c_max`` default to this router's own range; pass the range of all routers compared.
    """
    hull = non_decreasing_hull(costs, qualities)
    lo = float(hull[0, 0]) if c_min is None else c_min
    hi = float(hull[-1, 0]) if c_max is None else c_max
    if hull[-1, 0] < hi:
        hull = np.vstack([hull, [hi, hull[-1, 1]]])
    if hi <= lo:
        return float(hull[-1, 1])
    return float(np.trapezoid(hull[:, 1], hull[:, 0])) / (hi - lo)

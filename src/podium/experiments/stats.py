"""95 % confidence intervals for the experiment and shadow reports, in pure Python (plus numpy for the
bootstrap), so a report needs no statistics package.

Which interval for which figure, and why:

* a **rate** (error rate, agreement rate): Wilson's score interval. It stays inside [0, 1] and keeps
  its coverage at 0 of 20 or 20 of 20, where the textbook ``p ± z·√(p(1-p)/n)`` collapses to a point.
* a **difference of two rates**: Newcombe's hybrid score interval (his method 10), built from the two
  Wilson intervals; it has no closed-form failure at 0 % or 100 % either.
* a **mean** (cost, feedback score): Student's t interval, ``x̄ ± t(0.975, n-1)·s/√n``.
* a **difference of two means**: Welch's t interval (unequal variances, Welch-Satterthwaite degrees of
  freedom): arms differ in spread as much as in level.
* a **percentile** (p50, p95 latency) and a **difference of percentiles**: the percentile bootstrap,
  resampling each arm independently ``BOOTSTRAP`` times from a seeded generator (``SEED``), so the
  same ledger always prints the same interval.

The t quantile comes from inverting Student's distribution function, which is the regularised
incomplete beta function (evaluated by Lentz's continued fraction): exact to ~1e-10, checked
against scipy in the tests when scipy is present.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054  # the standard normal's 97.5 % quantile
BOOTSTRAP = 2000
SEED = 20240601


@dataclass(frozen=True)
class Estimate:
    """A figure with its 95 % interval and the method that gave it."""

    value: float
    low: float
    high: float
    method: str

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


# --- rates --------------------------------------------------------------------------------------------
def wilson(successes: int, n: int, z: float = Z95) -> Estimate:
    """Wilson's score interval for ``successes`` of ``n``; (nan, 0, 1) for n = 0."""
    if n <= 0:
        return Estimate(math.nan, 0.0, 1.0, "wilson")
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), "wilson")


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> Estimate:
    """The difference ``k1/n1 - k2/n2`` with Newcombe's hybrid score interval (method 10)."""
    a, b = wilson(k1, n1, z), wilson(k2, n2, z)
    if n1 <= 0 or n2 <= 0:
        return Estimate(math.nan, -1.0, 1.0, "newcombe")
    d = a.value - b.value
    low = d - math.sqrt((a.value - a.low) ** 2 + (b.high - b.value) ** 2)
    high = d + math.sqrt((a.high - a.value) ** 2 + (b.value - b.low) ** 2)
    return Estimate(d, low, high, "newcombe")


# --- Student's t --------------------------------------------------------------------------------------
def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (Lentz's method)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    tail = 0.5 * betainc(df / 2, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_ppf(p: float, df: float) -> float:
    """Student's t quantile, by bisection on ``t_cdf`` (monotone; 200 halvings reach double precision)."""
    if not 0 < p < 1:
        raise ValueError("p must be in (0, 1)")
    if p == 0.5:
        return 0.0
    low, high = -1.0, 1.0
    while t_cdf(low, df) > p:
        low *= 2
    while t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, abs(mid)):
            break
    return (low + high) / 2


def _mean_var(xs: Sequence[float]) -> tuple[float, float]:
    n = len(xs)
    mean = math.fsum(xs) / n
    var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else math.nan
    return mean, var


def mean_t(xs: Sequence[float]) -> Estimate:
    """The mean with Student's t interval (nan bounds for fewer than two values)."""
    if not xs:
        return Estimate(math.nan, math.nan, math.nan, "t")
    mean, var = _mean_var(xs)
    if len(xs) < 2:
        return Estimate(mean, math.nan, math.nan, "t")
    half = t_ppf(0.975, len(xs) - 1) * math.sqrt(var / len(xs))
    return Estimate(mean, mean - half, mean + half, "t")


def welch(xs: Sequence[float], ys: Sequence[float]) -> Estimate:
    """``mean(xs) - mean(ys)`` with Welch's t interval."""
    if len(xs) < 2 or len(ys) < 2:
        d = (math.fsum(xs) / len(xs) - math.fsum(ys) / len(ys)) if xs and ys else math.nan
        return Estimate(d, math.nan, math.nan, "welch")
    mx, vx = _mean_var(xs)
    my, vy = _mean_var(ys)
    sx, sy = vx / len(xs), vy / len(ys)
    d = mx - my
    se2 = sx + sy
    if se2 == 0:
        return Estimate(d, d, d, "welch")
    df = se2 * se2 / (sx * sx / (len(xs) - 1) + sy * sy / (len(ys) - 1))
    half = t_ppf(0.975, df) * math.sqrt(se2)
    return Estimate(d, d - half, d + half, "welch")


# --- percentiles: the bootstrap ------------------------------------------------------------------------
def _resampled_quantiles(values: Sequence[float], q: float, rounds: int, rng: object) -> list[float]:
    import numpy as np

    generator: np.random.Generator = rng  # type: ignore[assignment]
    data = np.asarray(values, dtype=float)
    out: list[float] = []
    chunk = max(1, min(rounds, 2_000_000 // max(1, len(data))))  # bounded memory for large arms
    done = 0
    while done < rounds:
        take = min(chunk, rounds - done)
        picks = data[generator.integers(0, len(data), size=(take, len(data)))]
        out.extend(float(v) for v in np.quantile(picks, q, axis=1))
        done += take
    return out


def _interval(samples: list[float]) -> tuple[float, float]:
    import numpy as np

    low, high = np.quantile(np.asarray(samples), [0.025, 0.975])
    return float(low), float(high)


def quantile(values: Sequence[float], q: float, *, rounds: int = BOOTSTRAP, seed: int = SEED) -> Estimate:
    """The ``q`` quantile (numpy's linear rule) with a seeded percentile-bootstrap interval."""
    import numpy as np

    if not values:
        return Estimate(math.nan, math.nan, math.nan, "bootstrap")
    point = float(np.quantile(np.asarray(values, dtype=float), q))
    samples = _resampled_quantiles(values, q, rounds, np.random.default_rng(seed))
    low, high = _interval(samples)
    return Estimate(point, low, high, "bootstrap")


def quantile_diff(xs: Sequence[float], ys: Sequence[float], q: float, *, rounds: int = BOOTSTRAP,
                  seed: int = SEED) -> Estimate:
    """``quantile(xs) - quantile(ys)``, each arm resampled on its own, from one seeded generator."""
    import numpy as np

    if not xs or not ys:
        return Estimate(math.nan, math.nan, math.nan, "bootstrap")
    point = float(np.quantile(np.asarray(xs, dtype=float), q) - np.quantile(np.asarray(ys, dtype=float), q))
    rng = np.random.default_rng(seed)
    a = _resampled_quantiles(xs, q, rounds, rng)
    b = _resampled_quantiles(ys, q, rounds, rng)
    low, high = _interval([x - y for x, y in zip(a, b, strict=True)])
    return Estimate(point, low, high, "bootstrap")

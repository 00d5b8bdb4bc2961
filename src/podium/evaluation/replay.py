"""Cross-fitted replay: every prompt is scored by a router fitted on the other folds, then the pooled
out-of-fold scores are swept exactly as RouteLLM sweeps its routers' scores.

Why k-fold: a learned router trained and scored on the same prompts looks far better than it is;
scoring each fold with a router fitted on the rest uses all the data and never leaks. Folds are drawn
over *distinct prompt texts* (MMLU repeats some questions), so a duplicate can't sit on both sides.
Pooling assumes a router's scores are on one scale across folds (true for the baselines; a learned
router should output a probability). The oracle row is a reference, not a router: it reads the answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from podium.errors import ConfigError
from podium.evaluation.dataset import EvalDataset
from podium.evaluation.metrics import CPT_LEVELS, CurvePoint, aiq, apgr, cpt, replay_curve
from podium.evaluation.routers import Router

Floats = NDArray[np.float64]
ORACLE = "oracle"


@dataclass(frozen=True)
class RouterResult:
    """One router's curve and its metrics (CPT in % strong calls, keyed by PGR level)."""

    name: str
    points: list[CurvePoint]
    apgr: float
    cpt: dict[int, float]
    aiq: float
    cross_fitted: bool = True


@dataclass(frozen=True)
class EvalResult:
    dataset: EvalDataset
    folds: int
    seed: int
    strong_accuracy: float
    weak_accuracy: float
    routers: list[RouterResult] = field(default_factory=list)


def fold_of(prompts: Sequence[str], folds: int, seed: int) -> NDArray[np.int64]:
    """Fold number per row: distinct prompts shuffled with ``seed`` and dealt round-robin."""
    distinct = sorted(set(prompts))
    order = np.random.default_rng(seed).permutation(len(distinct))
    fold = {distinct[j]: k % folds for k, j in enumerate(order)}
    return np.array([fold[p] for p in prompts], dtype=np.int64)


def cross_fit_scores(dataset: EvalDataset, router: Router, folds: int = 5, seed: int = 0) -> Floats:
    """Out-of-fold scores: row i is scored by ``router`` fitted on the folds not holding row i."""
    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    if len(set(dataset.prompts)) < folds:
        raise ConfigError(f"{dataset.name}: {len(set(dataset.prompts))} distinct prompts, fewer than {folds} folds")
    assignment = fold_of(dataset.prompts, folds, seed)
    scores = np.empty(len(dataset), dtype=np.float64)
    for k in range(folds):
        held = np.flatnonzero(assignment == k)
        scorer = router.fit(dataset.subset(np.flatnonzero(assignment != k)))
        out = np.asarray(scorer.scores([dataset.prompts[i] for i in held]), dtype=np.float64)
        if out.shape != held.shape:
            raise ValueError(f"router {router.name} returned {out.shape} scores for {len(held)} prompts")
        scores[held] = out
    return scores


def oracle_scores(dataset: EvalDataset) -> Floats:
    """Strong quality minus weak quality: the best possible order (RouteLLM's "Optimal")."""
    return dataset.strong_quality - dataset.weak_quality


def score_router(name: str, scores: Floats, dataset: EvalDataset, c_min: float, c_max: float,
                 *, cross_fitted: bool = True) -> RouterResult:
    """Sweep RouteLLM's thresholds over ``scores`` and compute every metric."""
    points = replay_curve(scores, dataset.strong_quality, dataset.weak_quality, dataset.strong_cost,
                          dataset.weak_cost)
    return score_points(name, points, dataset, c_min, c_max, cross_fitted=cross_fitted)


def score_points(name: str, points: list[CurvePoint], dataset: EvalDataset, c_min: float, c_max: float,
                 *, cross_fitted: bool = True) -> RouterResult:
    """Every metric of a cost-quality curve, however it was swept (a router's thresholds, a cascade's)."""
    strong, weak = dataset.accuracy(dataset.strong), dataset.accuracy(dataset.weak)
    return RouterResult(name, points, apgr(points, strong, weak),
                        {level: cpt(points, strong, weak, level) for level in CPT_LEVELS},
                        aiq(np.array([p.cost for p in points]), np.array([p.accuracy / 100 for p in points]),
                            c_min, c_max),
                        cross_fitted)


def evaluate(dataset: EvalDataset, routers: Sequence[Router], folds: int = 5, seed: int = 0,
             *, oracle: bool = True) -> EvalResult:
    """Cross-fit and score each router on ``dataset`` (plus the oracle reference unless ``oracle=False``)."""
    strong, weak = dataset.accuracy(dataset.strong), dataset.accuracy(dataset.weak)
    if strong == weak:
        raise ConfigError(f"{dataset.name}: both models score {strong:.2f}; there is no gap to recover")
    c_min, c_max = float(dataset.weak_cost.mean()), float(dataset.strong_cost.mean())
    results = [score_router(r.name, cross_fit_scores(dataset, r, folds, seed), dataset, c_min, c_max)
               for r in routers]
    if oracle:
        results.append(score_router(ORACLE, oracle_scores(dataset), dataset, c_min, c_max, cross_fitted=False))
    return EvalResult(dataset, folds, seed, strong, weak, results)

"""Fitting a learned router: from an eval dataset (``podium router train``) or any other source of
(embedding, per-model outcome) rows.

:func:`fit_learner` is the one place a kind name becomes a fitted learner; :func:`train_router` adds
what a router file should carry about its origin — the dataset, each model's mean cost per prompt,
and the held-out (cross-fitted) metrics of the same kind on the same data — so a file says how good
it was when it was written. Another input (the ledger) builds its own outcome matrix (NaN where a
model was not asked) and calls :func:`fit_learner`, or :func:`train_router` with an
:class:`~podium.evaluation.dataset.EvalDataset` it assembled.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from podium.errors import ConfigError
from podium.routing.learned.common import Learner
from podium.routing.learned.contract import Floats, Vectors

if TYPE_CHECKING:
    from podium.evaluation.dataset import EvalDataset

KINDS = ("knn", "logistic", "mlp", "mf", "ensemble", "bandit")
DEFAULT_KNOB = 0.9
# what "ensemble" averages: the two that err most differently and rank best on RouteLLM's data
ENSEMBLE_PARTS = ("knn", "logistic")

Embedder = Callable[[Sequence[str]], Vectors]


def fit_learner(kind: str, embeddings: Vectors, outcomes: Floats, models: Sequence[str],
                prompts: Sequence[str] | None = None, *, knob: float = DEFAULT_KNOB,
                costs: Mapping[str, float] | None = None, params: Mapping[str, Any] | None = None) -> Learner:
    """A fitted learner of ``kind`` on ``(n, 384)`` embeddings and ``(n, m)`` outcomes (NaN: unobserved)."""
    from podium.routing.learned.files import kinds

    known = kinds()
    if kind not in known:
        raise ConfigError(f"unknown router kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not 0 <= knob <= 1:
        raise ConfigError(f"--knob must lie in [0, 1] (0 cheapest, 1 best), got {knob}")
    extra = dict(params or {})
    common: dict[str, Any] = {"knob": float(knob), "costs": dict(costs or {})}
    if kind == "ensemble":
        from podium.routing.learned.ensemble import EnsembleRouter

        parts = [fit_learner(k, embeddings, outcomes, models, prompts, knob=knob, costs=costs,
                             params=extra.get(k)) for k in ENSEMBLE_PARTS]
        return EnsembleRouter(models, parts, **common)
    try:
        return known[kind].fit(embeddings, outcomes, models, prompts, **extra, **common)
    except ValueError as exc:
        raise ConfigError(f"cannot fit a {kind} router: {exc}") from None


def dataset_costs(dataset: EvalDataset) -> dict[str, float]:
    """Each model's mean cost per prompt (USD) in ``dataset``."""
    return {m: float(c) for m, c in zip(dataset.all_models, dataset.cost_matrix().mean(0), strict=True)}


def train_router(dataset: EvalDataset, kind: str, knob: float = DEFAULT_KNOB, *, embed: Embedder | None = None,
                 folds: int = 5, seed: int = 0, params: Mapping[str, Any] | None = None,
                 held_out: bool = True) -> Learner:
    """A ``kind`` router fitted on all of ``dataset``; with ``held_out`` its header also records the
    cross-fitted metrics of the same kind on the same data (``info["metrics"]``)."""
    from podium.evaluation.learned import EmbeddingTable, held_out_metrics

    table = EmbeddingTable(embed)
    table.add(dataset.prompts)
    models = dataset.all_models
    router = fit_learner(kind, table(dataset.prompts), dataset.quality_matrix(), models, dataset.prompts,
                         knob=knob, costs=dataset_costs(dataset), params=params)
    router.info["training"] = {"dataset": dataset.name, "prompts": len(dataset),
                               "accuracy": {m: round(dataset.accuracy(m), 3) for m in models},
                               **router.info.get("training", {})}
    if held_out:
        router.info["metrics"] = held_out_metrics(dataset, kind, knob, table, folds=folds, seed=seed, params=params)
    return router


def outcome_rows(dataset: EvalDataset) -> tuple[tuple[str, ...], Floats]:
    """The models and the ``(n, m)`` outcome matrix a learner is fitted on."""
    return dataset.all_models, np.asarray(dataset.quality_matrix(), dtype=np.float64)

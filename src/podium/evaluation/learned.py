"""Learned routers in ``podium eval``: cross-fitted like every router, plus transfer across datasets and
the pick-at-a-knob report for more than two models.

Scores for RouteLLM's two-model metrics: a learner predicts each model's chance of success, and a
prompt's score is ``1 - P(weak succeeds) / P(strong succeeds)``. That is the order in which the gateway's
:func:`~podium.routing.learned.contract.pick` sends prompts to the strong model as the knob rises (the
weak model is kept while ``P(weak) ≥ knob · P(strong)``), so the curve is what the deployed rule does.
Measured cross-fitted on RouteLLM's GSM8K it ranks as well as the difference ``P(strong) - P(weak)``
(APGR 0.649 vs 0.648 for the logistic router) and far better than the strong chance alone (0.577);
``benchmarks/learned_routing.py`` prints the comparison.

With more than two models the RouteLLM metrics still compare the strongest with the weakest, and
:func:`pick_report` replays the gateway's own rule — the cheapest model whose chance clears
``knob · best chance`` — at several knobs on out-of-fold chances: accuracy, mean cost and each model's
share, beside every single model and the oracle (the cheapest model that was right).

Embeddings come from :class:`EmbeddingTable`: each dataset's prompts are embedded once, in dataset
order so the on-disk cache (:mod:`podium.evaluation.embedding_cache`) is hit, and looked up by text
for any fold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from podium.errors import ConfigError
from podium.evaluation.dataset import EvalDataset
from podium.evaluation.routers import PromptScorer
from podium.routing.learned.common import Learner
from podium.routing.learned.contract import Floats, Vectors

KNOBS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0)
Embedder = Callable[[Sequence[str]], Vectors]


class EmbeddingTable:
    """Prompt text → embedding, filled a whole dataset at a time."""

    def __init__(self, embed: Embedder | None = None) -> None:
        if embed is None:
            from podium.evaluation.embedding_cache import embed_prompts

            embed = embed_prompts
        self._embed = embed
        self._rows: dict[str, Vectors] = {}

    def add(self, prompts: Sequence[str]) -> None:
        if all(p in self._rows for p in prompts):
            return
        vectors = np.asarray(self._embed(list(prompts)), dtype=np.float32)
        if vectors.shape != (len(prompts), 384):
            raise ValueError(f"the embedder returned shape {vectors.shape} for {len(prompts)} prompts")
        self._rows.update(zip(prompts, vectors, strict=True))

    def __call__(self, prompts: Sequence[str]) -> Vectors:
        self.add(prompts)
        return np.stack([self._rows[p] for p in prompts]) if prompts else np.zeros((0, 384), np.float32)


def fit(kind: str, train: EvalDataset, table: EmbeddingTable, params: Mapping[str, Any] | None = None,
        knob: float = 0.9) -> Learner:
    """A ``kind`` learner fitted on every row of ``train``."""
    from podium.routing.learned.training import dataset_costs, fit_learner

    return fit_learner(kind, table(train.prompts), train.quality_matrix(), train.all_models, train.prompts,
                       knob=knob, costs=dataset_costs(train), params=params)


def predict(router: Learner, table: EmbeddingTable, prompts: Sequence[str]) -> Floats:
    from podium.routing.learned.files import chances

    return np.asarray(chances(router, table(prompts), prompts), dtype=np.float64)


def strong_need(chances: Floats, models: Sequence[str], strong: str, weak: str) -> Floats:
    """The two-model score: ``1 - P(weak) / P(strong)`` per prompt (higher: the strong model is needed more)."""
    if strong not in models or weak not in models:
        raise ConfigError(f"the router knows {list(models)}, not the dataset's {strong} and {weak}")
    p_strong = np.maximum(chances[:, list(models).index(strong)], 1e-9)
    return 1.0 - chances[:, list(models).index(weak)] / p_strong


class _Scorer:
    def __init__(self, owner: LearnedEvalRouter, router: Learner, strong: str, weak: str) -> None:
        self.owner, self.router, self.strong, self.weak = owner, router, strong, weak

    def scores(self, prompts: Sequence[str]) -> Floats:
        chances = predict(self.router, self.owner.table, prompts)
        self.owner.out_of_fold.update(zip(prompts, chances, strict=True))
        return strong_need(chances, self.router.models, self.strong, self.weak)


class LearnedEvalRouter:
    """A learner as a :class:`~podium.evaluation.routers.Router`; keeps the chances it predicted on held-out
    prompts (``out_of_fold``) for :func:`pick_report`."""

    def __init__(self, kind: str, table: EmbeddingTable, params: Mapping[str, Any] | None = None,
                 name: str | None = None) -> None:
        self.kind, self.table, self.params = kind, table, params
        self.name = name or kind
        self.out_of_fold: dict[str, Floats] = {}
        self.models: tuple[str, ...] = ()

    def fit(self, train: EvalDataset) -> PromptScorer:
        router = fit(self.kind, train, self.table, self.params)
        self.models = router.models
        return _Scorer(self, router, train.strong, train.weak)

    def chances_for(self, dataset: EvalDataset) -> Floats:
        """The out-of-fold chances of every row of ``dataset`` (after a cross-fitted run)."""
        return np.stack([self.out_of_fold[p] for p in dataset.prompts])


def learned_routers(kinds: Sequence[str], table: EmbeddingTable) -> list[LearnedEvalRouter]:
    from podium.routing.learned.training import KINDS

    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ConfigError(f"unknown router {unknown[0]!r} for --router; choose from {', '.join(KINDS)} "
                          "(the random, length and podium-heuristic baselines always run)")
    return [LearnedEvalRouter(k, table) for k in dict.fromkeys(kinds)]


def transfer_scores(kind: str, train: EvalDataset, target: EvalDataset, table: EmbeddingTable) -> Floats:
    """Fit on all of ``train`` and score every prompt of ``target`` (not cross-fitted)."""
    router = fit(kind, train, table)
    return strong_need(predict(router, table, target.prompts), router.models, target.strong, target.weak)


@dataclass(frozen=True)
class PickRow:
    """One policy on a multi-model dataset: accuracy (%), mean cost per prompt (USD), share per model (%)."""

    name: str
    accuracy: float
    cost: float
    shares: dict[str, float]


def pick_rows(chances: Floats, quality: Floats, cost: Floats, models: Sequence[str], costs: Mapping[str, float],
              knob: float) -> tuple[float, float, Floats]:
    """``contract.pick`` on every row at ``knob``: (accuracy %, mean cost, share of each model %)."""
    knob = min(1.0, max(0.0, knob))
    bar = knob * chances.max(axis=1, keepdims=True)
    over = chances >= bar - 1e-12
    order = sorted(range(len(models)), key=lambda j: (costs[models[j]], models[j]))
    rank = np.empty(len(models), dtype=np.int64)
    rank[order] = np.arange(len(models))
    # cheapest over the bar; among equal cost the likelier (as pick(): cost, then -chance, then name)
    key = np.where(over, rank[None, :] * 4.0 - chances, np.inf)
    chosen = key.argmin(axis=1)
    rows = np.arange(len(chances))
    shares = np.bincount(chosen, minlength=len(models)) / len(chosen) * 100
    return float(quality[rows, chosen].mean() * 100), float(cost[rows, chosen].mean()), shares


def pick_report(dataset: EvalDataset, name: str, chances: Floats, models: Sequence[str],
                knobs: Sequence[float] = KNOBS) -> list[PickRow]:
    """The learned pick at each knob, then each single model and the oracle, on ``dataset``."""
    cols = [dataset.all_models.index(m) for m in models]
    quality, cost = dataset.quality_matrix()[:, cols], dataset.cost_matrix()[:, cols]
    costs = {m: float(c) for m, c in zip(models, cost.mean(0), strict=True)}
    out = []
    for knob in knobs:
        acc, mean_cost, shares = pick_rows(chances, quality, cost, models, costs, knob)
        out.append(PickRow(f"{name} knob {knob:g}", acc, mean_cost, dict(zip(models, shares.tolist(), strict=True))))
    for j, m in enumerate(models):
        out.append(PickRow(f"always {m}", float(quality[:, j].mean() * 100), float(cost[:, j].mean()),
                           {x: 100.0 if x == m else 0.0 for x in models}))
    best = quality.max(axis=1, keepdims=True)
    cheapest_right = np.where(quality >= best, cost, np.inf).argmin(axis=1)
    rows = np.arange(len(dataset))
    shares = np.bincount(cheapest_right, minlength=len(models)) / len(rows) * 100
    out.append(PickRow("oracle (reads the answers)", float(best.mean() * 100), float(cost[rows, cheapest_right].mean()),
                       dict(zip(models, shares.tolist(), strict=True))))
    return out


def pick_table(rows: Sequence[PickRow], models: Sequence[str]) -> str:
    head = "| policy | accuracy | cost / prompt | " + " | ".join(models) + " |"
    lines = [head, "|" + "---|" * (3 + len(models))]
    for r in rows:
        shares = " | ".join(f"{r.shares[m]:.0f} %" for m in models)
        lines.append(f"| {r.name} | {r.accuracy:.2f} % | ${r.cost:.6f} | {shares} |")
    return "\n".join(lines) + "\n"


def held_out_metrics(dataset: EvalDataset, kind: str, knob: float, table: EmbeddingTable, *, folds: int = 5,
                     seed: int = 0, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Cross-fitted metrics of ``kind`` on ``dataset``: RouteLLM's (strongest vs weakest) and the pick at
    ``knob`` (accuracy, cost, shares) — what ``podium router train`` prints and writes in the header."""
    from podium.evaluation.replay import evaluate

    router = LearnedEvalRouter(kind, table, params)
    result = evaluate(dataset, [router], folds, seed, oracle=False)
    r = result.routers[0]
    chances = router.chances_for(dataset)
    costs = {m: float(c) for m, c in zip(dataset.all_models, dataset.cost_matrix().mean(0), strict=True)}

    def at(k: float) -> dict[str, Any]:
        acc, cost, shares = pick_rows(chances, dataset.quality_matrix(), dataset.cost_matrix(), dataset.all_models,
                                      costs, k)
        return {"knob": k, "accuracy": round(acc, 3), "cost_per_prompt": cost,
                "shares": {m: round(s, 2) for m, s in zip(dataset.all_models, shares.tolist(), strict=True)}}

    return {"folds": folds, "seed": seed, "strong": dataset.strong, "weak": dataset.weak,
            "apgr": round(r.apgr, 4), **{f"cpt{level}": round(v, 2) for level, v in r.cpt.items()},
            "aiq": round(r.aiq, 6), "at_knob": at(knob), "knobs": [at(k) for k in sorted({*KNOBS, knob})]}

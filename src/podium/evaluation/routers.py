"""What a router offers the replay, and the baselines every run includes.

The interface is two steps so that learned routers (issue 12, part 3) plug in unchanged: a
:class:`Router` is *fitted* on the training folds only and returns a :class:`PromptScorer`, which rates
each held-out prompt's need for the strong model (higher = more need; only the order matters, because
the replay sweeps RouteLLM's quantile thresholds over the scores). The replay never hands a scorer a
prompt its router was fitted on, so a router that memorises its training data gains nothing.

Baselines:

- ``random``: uniform scores from a seeded generator, as RouteLLM's random router (APGR ≈ 0.5);
- ``length``: the prompt's length in characters (longer → strong), RouteLLM's length baseline;
- ``podium-heuristic``: today's :class:`~podium.routing.complexity.HeuristicEstimator` mapped to the tier
  the router picks from it (high risk or large → 2, medium risk or medium → 1, else 0), so the curve is
  what Podium's routing would do with two tiers and a cut-off between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from podium.evaluation.dataset import EvalDataset

Floats = NDArray[np.float64]


class PromptScorer(Protocol):
    """A fitted router: one score per prompt, higher meaning the strong model is more needed."""

    def scores(self, prompts: Sequence[str]) -> Floats: ...


class Router(Protocol):
    """A routing policy the replay can cross-fit: ``fit`` sees only training rows (prompts and outcomes)."""

    name: str

    def fit(self, train: EvalDataset) -> PromptScorer: ...


class _RandomScorer:
    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def scores(self, prompts: Sequence[str]) -> Floats:
        return self._rng.uniform(0.0, 1.0, len(prompts))


class RandomRouter:
    """Uniform random scores; one generator per router so a run is repeatable from ``seed``."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def fit(self, train: EvalDataset) -> PromptScorer:
        return _RandomScorer(self._rng)


class _LengthScorer:
    def scores(self, prompts: Sequence[str]) -> Floats:
        return np.array([len(p) for p in prompts], dtype=np.float64)


class LengthRouter:
    """Longer prompts to the strong model; nothing to learn."""

    name = "length"

    def fit(self, train: EvalDataset) -> PromptScorer:
        return _LengthScorer()


class _HeuristicScorer:
    def scores(self, prompts: Sequence[str]) -> Floats:
        from podium.routing.complexity import HeuristicEstimator
        from podium.types import ChatRequest, Message

        estimator = HeuristicEstimator()
        out = np.empty(len(prompts), dtype=np.float64)
        for i, prompt in enumerate(prompts):
            e = estimator.estimate(ChatRequest(messages=[Message.user(prompt)]))
            out[i] = 2 if e.risk == "high" or e.complexity == "large" else \
                1 if e.risk == "medium" or e.complexity == "medium" else 0
        return out


class HeuristicRouter:
    """Podium's current complexity/risk estimator, as the tier it would route to; nothing to learn."""

    name = "podium-heuristic"

    def fit(self, train: EvalDataset) -> PromptScorer:
        return _HeuristicScorer()


def baselines(seed: int = 0) -> list[Router]:
    """The routers every ``podium eval`` run reports."""
    return [RandomRouter(seed), LengthRouter(), HeuristicRouter()]

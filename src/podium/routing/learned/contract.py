"""What a learned router is, to everything that uses one.

A learned router predicts, for each prompt embedding (all-MiniLM-L6-v2, 384 floats, unit length:
:func:`podium.providers.local.minilm.load`), every known model's chance of answering well. Choosing a
model from those chances is the same for every learner, so it lives here (:func:`pick`) and not in
each learner: the *knob* in [0, 1] runs from cheapest (0: always the cheapest eligible model) to best
(1: always the model most likely to succeed). In between, the bar a model's chance must clear is
``knob x the best eligible chance``, and the cheapest model over the bar wins; with two models this is
RouteLLM's threshold on the strong model's win probability, with more it is "the cheapest model good
enough for this prompt".

Why a protocol and not a base class: learners are plain numpy objects (kNN, logistic regression/MLP,
matrix factorisation, an online bandit) and are loaded from files written by ``podium router train``;
the router in the gateway only ever calls :meth:`LearnedRouter.predict` and :meth:`LearnedRouter.explain`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

Floats = NDArray[np.float64]
Vectors = NDArray[np.float32]


@runtime_checkable
class LearnedRouter(Protocol):
    """A fitted learner: chances of success per model for each embedding."""

    kind: str  # "knn", "logistic", "mlp", "mf", "bandit"
    models: tuple[str, ...]  # the columns of :meth:`predict`, in order
    knob: float  # the default knob written at training time (0 cheapest … 1 best)

    def predict(self, embeddings: Vectors) -> Floats:
        """Shape (n, len(models)): each model's chance (0..1) of a good answer to each prompt."""
        ...

    def explain(self, embedding: Vectors) -> str:
        """One line for the trace saying why (e.g. the nearest training prompts and their outcomes);
        never the text of any prompt."""
        ...


@runtime_checkable
class OnlineRouter(LearnedRouter, Protocol):
    """A learner that also updates as labels arrive (feedback, agreement, verifier verdicts)."""

    def update(self, embedding: Vectors, model: str, reward: float) -> None:
        """Learn that ``model`` scored ``reward`` (0..1) on the prompt with this embedding."""
        ...


@dataclass(frozen=True)
class Choice:
    """The model picked, every eligible model's chance, the bar it cleared, and the knob used."""

    model: str
    chances: dict[str, float]
    bar: float
    knob: float

    def describe(self) -> str:
        ranked = ", ".join(f"{m} {p:.2f}" for m, p in sorted(self.chances.items(), key=lambda kv: -kv[1]))
        return f"P(success) {ranked}; knob {self.knob:.2f} → bar {self.bar:.2f}; cheapest over the bar: {self.model}"


def pick(chances: Mapping[str, float], costs: Mapping[str, float], knob: float) -> Choice:
    """The cheapest model whose chance clears ``knob x best chance`` (ties: the likelier, then the name).

    ``chances`` and ``costs`` hold the *eligible* models only (the caller has applied scope, regions,
    budget and context limits), with the same keys; ``knob`` is clamped to [0, 1].
    """
    if not chances:
        raise ValueError("pick() needs at least one eligible model")
    knob = min(1.0, max(0.0, float(knob)))
    bar = knob * max(chances.values())
    over = [m for m, p in chances.items() if p >= bar - 1e-12]
    model = min(over, key=lambda m: (costs[m], -chances[m], m))
    return Choice(model, dict(chances), bar, knob)

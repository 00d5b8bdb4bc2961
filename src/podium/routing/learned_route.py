"""A learned router's choice for one request, within the request's constraints. Pure logic.

The learner's work (embedding the prompt, predicting every model's chance) is done before routing,
off the event loop (``podium.learned_runtime``), and arrives here as a :class:`Prediction`. What is
left is cheap and deterministic: keep the models of the router file that may serve *this* request
(the key's scope, the data's regions, the budget, the context window, capabilities, runnable here —
the same ``Constraints`` the tiers obey), price each for this request, and let the contract's
:func:`~podium.routing.learned.contract.pick` take the cheapest model whose chance clears the knob's
bar. When none of the file's models may serve the request, the caller falls back to the tiers and
says so. The invoker's choke point still checks the policy on every call afterwards.

Exploration (online routers only): the runtime draws, per request, whether to explore and a number
in [0, 1) that picks one of the eligible models uniformly, so this module stays pure and a test can
replay a draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from podium.catalogue import ModelInfo
from podium.routing.learned.contract import LearnedRouter, OnlineRouter, pick

Vector = NDArray[np.float32]


@dataclass(frozen=True)
class LearnedSetup:
    """``routing.learned`` resolved: the loaded router, where it came from, its knob and exploration share."""

    router: LearnedRouter
    path: Path
    knob: float
    explore: float = 0.0
    names: tuple[str, ...] = ()  # the catalogue's name for each of ``router.models`` (a file may use aliases)

    def __post_init__(self) -> None:
        if not self.names:
            object.__setattr__(self, "names", tuple(self.router.models))

    @property
    def online(self) -> bool:
        return isinstance(self.router, OnlineRouter)

    def file_name(self, model: str) -> str | None:
        """The router file's name for catalogue model ``model`` (None: not one of the file's models)."""
        for name, own in zip(self.names, self.router.models, strict=True):
            if name == model:
                return own
        return None

    def label(self) -> str:
        """How the trace names the router: its kind and its file's name (never a full path)."""
        return f"{self.router.kind}, file {self.path.name}"


@dataclass(frozen=True)
class Prediction:
    """What the learner said about one prompt (computed off the event loop)."""

    embedding: Vector  # (384,) float32, unit length
    chances: dict[str, float]  # every model of the router file → its chance of a good answer
    explanation: str  # the learner's one line (never prompt text)
    explore: float | None = None  # a draw in [0, 1) when this request explores, else None


@dataclass(frozen=True)
class LearnedChoice:
    model: ModelInfo
    cost: float
    rationale: str
    confidence: float


def choose(setup: LearnedSetup, prediction: Prediction, eligible: Sequence[tuple[ModelInfo, float]],
           knob: float | None) -> LearnedChoice:
    """The model for this request among ``eligible`` (model, estimated cost) pairs, which must hold
    at least one model of the router file; ``knob`` overrides the configured one (None: configured)."""
    chances = {m.name: prediction.chances[m.name] for m, _ in eligible}
    costs = {m.name: cost for m, cost in eligible}
    rows = {m.name: (m, cost) for m, cost in eligible}
    used = setup.knob if knob is None else knob
    head = f"learned router ({setup.label()})"
    if prediction.explore is not None:
        names = sorted(rows)
        name = names[min(len(names) - 1, int(prediction.explore * len(names)))]
        model, cost = rows[name]
        ranked = ", ".join(f"{m} {p:.2f}" for m, p in sorted(chances.items(), key=lambda kv: -kv[1]))
        rationale = (f"{head}: explore (share {setup.explore:.2f}): random eligible model {name}; "
                     f"P(success) {ranked}")
        return LearnedChoice(model, cost, rationale, max(0.0, min(1.0, chances[name])))
    choice = pick(chances, costs, used)
    model, cost = rows[choice.model]
    rationale = f"{head}: {choice.describe()}; {prediction.explanation}"
    return LearnedChoice(model, cost, rationale, max(0.0, min(1.0, chances[choice.model])))

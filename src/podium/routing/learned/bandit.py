"""An online contextual bandit: each model's chance of success is a Bayesian linear regression over
the prompt embedding, updated one label at a time as feedback arrives.

Why this learner: the gateway learns from labels that come one by one (``/v1/feedback``, agreement
inside a vote, a verifier's verdict), and only for the model that answered, so the router must learn
from a single (embedding, model, reward) row at a time, in bounded memory, and must keep asking the
models it believes worse now and then, or it never finds out it was wrong. Per model it keeps a ridge
(Gaussian-prior) linear regression of the reward on ``[1, scale · embedding]`` — the posterior's
precision matrix, its inverse, and the weights — so an update is a Sherman-Morrison rank-one step,
O(d²) for d = 385 (the inverse is recomputed from the precision every 4,096 updates of a model so that
rounding cannot drift: O(d³) once in 4,096 updates, well under O(d²) amortised). Memory is those fixed
matrices whatever the number of updates; nothing grows.

``predict`` gives each model's posterior mean chance (clipped to [0, 1]), deterministic, so
:func:`~podium.routing.learned.contract.pick` and the knob work exactly as for the offline learners.
Exploration is a share ``explore`` of requests sent to a uniformly drawn eligible model, the same rule
the gateway applies (:mod:`podium.routing.learned_route`); :meth:`BanditRouter.choose` draws it from a
counter-based generator seeded by ``seed``, so a run is reproducible and continues identically after
a save and a load. Only the chosen model's outcome is ever given to :meth:`BanditRouter.update`.

An optional ``dims`` < 384 projects the embedding through a fixed random Gaussian matrix (drawn from
``seed`` and kept in the file) for cheaper updates; the default keeps all 384 dimensions.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from podium.routing.learned.common import DIMENSIONS, Learner, check_embeddings, check_outcomes, need
from podium.routing.learned.contract import Choice, Floats, Vectors, pick

REFRESH = 4096  # updates of one model between exact re-inversions of its precision matrix


@dataclass(frozen=True)
class Pull:
    """One decision of the bandit: the model, whether it was an exploration draw, and the knob's choice."""

    model: str
    explored: bool
    choice: Choice


class BanditRouter(Learner):
    """Per-model Bayesian linear regression of success on the embedding, with an exploration share."""

    kind = "bandit"

    def __init__(self, models: Sequence[str], *, explore: float = 0.1, seed: int = 0, dims: int = DIMENSIONS,
                 scale: float = 1.0, prior: float = 1.0, prior_mean: float = 0.5, noise: float = 0.5,
                 state: Mapping[str, NDArray[Any]] | None = None, **kw: Any) -> None:
        super().__init__(models, **kw)
        if len(self.models) < 2 or len(set(self.models)) != len(self.models) or not all(self.models):
            raise ValueError(f"a bandit needs two or more distinct model names, got {list(self.models)}")
        if not (isinstance(explore, int | float) and 0.0 <= explore <= 1.0):
            raise ValueError(f"explore must be a share in [0, 1], got {explore!r}")
        if not 1 <= int(dims) <= DIMENSIONS:
            raise ValueError(f"dims must be 1..{DIMENSIONS}, got {dims!r}")
        for name, value in (("scale", scale), ("prior", prior), ("noise", noise)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (isinstance(prior_mean, int | float) and 0.0 <= prior_mean <= 1.0):
            raise ValueError(f"prior_mean must lie in [0, 1], got {prior_mean!r}")
        self.explore, self.seed, self.dims = float(explore), int(seed), int(dims)
        self.scale, self.prior, self.noise = float(scale), float(prior), float(noise)
        self.prior_mean = float(prior_mean)
        m, d = len(self.models), self.dims + 1
        if state is None:
            self.projection = (np.eye(DIMENSIONS, dtype=np.float64) if self.dims == DIMENSIONS else
                               np.random.default_rng(self.seed).standard_normal((DIMENSIONS, self.dims))
                               / math.sqrt(self.dims))
            self.precision = np.tile(np.eye(d) * self.prior, (m, 1, 1))
            self.covariance = np.tile(np.eye(d) / self.prior, (m, 1, 1))
            self.moment = np.zeros((m, d))
            self.moment[:, 0] = self.prior * self.prior_mean  # b = A0 · mu0 with mu0 = [prior_mean, 0, …]
            self.weights = np.einsum("mij,mj->mi", self.covariance, self.moment)
            self.counts = np.zeros(m, dtype=np.int64)
            self.draws = np.zeros(1, dtype=np.int64)
        else:
            self.projection = np.asarray(state["projection"], dtype=np.float64)
            self.precision = np.asarray(state["precision"], dtype=np.float64).copy()
            self.covariance = np.asarray(state["covariance"], dtype=np.float64).copy()
            self.moment = np.asarray(state["moment"], dtype=np.float64).copy()
            self.weights = np.asarray(state["weights"], dtype=np.float64).copy()
            self.counts = np.asarray(state["counts"], dtype=np.int64).copy()
            self.draws = np.asarray(state["draws"], dtype=np.int64).copy()
        self._identity = self.dims == DIMENSIONS and np.array_equal(self.projection, np.eye(DIMENSIONS))
        self._lock = threading.Lock()  # the gateway may update from several threads while others predict

    # --- features -----------------------------------------------------------------------------------
    def _features(self, x: NDArray[np.float32]) -> Floats:
        """``[1, scale · projected embedding]`` per row."""
        z = np.asarray(x, dtype=np.float64)
        if not self._identity:
            z = z @ self.projection
        return np.hstack([np.ones((len(z), 1)), self.scale * z])

    @staticmethod
    def _one(embedding: Vectors) -> NDArray[np.float64]:
        """One embedding as a (384,) float64 vector, or a ValueError saying what is wrong with it."""
        try:
            x = np.asarray(embedding, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"the embedding must be {DIMENSIONS} numbers") from None
        if x.shape != (DIMENSIONS,) and x.shape != (1, DIMENSIONS):
            raise ValueError(f"the embedding must have {DIMENSIONS} dimensions, got shape {x.shape}")
        x = x.reshape(DIMENSIONS)
        if not np.isfinite(x).all():
            raise ValueError("the embedding holds NaN or infinite values")
        return x

    def _phi(self, x: NDArray[np.float64]) -> Floats:
        """The features of one checked embedding (the update's fast path)."""
        phi = np.empty(self.dims + 1)
        phi[0] = 1.0
        phi[1:] = x if self._identity else x @ self.projection
        phi[1:] *= self.scale
        return phi

    # --- the contract -------------------------------------------------------------------------------
    def predict(self, embeddings: Vectors, prompts: Sequence[str] | None = None) -> Floats:
        """(n, models) posterior mean chance of success, clipped to [0, 1]."""
        x = check_embeddings(embeddings)
        if not np.all(np.isfinite(x)):
            raise ValueError("embeddings hold NaN or infinite values")
        features = self._features(x)
        with self._lock:
            return np.asarray(np.clip(features @ self.weights.T, 0.0, 1.0))

    def spread(self, embedding: Vectors) -> Floats:
        """Each model's posterior standard deviation of its chance on this prompt (how unsure it still is)."""
        phi = self._phi(self._one(embedding))
        with self._lock:
            return np.asarray(self.noise * np.sqrt(np.maximum(np.einsum("i,mij,j->m", phi, self.covariance, phi), 0.0)))

    def explain(self, embedding: Vectors, prompt: str | None = None) -> str:
        phi = self._phi(self._one(embedding))
        with self._lock:
            chances = np.clip(self.weights @ phi, 0.0, 1.0)
            spread = self.noise * np.sqrt(np.maximum(np.einsum("i,mij,j->m", phi, self.covariance, phi), 0.0))
            total, counts = int(self.counts.sum()), self.counts.tolist()
        ranked = ", ".join(f"{m} {p:.2f} ± {s:.2f}" for m, p, s in
                           sorted(zip(self.models, chances, spread, strict=True), key=lambda t: -t[1]))
        per_model = ", ".join(f"{m} {c}" for m, c in zip(self.models, counts, strict=True))
        return (f"bandit after {total} updates ({per_model}); mean P(success) {ranked}; "
                f"explores {self.explore:.0%}")

    def update(self, embedding: Vectors, model: str, reward: float) -> None:
        """Learn that ``model`` scored ``reward`` (0..1) on this prompt; bad input is a ValueError naming it."""
        if not isinstance(model, str) or model not in self.models:
            raise ValueError(f"unknown model {model!r} for this bandit; it routes between {', '.join(self.models)}")
        if isinstance(reward, bool) or not isinstance(reward, int | float | np.integer | np.floating) \
                or not math.isfinite(float(reward)) or not 0.0 <= float(reward) <= 1.0:
            raise ValueError(f"reward must be a finite number in [0, 1], got {reward!r}")
        phi = self._phi(self._one(embedding))
        j = self.models.index(model)
        with self._lock:
            cov = self.covariance[j]
            u = cov @ phi
            cov -= np.outer(u, u / (1.0 + float(phi @ u)))
            self.precision[j] += np.outer(phi, phi)
            self.moment[j] += float(reward) * phi
            self.counts[j] += 1
            if self.counts[j] % REFRESH == 0:
                self.covariance[j] = np.linalg.inv(self.precision[j])
            self.weights[j] = self.covariance[j] @ self.moment[j]

    # --- choosing with exploration --------------------------------------------------------------------
    def choose(self, embedding: Vectors, costs: Mapping[str, float], knob: float | None = None,
               explore: float | None = None) -> Pull:
        """The model for this prompt among ``costs``' keys (the eligible models): with probability
        ``explore`` (default: the router's) a uniformly drawn one, else the knob's pick on the mean chances.

        The draw comes from generator ``(seed, number of earlier draws)``, so the sequence of choices is
        fixed by the seed and survives a save and a load."""
        share = self.explore if explore is None else explore
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"explore must be a share in [0, 1], got {share!r}")
        unknown = [m for m in costs if m not in self.models]
        if not costs or unknown:
            raise ValueError(f"eligible models must be some of {', '.join(self.models)}, got {list(costs)}")
        phi = self._phi(self._one(embedding))
        with self._lock:
            chances_all = np.clip(self.weights @ phi, 0.0, 1.0)
            draw = int(self.draws[0])
            self.draws[0] += 1
        chances = {m: float(chances_all[self.models.index(m)]) for m in costs}
        choice = pick(chances, costs, self.knob if knob is None else knob)
        u, v = np.random.default_rng((self.seed, draw)).random(2)
        if u < share:
            names = sorted(costs)
            return Pull(names[min(len(names) - 1, int(v * len(names)))], True, choice)
        return Pull(choice.model, False, choice)

    # --- offline warm start and the router file -----------------------------------------------------
    @classmethod
    def fit(cls, embeddings: Vectors, outcomes: Floats, models: Sequence[str], prompts: Sequence[str] | None = None,
            **kw: Any) -> BanditRouter:
        """A bandit that has already seen every observed (prompt, model) outcome (NaN: not observed)."""
        x = check_embeddings(embeddings)
        y = check_outcomes(outcomes, len(x), models)
        router = cls(models, **kw)
        phi = router._features(x)
        for j in range(len(router.models)):
            seen = ~np.isnan(y[:, j])
            router.precision[j] += phi[seen].T @ phi[seen]
            router.moment[j] += phi[seen].T @ y[seen, j]
            router.counts[j] += int(seen.sum())
            router.covariance[j] = np.linalg.inv(router.precision[j])
            router.weights[j] = router.covariance[j] @ router.moment[j]
        return router

    def params(self) -> dict[str, Any]:
        return {"explore": self.explore, "seed": self.seed, "dims": self.dims, "scale": self.scale,
                "prior": self.prior, "prior_mean": self.prior_mean, "noise": self.noise}

    def arrays(self) -> dict[str, NDArray[Any]]:
        """Copies of the learned state, taken together (a save during updates never mixes two states)."""
        with self._lock:
            return {"projection": self.projection.copy(), "precision": self.precision.copy(),
                    "covariance": self.covariance.copy(), "moment": self.moment.copy(),
                    "weights": self.weights.copy(), "counts": self.counts.copy(), "draws": self.draws.copy()}

    @classmethod
    def restore(cls, models: Sequence[str], params: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]],
                **kw: Any) -> BanditRouter:
        """Rebuilt from a router file's parameters and arrays, every shape and value checked."""
        dims = int(params["dims"])
        if not 1 <= dims <= DIMENSIONS:
            raise ValueError(f"parameter dims must be 1..{DIMENSIONS}, got {dims}")
        m, d = len(models), dims + 1
        state = {"projection": need(arrays, "projection", (DIMENSIONS, dims)),
                 "precision": need(arrays, "precision", (m, d, d)),
                 "covariance": need(arrays, "covariance", (m, d, d)),
                 "moment": need(arrays, "moment", (m, d)), "weights": need(arrays, "weights", (m, d)),
                 "counts": need(arrays, "counts", (m,), "i"), "draws": need(arrays, "draws", (1,), "i")}
        if np.any(state["counts"] < 0) or np.any(state["draws"] < 0):
            raise ValueError("arrays 'counts' and 'draws' must not be negative")
        return cls(models, explore=float(params["explore"]), seed=int(params["seed"]), dims=dims,
                   scale=float(params["scale"]), prior=float(params["prior"]),
                   prior_mean=float(params["prior_mean"]), noise=float(params["noise"]), state=state, **kw)

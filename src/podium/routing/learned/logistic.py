"""Logistic regression over the prompt embedding plus cheap text features: one head per model.

Why: a linear read-out of MiniLM already separates task kinds (an MMLU subject, arithmetic, code), and
the text features (:func:`~podium.routing.learned.common.text_features`: length, digits, code and math
markers) add what mean pooling blurs. Each model's chance is ``sigmoid(z · w_model + b_model)`` with
``z`` = [embedding, features], each column standardised on the training rows. Each head is fitted
exactly by Newton's method (IRLS: the problem is convex and only ~400 wide) on the cross-entropy of
that model's observed outcomes (NaN = unobserved) plus an L2 penalty, whose strength is chosen from a
grid by the loss on an inner 10 % split and then refitted on every row. Also the base of the small MLP
and the MF router (:mod:`podium.routing.learned.mlp`, :mod:`podium.routing.learned.mf`), which share its
inputs and file layout and are trained by Adam with early stopping on the inner split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from podium.routing.learned.common import (
    DIMENSIONS,
    FEATURES,
    Learner,
    Network,
    Standardiser,
    check_embeddings,
    check_outcomes,
    fit_gd,
    inner_split,
    need,
    sigmoid,
    text_features,
    unit_rows,
)
from podium.routing.learned.contract import Floats, Vectors


class _Linear(Network):
    def forward(self, params: Mapping[str, Floats], z: Floats) -> tuple[Floats, Any]:
        return z @ params["w"] + params["b"], z

    def backward(self, params: Mapping[str, Floats], cache: Any, dlogits: Floats) -> dict[str, Floats]:
        return {"w": cache.T @ dlogits, "b": dlogits.sum(0)}


_LINEAR = _Linear()
L2_GRID = (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0)


def _newton(z: Floats, y: Floats, l2: float, start: Floats | None = None, iterations: int = 25
            ) -> tuple[Floats, float]:
    """Weights and bias of one L2-penalised logistic head (penalty ``l2``·|w|²/2 on the summed loss)."""
    n, d = z.shape
    za = np.hstack([z, np.ones((n, 1))])
    if start is None:
        w = np.zeros(d + 1)
        mean = float(np.clip(y.mean(), 0.02, 0.98))
        w[-1] = np.log(mean / (1 - mean))
    else:
        w = start.copy()
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = sigmoid(za @ w)
        grad = za.T @ (p - y) + penalty * w
        hess = (za * (p * (1 - p))[:, None]).T @ za + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-5:
            break
    return w[:-1], float(w[-1])


def _log_loss(z: Floats, y: Floats, w: Floats, b: float) -> float:
    p = np.clip(sigmoid(z @ w + b), 1e-9, 1 - 1e-9)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _fit_newton(z: Floats, y: Floats, hyper: Mapping[str, Any], rng: np.random.Generator
                ) -> tuple[dict[str, Floats], dict[str, Any]]:
    """Every head by Newton's method, its L2 strength picked on an inner split (or fixed by ``l2``)."""
    d, m = z.shape[1], y.shape[1]
    w, b, chosen = np.zeros((d, m)), np.zeros(m), []
    grid = (float(hyper["l2"]),) if hyper.get("l2") is not None else L2_GRID
    for j in range(m):
        rows = np.flatnonzero(~np.isnan(y[:, j]))
        zj, yj = z[rows], y[rows, j]
        best = grid[0]
        if len(grid) > 1 and len(rows) >= 20:
            train, val = inner_split(len(rows), 0.1, rng)
            losses, warm = [], None
            for lam in sorted(grid, reverse=True):  # strongest penalty first, each fit warm-starting the next
                wj, bj = _newton(zj[train], yj[train], lam, warm)
                warm = np.append(wj, bj)
                losses.append((_log_loss(zj[val], yj[val], wj, bj), lam))
            best = min(losses)[1]
        w[:, j], b[j] = _newton(zj, yj, best)
        chosen.append(best)
    return {"w": w, "b": b}, {"l2_chosen": chosen}


class DenseRouter(Learner):
    """Shared by the logistic and MLP routers: inputs, training, prediction and the file layout."""

    net: ClassVar[Network] = _LINEAR
    shapes: ClassVar[dict[str, tuple[str, ...]]] = {"w": ("d", "m"), "b": ("m",)}
    decay: ClassVar[tuple[str, ...]] = ("w",)
    defaults: ClassVar[dict[str, Any]] = {"text": True, "l2": None, "seed": 0}

    def __init__(self, models: Sequence[str], weights: dict[str, Floats], scaler: Standardiser,
                 hyper: Mapping[str, Any], **kw: Any) -> None:
        super().__init__(models, **kw)
        self.weights, self.scaler, self.hyper = weights, scaler, dict(hyper)
        self.uses_text = bool(self.hyper["text"])

    @classmethod
    def _init(cls, d: int, m: int, hyper: Mapping[str, Any], rng: np.random.Generator, base: Floats
              ) -> dict[str, Floats]:
        return {"w": np.zeros((d, m)), "b": np.log(base / (1 - base))}

    @classmethod
    def fit(cls, embeddings: Vectors, outcomes: Floats, models: Sequence[str], prompts: Sequence[str] | None = None,
            **kw: Any) -> DenseRouter:
        hyper = dict(cls.defaults)
        for key in list(kw):
            if key in hyper:
                hyper[key] = kw.pop(key)
        x = check_embeddings(embeddings)
        y = check_outcomes(outcomes, len(x), models)
        if hyper["text"] and prompts is None:
            raise ValueError(f"the {cls.kind} router with text features needs the prompts")
        feats = text_features(prompts) if hyper["text"] and prompts is not None else np.zeros((len(x), 0))
        raw = np.hstack([unit_rows(x).astype(np.float64), feats])
        scaler = Standardiser.fit(raw)
        z = scaler(raw)
        base = np.clip(np.nanmean(y, axis=0), 0.02, 0.98)
        rng = np.random.default_rng(int(hyper["seed"]))
        params = cls._init(z.shape[1], len(models), hyper, rng, base)
        if cls.net is _LINEAR:
            params, trace = _fit_newton(z, y, hyper, rng)
            router = cls(models, params, scaler, hyper, **kw)
            router.info.setdefault("training", {}).update(trace)
            return router
        params, trace = fit_gd(cls.net, params, z, y, decay=cls.decay, l2=float(hyper["l2"]), lr=float(hyper["lr"]),
                               epochs=int(hyper["epochs"]), batch=int(hyper["batch"]),
                               patience=int(hyper["patience"]), seed=int(hyper["seed"]))
        router = cls(models, params, scaler, hyper, **kw)
        router.info.setdefault("training", {}).update(trace)
        return router

    def predict(self, embeddings: Vectors, prompts: Sequence[str] | None = None) -> Floats:
        x = check_embeddings(embeddings)
        feats = self._text(prompts, len(x)) if self.uses_text else np.zeros((len(x), 0))
        z = self.scaler(np.hstack([unit_rows(x).astype(np.float64), feats]))
        return sigmoid(self.net.forward(self.weights, z)[0])

    def params(self) -> dict[str, Any]:
        return dict(self.hyper)

    def arrays(self) -> dict[str, NDArray[Any]]:
        return {**self.weights, "input_mean": self.scaler.mean, "input_scale": self.scaler.scale}

    @classmethod
    def restore(cls, models: Sequence[str], params: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]],
                **kw: Any) -> DenseRouter:
        hyper = {**cls.defaults, **params}
        if not isinstance(hyper["text"], bool):
            raise ValueError("parameter 'text' must be true or false")
        f = len(FEATURES) if hyper["text"] else 0
        sizes = {"d": DIMENSIONS + f, "m": len(models), "f": f, "h": int(hyper.get("hidden", 0)),
                 "r": int(hyper.get("rank", 0))}
        weights = {name: need(arrays, name, tuple(sizes[s] for s in shape)).astype(np.float64)
                   for name, shape in cls.shapes.items()}
        scaler = Standardiser(need(arrays, "input_mean", (sizes["d"],)).astype(np.float64),
                              need(arrays, "input_scale", (sizes["d"],)).astype(np.float64))
        if np.any(scaler.scale <= 0):
            raise ValueError("array 'input_scale' must be positive")
        return cls(models, weights, scaler, hyper, **kw)


class LogisticRouter(DenseRouter):
    kind = "logistic"

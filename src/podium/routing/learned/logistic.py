"""Logistic regression over the prompt embedding plus cheap text features: one head per model.

Why: a linear read-out of MiniLM already separates task kinds (an MMLU subject, arithmetic, code), and
the text features (:func:`~podium.routing.learned.common.text_features`: length, digits, code and math
markers) add what mean pooling blurs. Each model's chance is ``sigmoid(z · w_model + b_model)`` with
``z`` = [embedding, features], each column standardised on the training rows. Each head is fitted by
L-BFGS (the problem is convex) on the mean cross-entropy of that model's observed outcomes (NaN =
unobserved) plus an L2 penalty, whose strength is chosen from a grid by the held-out loss of an inner
3-fold split (one 10 % split past 3,000 rows) and then refitted on every row. Also the base of the
small MLP and the MF router (:mod:`podium.routing.learned.mlp`, :mod:`podium.routing.learned.mf`), which
share its inputs and file layout and are trained by Adam with early stopping on an inner split.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
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
L2_GRID = (3.0, 10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0)  # on the summed loss, i.e. λ/n per prompt


def lbfgs(loss_grad: Callable[[Floats], tuple[float, Floats]], x: Floats, iterations: int, memory: int = 10,
          tol: float = 1e-6) -> Floats:
    """Minimise a smooth function by L-BFGS with a backtracking (Armijo) line search."""
    loss, grad = loss_grad(x)
    s_hist: list[Floats] = []
    y_hist: list[Floats] = []
    for _ in range(iterations):
        q = grad.copy()
        alphas = []
        for s_i, y_i in zip(reversed(s_hist), reversed(y_hist), strict=True):
            a = float(s_i @ q) / float(y_i @ s_i)
            alphas.append(a)
            q -= a * y_i
        if s_hist:
            q *= float(s_hist[-1] @ y_hist[-1]) / float(y_hist[-1] @ y_hist[-1])
        for (s_i, y_i), a in zip(zip(s_hist, y_hist, strict=True), reversed(alphas), strict=True):
            q += s_i * (a - float(y_i @ q) / float(y_i @ s_i))
        direction = -q
        slope = float(grad @ direction)
        if slope >= 0:  # not a descent direction: restart from the gradient
            s_hist.clear()
            y_hist.clear()
            direction, slope = -grad, -float(grad @ grad)
        step = 1.0
        while True:
            new = x + step * direction
            new_loss, new_grad = loss_grad(new)
            if new_loss <= loss + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s_new, y_new = new - x, new_grad - grad
        if float(s_new @ y_new) > 1e-12:
            s_hist.append(s_new)
            y_hist.append(y_new)
            if len(s_hist) > memory:
                s_hist.pop(0)
                y_hist.pop(0)
        done = loss - new_loss < tol * max(1.0, abs(loss))
        x, loss, grad = new, new_loss, new_grad
        if done or float(np.max(np.abs(grad))) < 1e-7:
            break
    return x


def _head(z: Floats, y: Floats, l2: float, start: Floats | None = None, iterations: int = 200
          ) -> tuple[Floats, float]:
    """Weights and bias of one L2-penalised logistic head (mean cross-entropy + ``l2``·|w|²/2n), by L-BFGS."""
    n, d = z.shape
    za = np.hstack([z, np.ones((n, 1))])
    if start is None:
        w = np.zeros(d + 1)
        mean = float(np.clip(y.mean(), 0.02, 0.98))
        w[-1] = np.log(mean / (1 - mean))
    else:
        w = start.copy()
    penalty = np.full(d + 1, l2 / n)
    penalty[-1] = 0.0

    def loss_grad(v: Floats) -> tuple[float, Floats]:
        t = za @ v
        loss = float(np.mean(np.logaddexp(0.0, t) - y * t) + 0.5 * np.sum(penalty * v * v))
        return loss, za.T @ (sigmoid(t) - y) / n + penalty * v

    w = lbfgs(loss_grad, w, iterations)
    return w[:-1], float(w[-1])


def _log_loss(z: Floats, y: Floats, w: Floats, b: float) -> float:
    p = np.clip(sigmoid(z @ w + b), 1e-9, 1 - 1e-9)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def _fit_head(z: Floats, y: Floats, hyper: Mapping[str, Any], rng: np.random.Generator
                ) -> tuple[dict[str, Floats], dict[str, Any]]:
    """Every head by L-BFGS, its L2 strength picked by inner validation (or fixed by ``l2``)."""
    d, m = z.shape[1], y.shape[1]
    w, b, chosen = np.zeros((d, m)), np.zeros(m), []
    grid = (float(hyper["l2"]),) if hyper.get("l2") is not None else L2_GRID
    for j in range(m):
        rows = np.flatnonzero(~np.isnan(y[:, j]))
        zj, yj = z[rows], y[rows, j]
        best = grid[0]
        if len(grid) > 1 and len(rows) >= 20:
            # small data: 3-fold inner cross-validation (one 10 % split is too noisy to pick by); large: one split
            order = rng.permutation(len(rows))
            splits = [order[k::3] for k in range(3)] if len(rows) < 3000 else [order[: max(1, len(rows) // 10)]]
            totals = dict.fromkeys(grid, 0.0)
            for val in splits:
                train = np.setdiff1d(np.arange(len(rows)), val)
                warm = None
                for lam in sorted(grid, reverse=True):  # strongest penalty first, each fit warm-starting the next
                    wj, bj = _head(zj[train], yj[train], lam, warm)
                    warm = np.append(wj, bj)
                    totals[lam] += _log_loss(zj[val], yj[val], wj, bj) * len(val)
            best = min(grid, key=lambda lam: (totals[lam], -lam))
        w[:, j], b[j] = _head(zj, yj, best)
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
            params, trace = _fit_head(z, y, hyper, rng)
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

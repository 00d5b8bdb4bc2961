"""A small MLP over the embedding plus text features: one hidden ReLU layer, one sigmoid output per model.

Why beside the logistic router: a hidden layer can learn interactions (say, "long *and* full of
numbers") a linear read-out cannot; with a few thousand prompts it also overfits sooner, which the
L2 penalty, mini-batches and early stopping on an inner split hold back. Same inputs and file layout
as :mod:`podium.routing.learned.logistic`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from podium.routing.learned.common import Network
from podium.routing.learned.contract import Floats
from podium.routing.learned.logistic import DenseRouter


class _Mlp(Network):
    def forward(self, params: Mapping[str, Floats], z: Floats) -> tuple[Floats, Any]:
        pre = z @ params["w1"] + params["b1"]
        h = np.maximum(pre, 0.0)
        return h @ params["w2"] + params["b2"], (z, pre, h)

    def backward(self, params: Mapping[str, Floats], cache: Any, dlogits: Floats) -> dict[str, Floats]:
        z, pre, h = cache
        dh = (dlogits @ params["w2"].T) * (pre > 0)
        return {"w2": h.T @ dlogits, "b2": dlogits.sum(0), "w1": z.T @ dh, "b1": dh.sum(0)}


class MlpRouter(DenseRouter):
    kind = "mlp"
    net: ClassVar[Network] = _Mlp()
    shapes: ClassVar[dict[str, tuple[str, ...]]] = {"w1": ("d", "h"), "b1": ("h",), "w2": ("h", "m"), "b2": ("m",)}
    decay: ClassVar[tuple[str, ...]] = ("w1", "w2")
    defaults: ClassVar[dict[str, Any]] = {"text": True, "hidden": 64, "l2": 0.1, "lr": 2e-3, "epochs": 80,
                                          "batch": 256, "patience": 6, "seed": 0}

    @classmethod
    def _init(cls, d: int, m: int, hyper: Mapping[str, Any], rng: np.random.Generator, base: Floats
              ) -> dict[str, Floats]:
        h = int(hyper["hidden"])
        if h < 1:
            raise ValueError("the mlp needs hidden >= 1")
        return {"w1": rng.normal(0, np.sqrt(2 / d), (d, h)), "b1": np.zeros(h),
                "w2": rng.normal(0, np.sqrt(1 / h) * 0.1, (h, m)), "b2": np.log(base / (1 - base))}

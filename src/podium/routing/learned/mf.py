"""Matrix factorisation over (prompt, model), as RouteLLM's MF router: a prompt's embedding is projected
to a small latent space, each model has a learned latent vector, and their product scores the pair.

``logit(prompt, model) = (P·x) · v_model + b_model``: the projection ``P`` (384 → ``rank``) is shared
by every model, so what is learned about one model's successes shapes the space all are scored in
(RouteLLM trains it on pairwise wins; here on each model's observed outcomes, NaN = unobserved, which
is what a ledger gives). Embedding only, no text features, as RouteLLM's. Adam, L2, early stopping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from podium.routing.learned.common import Network
from podium.routing.learned.contract import Floats
from podium.routing.learned.logistic import DenseRouter


class _Bilinear(Network):
    def forward(self, params: Mapping[str, Floats], z: Floats) -> tuple[Floats, Any]:
        u = z @ params["projection"]
        return u @ params["models"].T + params["bias"], (z, u)

    def backward(self, params: Mapping[str, Floats], cache: Any, dlogits: Floats) -> dict[str, Floats]:
        z, u = cache
        du = dlogits @ params["models"]
        return {"projection": z.T @ du, "models": dlogits.T @ u, "bias": dlogits.sum(0)}


class MfRouter(DenseRouter):
    kind = "mf"
    net: ClassVar[Network] = _Bilinear()
    shapes: ClassVar[dict[str, tuple[str, ...]]] = {"projection": ("d", "r"), "models": ("m", "r"), "bias": ("m",)}
    decay: ClassVar[tuple[str, ...]] = ("projection", "models")
    defaults: ClassVar[dict[str, Any]] = {"text": False, "rank": 16, "l2": 0.1, "lr": 5e-3, "epochs": 300,
                                          "batch": 1 << 30, "patience": 15, "seed": 0}

    @classmethod
    def _init(cls, d: int, m: int, hyper: Mapping[str, Any], rng: np.random.Generator, base: Floats
              ) -> dict[str, Floats]:
        r = int(hyper["rank"])
        if r < 1:
            raise ValueError("mf needs rank >= 1")
        return {"projection": rng.normal(0, 1 / np.sqrt(d), (d, r)), "models": rng.normal(0, 0.1, (m, r)),
                "bias": np.log(base / (1 - base))}

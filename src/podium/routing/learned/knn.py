"""k nearest neighbours over prompt embeddings: a model's chance on a prompt is how it did on the most
similar training prompts.

Why it suits routing: which model succeeds depends mostly on what kind of task a prompt is (an MMLU
subject, a word problem, a code fix), and MiniLM puts prompts of one kind close together. The chance
is a similarity-weighted mean of the ``k`` nearest outcomes (cosine; weight ``max(cos, 0) ** power``,
``power`` 0 = uniform), shrunk towards the model's overall success rate by ``prior`` pseudo-prompts so
that a few neighbours never give 0 or 1. Unobserved outcomes (NaN, e.g. from a ledger) count for
neither the sum nor the weight of that model. The file keeps the training vectors and outcomes (about
1.5 KB per prompt) and a fingerprint per prompt — never its text — which is what an explanation names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from podium.routing.learned.common import (
    DIMENSIONS,
    Learner,
    check_embeddings,
    check_outcomes,
    need,
    prompt_id,
    unit_rows,
)
from podium.routing.learned.contract import Floats, Vectors

_CHUNK = 1024


class KnnRouter(Learner):
    kind = "knn"

    def __init__(self, models: Sequence[str], vectors: NDArray[np.float32], outcomes: Floats, ids: NDArray[np.int64],
                 *, k: int = 40, power: float = 2.0, prior: float = 2.0, **kw: Any) -> None:
        super().__init__(models, **kw)
        self.vectors, self.outcomes, self.ids = vectors, outcomes, ids
        self.k, self.power, self.prior = int(k), float(power), float(prior)
        seen = ~np.isnan(outcomes)
        self._y = np.where(seen, outcomes, 0.0)
        self._seen = seen.astype(np.float64)
        self._base = self._y.sum(0) / np.maximum(self._seen.sum(0), 1.0)

    @classmethod
    def fit(cls, embeddings: Vectors, outcomes: Floats, models: Sequence[str], prompts: Sequence[str] | None = None,
            *, k: int = 40, power: float = 2.0, prior: float = 2.0, **kw: Any) -> KnnRouter:
        x = check_embeddings(embeddings)
        y = check_outcomes(outcomes, len(x), models)
        if k < 1 or power < 0 or prior < 0:
            raise ValueError("knn needs k >= 1, power >= 0 and prior >= 0")
        ids = np.array([prompt_id(p) for p in prompts] if prompts is not None else np.arange(len(x)), dtype=np.int64)
        return cls(models, unit_rows(x), y, ids, k=k, power=power, prior=prior, **kw)

    def _neighbours(self, x: NDArray[np.float32]) -> tuple[NDArray[np.int64], Floats]:
        """Indices and cosines of each row's ``k`` nearest training prompts, nearest first."""
        k = min(self.k, len(self.vectors))
        sims = unit_rows(x) @ self.vectors.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        near = np.take_along_axis(sims, top, 1)
        order = np.argsort(-near, axis=1, kind="stable")
        return np.take_along_axis(top, order, 1), np.take_along_axis(near, order, 1).astype(np.float64)

    def predict(self, embeddings: Vectors, prompts: Sequence[str] | None = None) -> Floats:
        x = check_embeddings(embeddings)
        out = np.empty((len(x), len(self.models)), dtype=np.float64)
        for start in range(0, len(x), _CHUNK):
            idx, sims = self._neighbours(x[start:start + _CHUNK])
            w = np.maximum(sims, 0.0) ** self.power if self.power > 0 else np.ones_like(sims)
            seen = self._seen[idx]  # (rows, k, m)
            num = np.einsum("rk,rkm->rm", w, self._y[idx]) + self.prior * self._base
            den = np.einsum("rk,rkm->rm", w, seen) + self.prior
            out[start:start + _CHUNK] = num / np.maximum(den, 1e-12)
        return np.clip(out, 0.0, 1.0)

    def explain(self, embedding: Vectors, prompt: str | None = None) -> str:
        x = check_embeddings(embedding)[:1]
        idx, sims = self._neighbours(x)
        chances = self.predict(x)[0]
        shown = []
        for i, s in zip(idx[0][:5], sims[0][:5], strict=True):
            outcomes = "/".join("?" if np.isnan(v) else f"{v:.0f}" if v in (0, 1) else f"{v:.2f}"
                                for v in self.outcomes[i])
            shown.append(f"#{i} [{int(self.ids[i]) & 0xFFFFFFFF:08x}] cos {s:.2f} → {outcomes}")
        ranked = ", ".join(f"{m} {p:.2f}" for m, p in sorted(zip(self.models, chances, strict=True),
                                                              key=lambda kv: -kv[1]))
        return (f"knn: {min(self.k, len(self.vectors))} nearest of {len(self.vectors)} training prompts, closest "
                f"{'; '.join(shown)} (outcomes {'/'.join(self.models)}); P(success) {ranked}")

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "power": self.power, "prior": self.prior}

    def arrays(self) -> dict[str, NDArray[Any]]:
        return {"vectors": self.vectors, "outcomes": self.outcomes, "ids": self.ids}

    @classmethod
    def restore(cls, models: Sequence[str], params: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]],
                **kw: Any) -> KnnRouter:
        vectors = need(arrays, "vectors", (-1, DIMENSIONS))
        n, m = len(vectors), len(models)
        if n == 0:
            raise ValueError("array 'vectors' is empty")
        outcomes = np.asarray(arrays.get("outcomes"))
        if outcomes.dtype.kind != "f" or outcomes.shape != (n, m):
            raise ValueError(f"array 'outcomes' must be floats of shape {(n, m)}")
        if np.any(np.isinf(outcomes)) or np.any((outcomes < 0) | (outcomes > 1)):
            raise ValueError("array 'outcomes' must hold values in [0, 1] (NaN: unobserved)")
        for j, model in enumerate(models):
            if np.isnan(outcomes[:, j]).all():
                raise ValueError(f"array 'outcomes' has no observed outcome for {model}: nothing was learned")
        ids = need(arrays, "ids", (n,), "i")
        k, power, prior = int(params["k"]), float(params["power"]), float(params["prior"])
        if k < 1 or not power >= 0 or not prior >= 0:
            raise ValueError("parameters k >= 1, power >= 0 and prior >= 0 are required")
        return cls(models, vectors.astype(np.float32), outcomes.astype(np.float64), ids.astype(np.int64), k=k,
                   power=power, prior=prior, **kw)

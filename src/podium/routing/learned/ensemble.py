"""Several learners averaged: each model's chance is the mean of the parts' chances.

Why: kNN and the logistic read-out err differently (kNN is local and noisy where training prompts are
sparse, the linear model is smooth and misses local detail), so their mean usually ranks prompts
better than either. The file holds every part's arrays under ``part<i>/`` and their kinds and
parameters in ``params.parts``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from podium.routing.learned.common import Learner
from podium.routing.learned.contract import Floats, Vectors


class EnsembleRouter(Learner):
    kind = "ensemble"

    def __init__(self, models: Sequence[str], parts: Sequence[Learner], **kw: Any) -> None:
        super().__init__(models, **kw)
        if not parts:
            raise ValueError("an ensemble needs at least one part")
        self.parts = list(parts)
        self.uses_text = any(p.uses_text for p in self.parts)

    def predict(self, embeddings: Vectors, prompts: Sequence[str] | None = None) -> Floats:
        return np.asarray(np.mean([p.predict(embeddings, prompts if p.uses_text else None) for p in self.parts],
                                  axis=0), dtype=np.float64)

    def explain(self, embedding: Vectors, prompt: str | None = None) -> str:
        ranked = super().explain(embedding, prompt)
        return ranked.replace("ensemble:", f"ensemble of {'+'.join(p.kind for p in self.parts)}:", 1)

    def params(self) -> dict[str, Any]:
        return {"parts": [{"kind": p.kind, "params": p.params()} for p in self.parts]}

    def arrays(self) -> dict[str, NDArray[Any]]:
        return {f"part{i}/{k}": v for i, p in enumerate(self.parts) for k, v in p.arrays().items()}

    @classmethod
    def restore(cls, models: Sequence[str], params: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]],
                **kw: Any) -> EnsembleRouter:
        from podium.routing.learned.files import kinds

        specs = params["parts"]
        if not isinstance(specs, list) or not specs or len(specs) > 8:
            raise ValueError("'params.parts' must list one to eight learners")
        known = kinds()
        parts = []
        for i, spec in enumerate(specs):
            if not isinstance(spec, dict) or spec.get("kind") not in known or spec["kind"] == cls.kind \
                    or not isinstance(spec.get("params"), dict):
                raise ValueError(f"ensemble part {i} is not a known learner")
            prefix = f"part{i}/"
            mine = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            parts.append(known[spec["kind"]].restore(models, spec["params"], mine))
        return cls(models, parts, **kw)

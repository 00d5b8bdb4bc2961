"""What every offline learner shares: cheap text features, label handling, and the save/restore shape.

Why a small base class: a learner is fitted from ``(embeddings, outcomes, models)`` and must later be
rebuilt from a router file holding only JSON parameters and numeric arrays (never pickle). Each
learner therefore says which hyper-parameters it has (:meth:`Learner.params`), which arrays it keeps
(:meth:`Learner.arrays`), and how to check and rebuild itself from them (:meth:`Learner.restore`),
and :mod:`podium.routing.learned.files` does the rest.

Outcomes are an ``(n, m)`` array of qualities in [0, 1] with NaN for "not observed": an eval dataset
knows every model's outcome on every prompt, a ledger knows only the model that answered, and every
learner fits on whatever is observed.

Text features (:func:`text_features`) are the few things an embedding blurs — length, digits, code,
math — computed from the prompt text at prediction time and never stored. Learners that use them say
so (``uses_text``) and then need the prompt text beside its embedding; the others ignore it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from podium.routing.learned.contract import Floats, Vectors

DIMENSIONS = 384  # all-MiniLM-L6-v2
EMBEDDER = "all-minilm-l6-v2"

FEATURES = ("log_chars", "log_words", "log_lines", "digit_share", "log_numbers", "math_share",
            "code_markers", "latex", "question_marks", "options", "log_sentences", "log_distinct_numbers",
            "log_largest_number", "decimals", "percent", "fractions")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
_CODE = re.compile(r"```|\bdef |\breturn\b|\bimport |#include|\bfunction\b|[{};]\s*$|==|!=|->|=>", re.M)
_OPTIONS = re.compile(r"^\s*\(?[A-Da-d][.)]\s", re.M)
_SENTENCE = re.compile(r"[.!?](?:\s|$)")
_FRACTION = re.compile(r"\d\s*/\s*\d|\bhalf\b|\bthird\b|\bquarter\b", re.I)


def text_features(prompts: Sequence[str]) -> Floats:
    """``(n, len(FEATURES))`` raw features of each prompt text (standardised by the learner)."""
    out = np.zeros((len(prompts), len(FEATURES)), dtype=np.float64)
    for i, text in enumerate(prompts):
        chars = max(len(text), 1)
        numbers = _NUMBER.findall(text)
        values = [float(n.replace(",", "")) for n in numbers if n.replace(",", "").replace(".", "", 1).isdigit()]
        out[i] = (np.log1p(len(text)), np.log1p(len(text.split())), np.log1p(text.count("\n")),
                  sum(c.isdigit() for c in text) / chars, np.log1p(len(_NUMBER.findall(text))),
                  sum(c in "+-*/=^<>%" for c in text) / chars, np.log1p(len(_CODE.findall(text))),
                  float("\\" in text or "$" in text), np.log1p(text.count("?")),
                  np.log1p(len(_OPTIONS.findall(text))), np.log1p(len(_SENTENCE.findall(text))),
                  np.log1p(len(set(numbers))), np.log1p(np.log1p(max(values, default=0.0))),
                  float(any("." in n for n in numbers)), float("%" in text or "percent" in text.lower()),
                  float(bool(_FRACTION.search(text))))
    return out


def prompt_id(prompt: str) -> int:
    """A 63-bit fingerprint of a training prompt: what an explanation names instead of its text."""
    return int.from_bytes(hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).digest()[:8], "little") >> 1


def unit_rows(x: NDArray[Any]) -> NDArray[np.float32]:
    """Rows scaled to length 1 (zero rows stay zero), float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def check_embeddings(embeddings: Vectors) -> NDArray[np.float32]:
    """A 2-D (n, 384) float array (one vector alone is accepted as one row)."""
    x = np.asarray(embeddings, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != DIMENSIONS:
        raise ValueError(f"expected (n, {DIMENSIONS}) embeddings, got shape {x.shape}")
    return x


def check_outcomes(outcomes: NDArray[Any], n: int, models: Sequence[str]) -> Floats:
    """``(n, m)`` qualities in [0, 1] or NaN (unobserved), at least one observed per model."""
    y = np.asarray(outcomes, dtype=np.float64)
    if y.shape != (n, len(models)):
        raise ValueError(f"expected outcomes of shape {(n, len(models))}, got {y.shape}")
    if len(models) < 2 or len(set(models)) != len(models):
        raise ValueError(f"a learned router needs two or more distinct models, got {list(models)}")
    seen = ~np.isnan(y)
    if np.any((y[seen] < 0) | (y[seen] > 1)):
        raise ValueError("outcomes must lie in [0, 1]")
    for j, model in enumerate(models):
        if not seen[:, j].any():
            raise ValueError(f"no observed outcome for {model}")
    return y


def sigmoid(z: NDArray[Any]) -> Floats:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * np.asarray(z, dtype=np.float64))))


def inner_split(n: int, share: float, rng: np.random.Generator) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Training and early-stopping rows: ``share`` of the rows held out (at least one, if n > 1)."""
    order = rng.permutation(n)
    held = max(1, round(n * share)) if n > 1 else 0
    return np.sort(order[held:]), np.sort(order[:held])


class Adam:
    """Plain Adam over a dict of numpy arrays (updated in place)."""

    def __init__(self, params: Mapping[str, Floats], lr: float) -> None:
        self.lr, self.t = lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, params: dict[str, Floats], grads: Mapping[str, Floats]) -> None:
        self.t += 1
        for k, g in grads.items():
            self.m[k] = 0.9 * self.m[k] + 0.1 * g
            self.v[k] = 0.999 * self.v[k] + 0.001 * g * g
            m_hat = self.m[k] / (1 - 0.9 ** self.t)
            v_hat = self.v[k] / (1 - 0.999 ** self.t)
            params[k] -= self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)


class Learner:
    """Base of the offline learners: models, default knob, per-model costs and a training summary."""

    kind: ClassVar[str] = ""
    uses_text: bool = False

    def __init__(self, models: Sequence[str], *, knob: float = 0.9, costs: Mapping[str, float] | None = None,
                 info: Mapping[str, Any] | None = None) -> None:
        self.models = tuple(models)
        self.knob = float(knob)
        self.costs = dict(costs or {})
        self.info: dict[str, Any] = dict(info or {})

    # --- what a subclass provides -------------------------------------------------------------------
    @classmethod
    def fit(cls, embeddings: Vectors, outcomes: Floats, models: Sequence[str], prompts: Sequence[str] | None = None,
            **kw: Any) -> Learner:
        """Fit on ``(n, 384)`` embeddings and ``(n, m)`` outcomes (NaN: unobserved); ``kw``: hyper-parameters,
        then ``knob``, ``costs`` and ``info`` for the constructor."""
        raise NotImplementedError

    def predict(self, embeddings: Vectors, prompts: Sequence[str] | None = None) -> Floats:
        raise NotImplementedError

    def explain(self, embedding: Vectors, prompt: str | None = None) -> str:
        chances = self.predict(check_embeddings(embedding), None if prompt is None else [prompt])[0]
        ranked = ", ".join(f"{m} {p:.2f}" for m, p in sorted(zip(self.models, chances, strict=True),
                                                              key=lambda kv: -kv[1]))
        return f"{self.kind}: predicted P(success) {ranked}"

    def params(self) -> dict[str, Any]:
        return {}

    def arrays(self) -> dict[str, NDArray[Any]]:
        raise NotImplementedError

    @classmethod
    def restore(cls, models: Sequence[str], params: Mapping[str, Any], arrays: Mapping[str, NDArray[Any]],
                **kw: Any) -> Learner:
        raise NotImplementedError

    # --- shared helpers -----------------------------------------------------------------------------
    def _text(self, prompts: Sequence[str] | None, n: int) -> Floats:
        if prompts is None:
            raise ValueError(f"the {self.kind} router reads the prompt text as well as its embedding")
        if len(prompts) != n:
            raise ValueError(f"{len(prompts)} prompts for {n} embeddings")
        return text_features(prompts)


def need(arrays: Mapping[str, NDArray[Any]], name: str, shape: tuple[int, ...], kind: str = "f") -> NDArray[Any]:
    """``arrays[name]``, checked: present, numeric of ``kind`` ("f" float, "i" integer), ``shape`` (-1: any
    size) and finite; anything else is a ValueError naming the array."""
    if name not in arrays:
        raise ValueError(f"array {name!r} is missing")
    a = np.asarray(arrays[name])
    if a.dtype.kind not in ("iu" if kind == "i" else "f"):
        raise ValueError(f"array {name!r} has dtype {a.dtype}, expected {'integers' if kind == 'i' else 'floats'}")
    if a.ndim != len(shape) or any(w != -1 and g != w for g, w in zip(a.shape, shape, strict=True)):
        raise ValueError(f"array {name!r} has shape {a.shape}, expected {shape}")
    if kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"array {name!r} holds NaN or infinite values")
    return a


def masked_bce(logits: Floats, y: Floats, seen: Floats) -> tuple[float, Floats]:
    """Mean binary cross-entropy over observed outcomes, and its gradient with respect to the logits."""
    count = max(float(seen.sum()), 1.0)
    p = sigmoid(logits)
    eps = 1e-12
    loss = -float(np.sum(seen * (y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))) / count
    return loss, (p - y) * seen / count


class Network:
    """A differentiable learner body: ``forward`` gives logits (n, m) and a cache, ``backward`` the gradients."""

    def forward(self, params: Mapping[str, Floats], z: Floats) -> tuple[Floats, Any]:
        raise NotImplementedError

    def backward(self, params: Mapping[str, Floats], cache: Any, dlogits: Floats) -> dict[str, Floats]:
        raise NotImplementedError


def fit_gd(net: Network, params: dict[str, Floats], z: Floats, outcomes: Floats, *, decay: Sequence[str],
           l2: float, lr: float, epochs: int, batch: int, patience: int, val_share: float = 0.1,
           seed: int = 0) -> tuple[dict[str, Floats], dict[str, Any]]:
    """Adam on masked cross-entropy + ``l2`` on the ``decay`` arrays, stopping when the loss on an inner
    ``val_share`` split has not improved for ``patience`` epochs; returns the best epoch's parameters."""
    rng = np.random.default_rng(seed)
    seen = (~np.isnan(outcomes)).astype(np.float64)
    y = np.where(seen > 0, outcomes, 0.0)
    train, val = inner_split(len(z), val_share, rng)
    if len(val) == 0:
        train, val = np.arange(len(z)), np.arange(len(z))
    opt = Adam(params, lr)
    best, best_loss, since, epoch = {k: v.copy() for k, v in params.items()}, np.inf, 0, 0
    for epoch in range(1, epochs + 1):  # noqa: B007
        order = rng.permutation(train)
        for start in range(0, len(order), batch):
            rows = order[start:start + batch]
            logits, cache = net.forward(params, z[rows])
            _, dlogits = masked_bce(logits, y[rows], seen[rows])
            grads = net.backward(params, cache, dlogits)
            for k in decay:
                grads[k] = grads[k] + l2 * params[k]
            opt.step(params, grads)
        val_loss, _ = masked_bce(net.forward(params, z[val])[0], y[val], seen[val])
        if val_loss < best_loss - 1e-6:
            best, best_loss, since = {k: v.copy() for k, v in params.items()}, val_loss, 0
        else:
            since += 1
            if since >= patience:
                break
    return best, {"epochs": epoch, "inner_val_loss": round(float(best_loss), 5)}


class Standardiser:
    """Feature centring and scaling learned on the training rows (kept in the router file)."""

    def __init__(self, mean: Floats, scale: Floats) -> None:
        self.mean, self.scale = mean, scale

    @classmethod
    def fit(cls, f: Floats) -> Standardiser:
        scale = f.std(0)
        return cls(f.mean(0), np.where(scale > 1e-9, scale, 1.0))

    def __call__(self, f: Floats) -> Floats:
        return np.asarray((f - self.mean) / self.scale)

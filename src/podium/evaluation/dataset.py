"""The eval dataset: prompts, and for each model whether it answered right and what it cost.

Why one in-memory shape: every metric needs only, per prompt, each model's quality (0..1; RouteLLM's
data is True/False) and cost, so loaders of any source reduce to :class:`EvalDataset`. RouteLLM's
metrics compare two models, the *strong* (highest mean quality) and the *weak* (lowest); those two are
always at hand as ``strong_quality``/``weak_quality``/… With more than two models, ``models``,
``quality`` and ``cost`` hold every model's columns (strongest first), which the learned routers'
pick-at-a-knob report uses; with two they are left empty and :meth:`EvalDataset.quality_matrix` builds
the two columns.

Podium's documented file format is JSON Lines, one prompt per line::

    {"prompt": "What is 2+2?", "models": {"gpt-4o": {"quality": 1, "cost": 0.0021},
                                          "llama-3-8b": {"quality": 0, "cost": 0.0001}}}

Two or more models, the same on every line; ``quality`` is a number in [0, 1] (or true/false), ``cost``
is USD (>= 0) for answering that prompt. The strong model is the one with the highest mean quality,
the weak one the lowest (ties: by name).

RouteLLM's evaluation folders (``routellm/mmlu`` and ``routellm/gsm8k``: CSVs with a True/False column
per model, plus ``contaminated_prompts.jsonl``) load as they are. Contaminated prompts are dropped exactly
as RouteLLM's ``benchmarks.py`` does: every row whose prompt equals some ``eval_prompt`` of the JSONL.
Their CSVs carry no cost, so a prompt's cost is estimated from its length (``approximate_tokens``) at the
RouteLLM paper's blended prices, $24.7 per million tokens for GPT-4 and $0.24 for Mixtral-8x7B; the
ratio, not the scale, is what the cost axis and AIQ depend on.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from podium.catalogue import approximate_tokens
from podium.errors import ConfigError

Floats = NDArray[np.float64]

ROUTELLM_STRONG = "gpt-4-1106-preview"
ROUTELLM_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
# USD per million tokens, from the RouteLLM paper (Ong et al. 2024, section 5).
ROUTELLM_PRICES = {ROUTELLM_STRONG: 24.7, ROUTELLM_WEAK: 0.24}


@dataclass(frozen=True)
class EvalDataset:
    """Per-prompt quality and cost of a strong and a weak model (arrays aligned with ``prompts``)."""

    name: str
    prompts: tuple[str, ...]
    strong: str
    weak: str
    strong_quality: Floats
    weak_quality: Floats
    strong_cost: Floats
    weak_cost: Floats
    dropped: int = 0  # contaminated prompts removed while loading
    # every model, strongest first, with (n, len(models)) quality and cost; empty when only strong and weak
    models: tuple[str, ...] = ()
    quality: Floats | None = None
    cost: Floats | None = None

    def __len__(self) -> int:
        return len(self.prompts)

    @property
    def all_models(self) -> tuple[str, ...]:
        """Every model of the dataset (the columns of :meth:`quality_matrix`)."""
        return self.models or (self.strong, self.weak)

    def quality_matrix(self) -> Floats:
        """``(n, len(all_models))`` quality per prompt and model."""
        return self.quality if self.quality is not None else np.column_stack([self.strong_quality, self.weak_quality])

    def cost_matrix(self) -> Floats:
        """``(n, len(all_models))`` cost (USD) per prompt and model."""
        return self.cost if self.cost is not None else np.column_stack([self.strong_cost, self.weak_cost])

    def subset(self, indices: Sequence[int] | NDArray[np.int64]) -> EvalDataset:
        """The rows at ``indices``: how a router sees only its training folds."""
        idx = np.asarray(indices, dtype=np.int64)
        return EvalDataset(self.name, tuple(self.prompts[i] for i in idx), self.strong, self.weak,
                           self.strong_quality[idx], self.weak_quality[idx], self.strong_cost[idx],
                           self.weak_cost[idx], self.dropped, self.models,
                           None if self.quality is None else self.quality[idx],
                           None if self.cost is None else self.cost[idx])

    def accuracy(self, model: str) -> float:
        """Mean quality in percent, as RouteLLM's ``get_model_accuracy`` reports it."""
        if model == self.strong:
            return float(self.strong_quality.mean() * 100)
        if model == self.weak:
            return float(self.weak_quality.mean() * 100)
        return float(self.quality_matrix()[:, self.all_models.index(model)].mean() * 100)


def load_dataset(path: str | Path) -> EvalDataset:
    """A Podium JSONL file, or one of RouteLLM's evaluation folders; anything else is a ConfigError."""
    p = Path(path)
    if p.is_dir():
        if (p / "responses").is_dir() and (p / "contaminated_prompts.jsonl").is_file():
            return load_routellm_mmlu(p)
        if (p / "gsm8k_responses.csv").is_file():
            return load_routellm_gsm8k(p)
        if (p / "mmlu").is_dir() or (p / "gsm8k").is_dir():
            raise ConfigError(f"{p} holds several benchmarks: give one of them, e.g. {p / 'gsm8k'}")
        raise ConfigError(f"{p} is not an eval dataset: expected a .jsonl file or a RouteLLM mmlu/gsm8k folder")
    if not p.is_file():
        raise ConfigError(f"no such dataset: {p}")
    return load_jsonl(p)


def load_jsonl(path: Path) -> EvalDataset:
    """Podium's format (see the module docstring); every malformed line is a ConfigError naming it."""
    prompts: list[str] = []
    rows: list[dict[str, tuple[float, float]]] = []
    names: tuple[str, ...] | None = None
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
                models = record["models"]
                prompt = record["prompt"]
                if not isinstance(prompt, str) or not isinstance(models, dict):
                    raise TypeError
                row = {str(m): (_quality(v["quality"]), _cost(v["cost"])) for m, v in models.items()}
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(f"{where}: expected {{\"prompt\": str, \"models\": {{model: {{\"quality\": 0..1, "
                                  f"\"cost\": USD}}}}}} ({type(exc).__name__})") from None
            if len(row) < 2:
                raise ConfigError(f"{where}: two or more models per prompt are needed, found {len(row)}")
            if names is None:
                names = tuple(sorted(row))
            elif tuple(sorted(row)) != names:
                raise ConfigError(f"{where}: models {sorted(row)} differ from the first line's {list(names)}")
            prompts.append(prompt)
            rows.append(row)
    if names is None:
        raise ConfigError(f"{path}: no prompts")
    quality = {m: np.array([r[m][0] for r in rows]) for m in names}
    cost = {m: np.array([r[m][1] for r in rows]) for m in names}
    ranked = sorted(names, key=lambda m: -float(quality[m].mean()))
    strong, weak = ranked[0], ranked[-1]
    extra: tuple[tuple[str, ...], Floats | None, Floats | None] = ((), None, None)
    if len(ranked) > 2:
        extra = (tuple(ranked), np.column_stack([quality[m] for m in ranked]),
                 np.column_stack([cost[m] for m in ranked]))
    return EvalDataset(path.stem, tuple(prompts), strong, weak, quality[strong], quality[weak],
                       cost[strong], cost[weak], 0, *extra)


def _quality(value: object) -> float:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and 0.0 <= value <= 1.0:
        return float(value)
    raise ValueError("quality")


def _cost(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0 and math.isfinite(value):
        return float(value)
    raise ValueError("cost")


def load_routellm_mmlu(folder: Path) -> EvalDataset:
    """RouteLLM's 57 MMLU subject files, concatenated, minus contaminated prompts."""
    files = sorted((folder / "responses").glob("mmlu_*.csv"))
    if not files:
        raise ConfigError(f"{folder / 'responses'}: no mmlu_*.csv files")
    rows = [row for f in files for row in _read_csv(f)]
    return _routellm("mmlu", rows, folder / "contaminated_prompts.jsonl")


def load_routellm_gsm8k(folder: Path) -> EvalDataset:
    """RouteLLM's GSM8K responses, minus contaminated prompts."""
    return _routellm("gsm8k", _read_csv(folder / "gsm8k_responses.csv"), folder / "contaminated_prompts.jsonl")


def _read_csv(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # GSM8K's response columns exceed the 128 KiB default
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    if rows and not {"prompt", ROUTELLM_STRONG, ROUTELLM_WEAK} <= rows[0].keys():
        raise ConfigError(f"{path}: expected columns prompt, {ROUTELLM_WEAK}, {ROUTELLM_STRONG}")
    return rows


def _routellm(name: str, rows: list[dict[str, str]], contaminated: Path) -> EvalDataset:
    drop: set[str] = set()
    if contaminated.is_file():
        with contaminated.open(encoding="utf-8") as fh:
            drop = {json.loads(line)["eval_prompt"] for line in fh if line.strip()}
    kept = [r for r in rows if r["prompt"] not in drop]
    prompts = tuple(r["prompt"] for r in kept)

    def flags(model: str) -> Floats:
        return np.array([r[model].strip() == "True" for r in kept], dtype=np.float64)

    tokens = np.array([approximate_tokens(p) for p in prompts], dtype=np.float64)
    return EvalDataset(name, prompts, ROUTELLM_STRONG, ROUTELLM_WEAK, flags(ROUTELLM_STRONG), flags(ROUTELLM_WEAK),
                       tokens * ROUTELLM_PRICES[ROUTELLM_STRONG] / 1e6, tokens * ROUTELLM_PRICES[ROUTELLM_WEAK] / 1e6,
                       dropped=len(rows) - len(kept))

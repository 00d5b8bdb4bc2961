"""``podium eval --cascade``: a weak → strong cascade replayed on recorded answers, and its threshold calibrated.

A cascade always asks the weak model, and asks the strong one only when it does not accept the weak
answer. Replayed on a dataset that recorded the weak model's full answer (RouteLLM's GSM8K CSV has a
``<model>_response`` column; a Podium JSONL may give ``"response"`` beside ``quality`` and ``cost``), every
operating point is exact arithmetic on recorded outcomes:

- **strong-call share** — the share of prompts escalated (RouteLLM's "% calls to the strong model");
- **accuracy** — the strong model's outcome where escalated, the weak model's elsewhere;
- **cost** — the weak model's cost on *every* prompt plus the strong model's where escalated: unlike a
  router, a cascade pays for the weak answer it throws away, so at 100 % strong calls it costs more
  than always-strong (by the weak model's cost, about 1 % with RouteLLM's prices).

PGR, APGR and CPT are RouteLLM's, over (strong-call share, accuracy) exactly as ``podium eval`` computes
them for routers; AIQ is RouterBench's over the cascade's own costs, from the all-weak cost to the
cascade's costliest point. "Random at the same cost" is a router that sends a random share p of prompts
to the strong model with p chosen so its mean cost equals the cascade point's, in expectation.

The acceptance signal must be one a live cascade can compute without the gold answer: here the
cross-fitted :class:`~podium.strategies.acceptance.LearnedAcceptance` probability (a logistic
regression over the weak answer's shape, fitted on the other folds), beside a fixed format rule
(accept an explicitly marked whole-number answer) and the oracle (accept exactly the right weak
answers: a bound, not a signal).

**Calibration** (``--target 0.95``): the least-cost threshold whose accuracy is at least 95 % of the
strong model's. Cross-fitted and nested, so no reported figure ever used its own rows: for each fold k,
the other folds are the calibration rows — their acceptance scores come from models fitted without
them (inner folds), the threshold is chosen on them, a model fitted on all of them scores fold k, and
fold k's outcome under that threshold is what is reported. The threshold written for use is the one
chosen the same way on all rows' out-of-fold scores, with the model fitted on every row.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from podium.errors import ConfigError
from podium.evaluation.dataset import ROUTELLM_WEAK, EvalDataset, load_dataset
from podium.evaluation.metrics import CPT_LEVELS, CurvePoint, routellm_thresholds
from podium.evaluation.replay import RouterResult, fold_of, score_points
from podium.evaluation.report import write_outputs
from podium.strategies.acceptance import FEATURES, LearnedAcceptance, features

Floats = NDArray[np.float64]
Mask = NDArray[np.bool_]
L2 = 1.0  # ridge penalty of the acceptance regression (on standardised features)


@dataclass(frozen=True)
class CascadeData:
    """An eval dataset and the weak model's recorded answer to each of its prompts."""

    data: EvalDataset
    replies: tuple[str, ...]


def load_cascade_data(path: str | Path) -> CascadeData:
    """The dataset, and its weak model's answers; a dataset without them is a ConfigError saying what to add."""
    data = load_dataset(path)
    p = Path(path)
    if p.is_dir() and (p / "gsm8k_responses.csv").is_file():
        csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
        with (p / "gsm8k_responses.csv").open(encoding="utf-8", newline="") as fh:
            rows = {r["prompt"]: r.get(f"{ROUTELLM_WEAK}_response") for r in csv.DictReader(fh)}
        replies = [rows.get(prompt) for prompt in data.prompts]
    elif p.is_file():
        by_prompt: dict[str, str | None] = {}
        with p.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    record = json.loads(line)
                    reply = record["models"][data.weak].get("response")
                    by_prompt[record["prompt"]] = reply if isinstance(reply, str) else None
        replies = [by_prompt.get(prompt) for prompt in data.prompts]
    else:
        replies = [None]
    if any(r is None for r in replies):
        raise ConfigError(f"{data.name}: --cascade replays the weak model's recorded answers, and this dataset has "
                          f"none for {data.weak}; give each line's weak model a \"response\": \"<its answer>\" "
                          "(RouteLLM's gsm8k folder has them; its mmlu folder does not)")
    return CascadeData(data, tuple(r or "" for r in replies))


def feature_matrix(cascade: CascadeData) -> Floats:
    """``(n, len(FEATURES))``: the acceptance features of each weak answer."""
    return np.array([features(p, r) for p, r in zip(cascade.data.prompts, cascade.replies, strict=True)],
                    dtype=np.float64).reshape(len(cascade.replies), len(FEATURES))


@dataclass(frozen=True)
class Logistic:
    """A fitted ridge-logistic regression on standardised inputs."""

    mean: Floats
    scale: Floats
    weights: Floats
    bias: float

    def predict(self, x: Floats) -> Floats:
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))), dtype=np.float64)


def fit_logistic(x: Floats, y: Floats, l2: float = L2) -> Logistic:
    """Newton's method on the L2-penalised log-likelihood (the bias is not penalised)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -50, 50)))
        gradient = z.T @ (p - y) + penalty * beta
        hessian = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return Logistic(mean, scale, beta[:-1].copy(), float(beta[-1]))


def out_of_fold(x: Floats, y: Floats, assignment: NDArray[np.int64]) -> Floats:
    """Each row's P(weak right) from a model fitted on the rows of the other folds."""
    scores = np.empty(len(y), dtype=np.float64)
    for k in np.unique(assignment):
        held = assignment == k
        scores[held] = fit_logistic(x[~held], y[~held]).predict(x[held])
    return scores


def point(accept: Mask, data: EvalDataset, threshold: float) -> CurvePoint:
    """The cascade's operating point when it accepts the weak answer on ``accept`` (see the module docstring)."""
    escalate = ~accept
    quality = np.where(escalate, data.strong_quality, data.weak_quality)
    cost = data.weak_cost + np.where(escalate, data.strong_cost, 0.0)
    return CurvePoint(threshold, float(escalate.mean() * 100), float(quality.mean() * 100), float(cost.mean()))


def curve(scores: Floats, data: EvalDataset) -> list[CurvePoint]:
    """RouteLLM's 11 decile thresholds over the acceptance scores: accept where score ≥ threshold (> at the
    top one, so the curve runs from all accepted to all escalated)."""
    edges = routellm_thresholds(scores)
    return [point(scores > t if i == len(edges) - 1 else scores >= t, data, float(t)) for i, t in enumerate(edges)]


def random_at_cost(cost: float, data: EvalDataset) -> float:
    """Expected accuracy (%) of a random router whose expected mean cost is ``cost``."""
    weak_cost, strong_cost = float(data.weak_cost.mean()), float(data.strong_cost.mean())
    share = min(1.0, max(0.0, (cost - weak_cost) / (strong_cost - weak_cost)))
    return data.accuracy(data.weak) + share * (data.accuracy(data.strong) - data.accuracy(data.weak))


def calibrate(scores: Floats, data: EvalDataset, target: float) -> tuple[float, CurvePoint]:
    """The least-cost threshold (accept where score ≥ it) keeping ≥ ``target`` times the strong model's accuracy on
    these rows; ties go to the higher accuracy. ConfigError when no threshold can."""
    need = target * data.accuracy(data.strong)
    best: tuple[float, CurvePoint] | None = None
    top = 0.0
    for t in [*np.unique(scores).tolist(), float("inf")]:
        p = point(scores >= t, data, t)
        top = max(top, p.accuracy)
        if p.accuracy + 1e-9 >= need and (best is None or (p.cost, -p.accuracy) < (best[1].cost, -best[1].accuracy)):
            best = (t, p)
    if best is None:
        raise ConfigError(f"--target {target:g}: no threshold keeps {target:.0%} of the strong model's accuracy "
                          f"({need:.1f} %) on the calibration rows; the best is {top:.1f} %. Lower --target")
    return best


@dataclass(frozen=True)
class Calibration:
    """What ``--target`` chose and what it achieved on rows it never saw."""

    target: float
    threshold: float  # chosen on every row's out-of-fold scores: the one to use
    fold_thresholds: list[float]
    held_out: CurvePoint  # pooled over the folds, each under the threshold chosen without it
    kept: float  # held-out accuracy / the strong model's accuracy
    acceptance: LearnedAcceptance  # fitted on every row, with ``threshold``


def cross_fitted_calibration(x: Floats, data: EvalDataset, target: float, assignment: NDArray[np.int64]) -> Calibration:
    """Nested cross-fitting (module docstring): fold k's figures come from a model and a threshold chosen
    on the other folds only."""
    y = data.weak_quality
    accept = np.zeros(len(y), dtype=bool)
    chosen: list[float] = []
    for k in np.unique(assignment):
        held = assignment == k
        cal = np.flatnonzero(~held)
        inner = out_of_fold(x[cal], y[cal], assignment[cal])
        threshold, _ = calibrate(inner, data.subset(cal), target)
        chosen.append(threshold)
        accept[held] = fit_logistic(x[cal], y[cal]).predict(x[held]) >= threshold
    held_out = point(accept, data, float("nan"))
    threshold, _ = calibrate(out_of_fold(x, y, assignment), data, target)
    model = fit_logistic(x, y)
    usable = min(1.0, threshold)  # inf (escalate everything) is written as 1.0: no probability reaches it
    acceptance = LearnedAcceptance(tuple(model.mean.tolist()), tuple(model.scale.tolist()),
                                   tuple(model.weights.tolist()), model.bias, usable)
    return Calibration(target, threshold, chosen, held_out, held_out.accuracy / data.accuracy(data.strong),
                       acceptance)


Signal = RouterResult  # one acceptance signal's curve and RouteLLM/RouterBench metrics


@dataclass
class CascadeReport:
    data: EvalDataset
    folds: int
    seed: int
    signals: list[Signal] = field(default_factory=list)
    calibration: Calibration | None = None

    def signal(self, name: str) -> Signal:
        return next(s for s in self.signals if s.name == name)


def score_signal(name: str, points: list[CurvePoint], data: EvalDataset) -> Signal:
    # the cascade's cost axis runs from the weak call alone to both calls on every prompt
    return score_points(name, points, data, float(data.weak_cost.mean()),
                        float((data.weak_cost + data.strong_cost).mean()))


def format_rule(x: Floats) -> Floats:
    """1 for an explicitly marked whole-number answer, else 0: a fixed rule, nothing fitted."""
    return (x[:, FEATURES.index("marked")] * x[:, FEATURES.index("integer")]).astype(np.float64)


def replay(cascade: CascadeData, folds: int = 5, seed: int = 0, target: float | None = None,
           extra: dict[str, Callable[[Floats], Floats]] | None = None) -> CascadeReport:
    """Every signal's cross-fitted curve, and the calibration for ``target`` when given. ``extra`` maps a
    name to a function of the feature matrix giving more inputs for a learned signal (benchmarks use it to
    add prompt embeddings)."""
    data = cascade.data
    if folds < 2:
        raise ConfigError(f"--folds must be at least 2, got {folds}")
    if target is not None and not 0 < target <= 2:
        raise ConfigError(f"--target is a share of the strong model's accuracy, e.g. 0.95; got {target:g}")
    if data.accuracy(data.strong) == data.accuracy(data.weak):
        raise ConfigError(f"{data.name}: both models score the same; there is no gap to recover")
    if len(set(data.prompts)) < folds:
        raise ConfigError(f"{data.name}: {len(set(data.prompts))} distinct prompts, fewer than {folds} folds")
    assignment = fold_of(data.prompts, folds, seed)
    x = feature_matrix(cascade)
    report = CascadeReport(data, folds, seed)
    learned = out_of_fold(x, data.weak_quality, assignment)
    report.signals.append(score_signal("learned acceptance", curve(learned, data), data))
    for name, more in (extra or {}).items():
        scores = out_of_fold(np.hstack([x, more(x)]), data.weak_quality, assignment)
        report.signals.append(score_signal(name, curve(scores, data), data))
    rule = format_rule(x)
    report.signals.append(score_signal("format rule", [point(np.ones(len(x), bool), data, 0.0),
                                                       point(rule >= 1, data, 1.0),
                                                       point(np.zeros(len(x), bool), data, 2.0)], data))
    report.signals.append(score_signal("oracle (reads the answers)", curve(data.weak_quality, data), data))
    if target is not None:
        report.calibration = cross_fitted_calibration(x, data, target, assignment)
    return report


def _row(label: str, p: CurvePoint, data: EvalDataset) -> str:
    weak = data.accuracy(data.weak)
    gain = (p.accuracy - weak) / (data.accuracy(data.strong) - weak)
    return (f"| {label} | {p.strong_share:.1f} | {p.accuracy:.1f} | {gain:.2f} | {p.cost * 1e6:.2f} "
            f"| {random_at_cost(p.cost, data):.1f} |")


def markdown(report: CascadeReport) -> str:
    """The replay as Markdown: metrics per signal, the learned signal's curve, and the calibration."""
    data = report.data
    strong, weak = data.accuracy(data.strong), data.accuracy(data.weak)
    lines = [f"Cascade {data.weak} → {data.strong} on {data.name}: {len(data)} prompts ({data.dropped} "
             f"contaminated dropped), {report.folds}-fold cross-fitted, seed {report.seed}. Strong accuracy "
             f"{strong:.1f} %, weak {weak:.1f} %. Cost includes the weak call on every prompt.", "",
             "| acceptance signal | APGR | " + " | ".join(f"CPT({lv}%)" for lv in CPT_LEVELS) + " | AIQ |",
             "|---|---|" + "---|" * len(CPT_LEVELS) + "---|"]
    for s in report.signals:
        lines.append(f"| {s.name} | {s.apgr:.3f} | " + " | ".join(f"{s.cpt[lv]:.1f} %" for lv in CPT_LEVELS)
                     + f" | {s.aiq:.4f} |")
    lines += ["", "Operating points (learned acceptance; threshold = P(weak answer right) needed to accept it):", "",
              "| point | strong calls % | accuracy % | PGR | cost µ$/prompt | random router at the same cost: "
              "accuracy % |", "|---|---|---|---|---|---|"]
    every = np.ones(len(data), dtype=bool)
    lines.append(_row("always weak", point(every, data, 0.0), data))
    for p in report.signal("learned acceptance").points:
        lines.append(_row(f"accept at ≥ {p.threshold:.3f}", p, data))
    always_strong = CurvePoint(0.0, 100.0, strong, float(data.strong_cost.mean()))
    lines.append(_row("always strong (no cascade)", always_strong, data))
    if (c := report.calibration) is not None:
        lines += ["", f"Calibrated for --target {c.target:g} (keep ≥ {c.target:.0%} of the strong model's accuracy "
                      "at the least cost), nested cross-fitting: each fold judged under a threshold chosen on the "
                      "other folds only.", "",
                  f"- thresholds chosen per fold: {', '.join(f'{t:.3f}' for t in c.fold_thresholds)}; on all rows: "
                  f"{c.threshold:.3f}",
                  f"- held out: {c.held_out.strong_share:.1f} % strong calls, accuracy {c.held_out.accuracy:.1f} % "
                  f"= {c.kept:.1%} of strong (target {c.target:.0%}: {'met' if c.kept >= c.target else 'missed'}), "
                  f"cost {c.held_out.cost / float(data.strong_cost.mean()):.1%} of always-strong; a random router at "
                  f"that cost: {random_at_cost(c.held_out.cost, data):.1f} %"]
    return "\n".join(lines) + "\n"


def acceptance_json(calibration: Calibration, data: EvalDataset) -> str:
    """The fitted acceptance and its calibrated threshold, for ``load_acceptance``."""
    return calibration.acceptance.to_json(
        dataset=data.name, weak=data.weak, strong=data.strong, target=calibration.target,
        held_out={"strong_share": calibration.held_out.strong_share, "accuracy": calibration.held_out.accuracy,
                  "kept": calibration.kept})


def run(dataset: str, *, folds: int, seed: int, out: str, target: float | None) -> str:
    """``podium eval DATASET --cascade [--target T]``: replay, write ``<name>.cascade.md`` (and with a target
    ``<name>.cascade.json``, the acceptance ``load_acceptance`` reads) under ``out``; the text to print."""
    cascade = load_cascade_data(dataset)
    report = replay(cascade, folds, seed, target)
    table = markdown(report)
    name = cascade.data.name
    files = {f"{name}.cascade.md": (f"# podium eval --cascade: {name}\n\n{table}", "report")}
    if report.calibration is not None:
        files[f"{name}.cascade.json"] = (acceptance_json(report.calibration, cascade.data), "acceptance file")
    paths = write_outputs(out, files)
    wrote = [str(paths[0])]
    if len(paths) > 1:
        accept = paths[1]
        wrote.append(f"{accept} (Python: Cascade([weak, strong], accept=load_acceptance('{accept}')) from "
                     "podium.strategies.acceptance; podium.yaml: a cascade step's accept: learned with "
                     f"acceptance_file: {accept})")
    return f"{table}\nwrote {' and '.join(wrote)}"

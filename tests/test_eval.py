"""podium eval: RouteLLM's and RouterBench's metrics on hand-computed cases, k-fold hygiene, the RouteLLM
loader on the real files, and the command end to end."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import ArrayLike
from typer.testing import CliRunner

from podium.cli.app import app
from podium.errors import ConfigError
from podium.evaluation.dataset import EvalDataset, load_dataset
from podium.evaluation.metrics import aiq, apgr, cpt, non_decreasing_hull, pgr, replay_curve, routellm_thresholds
from podium.evaluation.replay import cross_fit_scores, evaluate, fold_of, oracle_scores, score_router
from podium.evaluation.routers import LengthRouter, PromptScorer, RandomRouter

ROUTELLM = Path("/work/shared/data/routellm")
needs_data = pytest.mark.skipif(not ROUTELLM.is_dir(), reason="RouteLLM data not present")


def _dataset(strong: ArrayLike, weak: ArrayLike, prompts: Sequence[str] | None = None) -> EvalDataset:
    n = len(np.asarray(strong))
    return EvalDataset("toy", tuple(prompts or [f"prompt {i}" for i in range(n)]), "big", "small",
                       np.array(strong, dtype=float), np.array(weak, dtype=float), np.ones(n), np.zeros(n))


def test_oracle_curve_apgr_and_cpt_by_hand() -> None:
    # Strong always right, weak right on the first half: strong 100 %, weak 50 %. The oracle scores the
    # second half 1: deciles give (100 %, 100), (50 %, 100), (0 %, 50) -> AUC 0.875, APGR 0.75, CPT(50) 25 %.
    d = _dataset([1] * 10, [1] * 5 + [0] * 5)
    points = replay_curve(oracle_scores(d), d.strong_quality, d.weak_quality, d.strong_cost, d.weak_cost)
    assert len(points) == 11 and points[0].strong_share == 100 and points[-1].strong_share == 0
    assert apgr(points, 100, 50) == pytest.approx(0.75)
    assert cpt(points, 100, 50, 50) == pytest.approx(25.0)
    assert cpt(points, 100, 50, 20) == pytest.approx(10.0)
    assert pgr(75, 100, 50) == pytest.approx(0.5)


def test_thresholds_are_qcut_edges() -> None:
    assert routellm_thresholds(np.arange(11.0)).tolist() == pytest.approx(list(range(11)))
    assert routellm_thresholds(np.array([0.0, 1.0]), 4).tolist() == pytest.approx([0, 0.25, 0.5, 0.75, 1])


def test_pgr_and_cpt_edge_cases() -> None:
    # No gap: PGR undefined.
    with pytest.raises(ValueError, match="PGR is undefined"):
        pgr(50, 60, 60)
    # The only prompt that needs the strong model is routed last: accuracy stays at the weak model's 0 %
    # up to 90 % strong calls and reaches 10 % at 100 %, so PGR 80 % needs 90 + 0.8 * 10 = 98 % by interpolation.
    d = _dataset([1] + [0] * 9, [0] * 10)
    worst = -oracle_scores(d)
    points = replay_curve(worst, d.strong_quality, d.weak_quality, d.strong_cost, d.weak_cost)
    assert cpt(points, 10, 0, 80) == pytest.approx(98.0)
    assert apgr(points, 10, 0) == pytest.approx(0.05)  # a triangle over the last tenth
    # Constant scores: everything strong or nothing, a straight line -> APGR 0.5, CPT(50) 50 %.
    d = _dataset([1] * 4 + [0] * 6, [0] * 10)
    flat = replay_curve(np.zeros(10), d.strong_quality, d.weak_quality, d.strong_cost, d.weak_cost)
    assert {p.strong_share for p in flat} == {0.0, 100.0}
    assert apgr(flat, 40, 0) == pytest.approx(0.5)
    assert cpt(flat, 40, 0, 50) == pytest.approx(50.0)


def test_random_router_apgr_near_half() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    d = _dataset(rng.random(n) < 0.8, rng.random(n) < 0.6)
    result = score_router("random", rng.random(n), d, 0.0, 1.0)
    assert result.apgr == pytest.approx(0.5, abs=0.03)
    assert result.cpt[50] == pytest.approx(50, abs=3)


def test_aiq_on_known_curves() -> None:
    # The middle point lies under the chord: the hull is the line from 0.5 to 0.9 -> average 0.7.
    assert aiq(np.array([0, 0.5, 1]), np.array([0.5, 0.6, 0.9])) == pytest.approx(0.7)
    # Quality falls after 0.5: the hull stays flat at 0.9 -> 0.25*1.4 + 0.5*0.9 = 0.8.
    assert aiq(np.array([0, 0.5, 1]), np.array([0.5, 0.9, 0.8])) == pytest.approx(0.8)
    assert non_decreasing_hull(np.array([0, 0.5, 1]), np.array([0.5, 0.9, 0.8]))[:, 1].tolist() == [0.5, 0.9, 0.9]
    # Extended flat to a larger common cost: 0.5 over [0, 1], then 1.0 over [1, 2] -> (0.75 + 1) / 2.
    assert aiq(np.array([0, 1]), np.array([0.5, 1.0]), 0.0, 2.0) == pytest.approx(0.875)


class _Memoriser:
    """Knows the right answer for every prompt it was fitted on; guesses 0.5 elsewhere."""

    name = "memoriser"

    def fit(self, train: EvalDataset) -> PromptScorer:
        seen = dict(zip(train.prompts, (train.strong_quality - train.weak_quality).tolist(), strict=True))

        class Scorer:
            def scores(self, prompts: Sequence[str]) -> np.ndarray:
                return np.array([seen.get(p, 0.0) for p in prompts])

        return Scorer()


def test_cross_fitting_never_scores_a_training_prompt() -> None:
    rng = np.random.default_rng(3)
    n = 2_000
    prompts = [f"q{i % 1500}" for i in range(n)]  # duplicates must land in one fold
    d = _dataset(rng.random(n) < 0.8, rng.random(n) < 0.5, prompts)
    folds = fold_of(d.prompts, 5, 0)
    for p in set(prompts):
        assert len({int(folds[i]) for i, q in enumerate(prompts) if q == p}) == 1
    memoriser = _Memoriser()
    in_sample = score_router("m", memoriser.fit(d).scores(d.prompts), d, 0.0, 1.0)
    crossed = score_router("m", cross_fit_scores(d, memoriser, 5, 0), d, 0.0, 1.0)
    assert in_sample.apgr > 0.85  # duplicates with mixed outcomes keep it shy of perfect
    assert crossed.apgr == pytest.approx(0.5, abs=0.05)


def test_cross_fit_rejects_too_few_folds() -> None:
    with pytest.raises(ConfigError):
        cross_fit_scores(_dataset([1, 0], [0, 0]), LengthRouter(), 1, 0)


def test_jsonl_format(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    lines = [{"prompt": f"p{i}", "models": {"a": {"quality": i % 2, "cost": 0.01},
                                            "b": {"quality": True, "cost": 0.1}}} for i in range(10)]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    d = load_dataset(path)
    assert (d.strong, d.weak, len(d)) == ("b", "a", 10)
    assert d.accuracy("b") == 100 and d.accuracy("a") == 50
    result = evaluate(d, [RandomRouter(1)], folds=2, seed=0)
    assert [r.name for r in result.routers] == ["random", "oracle"]
    path.write_text(json.dumps({"prompt": "x", "models": {"a": {"quality": 2, "cost": 0}}}) + "\n")
    with pytest.raises(ConfigError, match=r"mine\.jsonl:1"):
        load_dataset(path)


@needs_data
@pytest.mark.parametrize(("bench", "count", "strong", "weak"),
                         [("mmlu", 14_037, 80.59, 68.09), ("gsm8k", 1_307, 85.77, 63.73)])
def test_routellm_loader_drops_contaminated(bench: str, count: int, strong: float, weak: float) -> None:
    d = load_dataset(ROUTELLM / bench)
    assert len(d) == count and d.dropped > 0
    assert d.accuracy(d.strong) == pytest.approx(strong, abs=0.01)
    assert d.accuracy(d.weak) == pytest.approx(weak, abs=0.01)


@needs_data
def test_cli_end_to_end_on_gsm8k(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", str(ROUTELLM / "gsm8k"), "--folds", "3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("random", "length", "podium-heuristic", "oracle"):
        assert f"| {name}" in result.output
    table = (tmp_path / "gsm8k.md").read_text()
    assert "APGR" in table and "CPT(50%)" in table
    svg = (tmp_path / "gsm8k.svg").read_text()
    assert svg.startswith("<svg") and svg.count("<polyline") == 8


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "no such dataset" in result.output

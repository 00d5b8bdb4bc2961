"""podium eval --cascade: the replay's arithmetic, the calibration's choice, that held-out figures never see
their calibration rows, bad targets and datasets, and the written acceptance running in a live cascade."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from podium import errors
from podium.cli.app import app
from podium.client import Podium
from podium.evaluation.cascade_replay import (
    CascadeData,
    calibrate,
    cross_fitted_calibration,
    feature_matrix,
    load_cascade_data,
    point,
    random_at_cost,
    replay,
)
from podium.evaluation.dataset import EvalDataset
from podium.evaluation.replay import fold_of
from podium.strategies.acceptance import FEATURES, load_acceptance
from podium.strategies.base import StrategyContext
from podium.strategies.cascade import Cascade
from podium.types import ChatRequest, ChatResponse, Message
from test_strategies import build, script

# beside the checkout (../shared), else where this machine keeps it (a fresh clone may live anywhere)
GSM8K = next((p for p in (Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")) if p.is_dir()),
             Path("/work/shared")) / "data" / "routellm" / "gsm8k"


def dataset(strong_q: list[float], weak_q: list[float], strong_c: float = 10.0, weak_c: float = 1.0,
            prompts: list[str] | None = None) -> EvalDataset:
    n = len(strong_q)
    return EvalDataset("gen", tuple(prompts or [f"q{i}" for i in range(n)]), "strong", "weak",
                       np.array(strong_q, float), np.array(weak_q, float), np.full(n, strong_c), np.full(n, weak_c))


def test_a_cascade_point_pays_the_weak_call_on_every_prompt():
    data = dataset([1, 1, 1, 0], [1, 0, 1, 1])
    p = point(np.array([True, False, True, False]), data, 0.5)
    assert p.strong_share == 50.0 and p.accuracy == 75.0  # weak 1, strong 1, weak 1, strong 0
    assert p.cost == pytest.approx(1.0 + 0.5 * 10.0)
    everything = point(np.zeros(4, bool), data, 1.0)
    assert everything.cost == pytest.approx(11.0) and everything.cost > float(data.strong_cost.mean())  # dearer
    assert random_at_cost(float(data.weak_cost.mean()), data) == data.accuracy(data.weak)


def test_calibration_picks_the_least_cost_threshold_meeting_the_target():
    # the score is right about the weak model above 0.5: accepting those costs nothing in accuracy
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9, 0.95])
    data = dataset([1] * 8, [0, 0, 0, 1, 1, 1, 1, 1])
    threshold, p = calibrate(scores, data, 1.0)
    assert threshold == 0.6 and p.accuracy == 100.0 and p.strong_share == 37.5
    threshold, p = calibrate(scores, data, 0.85)  # may lose one answer of 8 (87.5 %), no more: accept 0.3 too
    assert threshold == 0.3 and p.accuracy == 87.5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans(), st.booleans(), st.floats(0.1, 5), st.floats(5, 50)),
                min_size=2, max_size=30), st.floats(0.5, 1.0))
def test_calibration_is_the_cheapest_feasible_threshold(rows: list[tuple[float, bool, bool, float, float]],
                                                        target: float):
    scores = np.array([r[0] for r in rows])
    data = EvalDataset("gen", tuple(f"q{i}" for i in range(len(rows))), "s", "w",
                       np.array([float(r[1]) for r in rows]), np.array([float(r[2]) for r in rows]),
                       np.array([r[4] for r in rows]), np.array([r[3] for r in rows]))
    if data.accuracy("s") == 0:
        return
    _, chosen = calibrate(scores, data, target)
    need = target * data.accuracy("s")
    assert chosen.accuracy + 1e-9 >= need
    for t in [*scores.tolist(), float("inf")]:  # brute force: nothing cheaper meets the target
        p = point(scores >= t, data, t)
        if p.accuracy + 1e-9 >= need:
            assert p.cost >= chosen.cost - 1e-12


def test_a_target_no_threshold_can_meet_is_a_config_error():
    data = dataset([1, 0, 1, 1], [0, 1, 0, 0])
    with pytest.raises(errors.ConfigError, match=r"--target 1\.5: no threshold keeps 150% .* the best is 100\.0 %"):
        calibrate(np.array([0.1, 0.9, 0.2, 0.3]), data, 1.5)


def generated(n: int = 200, seed: int = 1) -> CascadeData:
    """Weak answers whose shape tells whether they are right: right ones end '#### 7', wrong ones hedge."""
    rng = np.random.default_rng(seed)
    weak_right = rng.random(n) < 0.6
    replies = tuple("Step.\n#### 7" if right and rng.random() < 0.9 else "However, assuming it rounds, maybe 7.5?"
                    for right in weak_right)
    data = dataset(list((rng.random(n) < 0.9).astype(float)), list(weak_right.astype(float)),
                   prompts=[f"question {i}: how many?" for i in range(n)])
    return CascadeData(data, replies)


def test_held_out_figures_never_use_their_calibration_rows():
    cascade = generated()
    x = feature_matrix(cascade)
    assignment = fold_of(cascade.data.prompts, 4, 0)
    base = cross_fitted_calibration(x, cascade.data, 0.9, assignment)
    held = assignment == 2
    flipped = cascade.data.weak_quality.copy()
    flipped[held] = 1 - flipped[held]  # scramble fold 2's outcomes
    data = EvalDataset("gen", cascade.data.prompts, "strong", "weak", cascade.data.strong_quality, flipped,
                       cascade.data.strong_cost, cascade.data.weak_cost)
    changed = cross_fitted_calibration(x, data, 0.9, assignment)
    assert changed.fold_thresholds[2] == base.fold_thresholds[2]  # fold 2 was judged by rows that exclude it
    assert changed.fold_thresholds != base.fold_thresholds  # and the other folds did see the change


def test_replay_on_generated_answers_learns_their_shape():
    report = replay(generated(), folds=4, seed=0, target=0.95)
    learned = report.signal("learned acceptance")
    assert learned.apgr > 0.8 and report.calibration is not None
    assert report.calibration.held_out.strong_share < 60


def test_bad_cascade_inputs_are_clear_errors(tmp_path: Path):
    line = {"prompt": "2+2?", "models": {"s": {"quality": 1, "cost": 2}, "w": {"quality": 0, "cost": 1}}}
    (tmp_path / "no_answers.jsonl").write_text(json.dumps(line) + "\n" + json.dumps({**line, "prompt": "3+3?"}))
    with pytest.raises(errors.ConfigError, match=r'no_answers: --cascade .* has none for w; give .*"response"'):
        load_cascade_data(tmp_path / "no_answers.jsonl")
    with pytest.raises(errors.ConfigError, match="--target is a share"):
        replay(generated(), folds=4, target=0.0)


def test_cli_cascade_replay_writes_an_acceptance_a_live_cascade_runs(tmp_path: Path):
    rows = []
    for i in range(40):
        right = i % 3 != 0
        weak = {"quality": int(right), "cost": 0.001,
                "response": f"Working.\n#### {i}" if right else "Hmm, however, assuming rounding, about"}
        rows.append({"prompt": f"Question {i}?", "models": {"big": {"quality": 1, "cost": 0.05}, "small": weak}})
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    result = CliRunner().invoke(app, ["eval", str(path), "--cascade", "--target", "0.95", "--folds", "4",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "learned acceptance" in result.output and "held out:" in result.output
    accept = load_acceptance(tmp_path / "out" / "mine.cascade.json")
    assert json.loads((tmp_path / "out" / "mine.cascade.json").read_text())["features"] == list(FEATURES)
    podium = build(tmp_path)
    script(podium, "a1", "Working.\n#### 12")
    big = script(podium, "big", "#### 13")
    strategy = Cascade(["a1", "big"], accept=accept, name="learned")
    response = asyncio.run(run_live(podium, strategy))
    assert response.text.endswith("12") and big.calls == []
    script(podium, "a1", "Hmm, however, assuming rounding, about")
    assert asyncio.run(run_live(podium, strategy)).text == "#### 13"
    asyncio.run(podium.aclose())


async def run_live(podium: Podium, strategy: Cascade) -> ChatResponse:
    """The cascade with every step a real client call (scripted provider, resilience, ledger)."""

    async def call(model: str, request: ChatRequest, step: str, ctx: StrategyContext) -> ChatResponse:
        return await podium.chat(request, model=model)

    ctx = StrategyContext(call, lambda: 0.0)
    return await strategy.run(ChatRequest(messages=[Message.user("Question 12?")]), ctx)


@pytest.mark.skipif(not GSM8K.is_dir(), reason="RouteLLM's data is not here")
def test_cli_target_errors_exit_2_with_one_line(tmp_path: Path):
    result = CliRunner().invoke(app, ["eval", str(GSM8K), "--target", "0.9"])
    assert result.exit_code == 2 and "add --cascade" in result.output
    result = CliRunner().invoke(app, ["eval", str(GSM8K), "--cascade", "--target", "1.3", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "no threshold keeps 130%" in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.skipif(not GSM8K.is_dir(), reason="RouteLLM's data is not here")
def test_gsm8k_cascade_beats_random_routing_at_the_same_cost():
    report = replay(load_cascade_data(GSM8K), folds=5, seed=0, target=0.95)
    learned = report.signal("learned acceptance")
    assert learned.apgr > report.signal("format rule").apgr
    top = max(learned.points, key=lambda p: p.strong_share)
    assert top.strong_share == 100 and top.cost > float(report.data.strong_cost.mean())  # the weak call is paid too
    for p in learned.points:  # better than a random router at the same cost from 10 % to 80 % strong calls
        if 0 < p.strong_share <= 81:  # (at 90 % it is 0.4 points below: the weak call's cost is no longer small)
            assert p.accuracy > random_at_cost(p.cost, report.data)
    c = report.calibration
    assert c is not None and c.kept > 0.93 and c.held_out.strong_share < 60


def _acceptance_file(path: Path, threshold: float = 0.5) -> None:
    """An acceptance whose only weight is on 'the reply marks a final answer'."""
    n = len(FEATURES)
    weights = [0.0] * n
    weights[FEATURES.index("marked")] = 8.0
    path.write_text(json.dumps({"format": "podium-cascade-acceptance/1", "features": list(FEATURES),
                                "mean": [0.5] + [0.0] * (n - 1), "scale": [1.0] * n, "weights": weights,
                                "bias": 0.0, "threshold": threshold}))


def test_yaml_accept_learned_runs_the_calibrated_file_from_the_config_folder(tmp_path: Path):
    """``accept: learned`` + a relative ``acceptance_file`` in podium.yaml: a marked cheap answer is
    accepted, an unmarked one climbs, and the trace says which acceptance decided."""
    _acceptance_file(tmp_path / "gsm8k.cascade.json")
    podium = build(tmp_path, {"strategies": {"calibrated": {"type": "cascade", "models": ["a1", "big"],
                                                            "accept": "learned",
                                                            "acceptance_file": "gsm8k.cascade.json"}}})
    script(podium, "a1", "Working.\n#### 12")
    big = script(podium, "big", "#### 13")
    response = asyncio.run(podium.chat(ChatRequest(messages=[Message.user("Question?")]), model="calibrated"))
    assert response.text.endswith("12") and big.calls == []
    assert "learned acceptance" in json.dumps(response.trace.model_dump() if response.trace else {})
    script(podium, "a1", "Hmm, about twelve I suppose")
    assert asyncio.run(podium.chat(ChatRequest(messages=[Message.user("Question?")]), model="calibrated")).text \
        == "#### 13"
    asyncio.run(podium.aclose())


@pytest.mark.parametrize(("strategy", "says"), [
    ({"type": "cascade", "models": ["a1", "big"], "accept": "learned"}, "go together"),
    ({"type": "cascade", "models": ["a1", "big"], "accept": "learned", "acceptance_file": "nope.json"},
     "cannot read the acceptance file"),
    ({"type": "cascade", "models": ["a1", "big"], "accept": "learned", "acceptance_file": "bad.json"},
     "is not a cascade acceptance file"),
    ({"type": "vote", "models": ["a1", "big"], "accept": "learned", "acceptance_file": "good.json"},
     "is for cascades"),
    ({"type": "cascade", "models": ["a1", "big"], "acceptance_file": "good.json"}, "go together"),
])
def test_yaml_accept_learned_mistakes_stop_the_config(tmp_path: Path, strategy: dict[str, object], says: str):
    _acceptance_file(tmp_path / "good.json")
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(errors.ConfigError) as caught:
        build(tmp_path, {"strategies": {"s": strategy}})
    assert says in caught.value.message and caught.value.key_path == "strategies.s.acceptance_file"


def test_acceptance_file_must_be_a_small_regular_file_of_finite_numbers(tmp_path: Path):
    """Issue 12 review: a FIFO or /dev/zero hung the config load; NaN weights accepted every answer;
    deep JSON raised RecursionError. (A FIFO and a symlink to it stand in for the devices.)"""
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    (tmp_path / "link.json").symlink_to(fifo)
    for bad in (fifo, tmp_path / "link.json", tmp_path):
        with pytest.raises(errors.ConfigError, match="is not a regular file"):
            load_acceptance(bad)
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (2 << 20))
    with pytest.raises(errors.ConfigError, match="more than"):
        load_acceptance(big)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(errors.ConfigError, match=r"nested too deeply|not a cascade acceptance file"):
        load_acceptance(deep)
    good = tmp_path / "good.json"
    _acceptance_file(good)
    assert load_acceptance(good).threshold == 0.5
    for field in ("mean", "weights", "scale", "bias"):
        data = json.loads(good.read_text())
        for value in (float("nan"), float("inf")):
            if field == "bias":
                data["bias"] = value
            else:
                data[field][1] = value
            good.write_text(json.dumps(data))  # json writes NaN / Infinity, and reads them back
            with pytest.raises(errors.ConfigError, match=r"finite number|scale"):
                load_acceptance(good)


def test_cli_cascade_refuses_to_replace_a_non_regular_output(tmp_path: Path):
    rows = [{"prompt": f"Question {i}?", "models": {"big": {"quality": 1, "cost": 0.05},
                                                    "small": {"quality": int(i % 3 != 0), "cost": 0.001,
                                                              "response": f"#### {i}" if i % 3 else "about"}}}
            for i in range(40)]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    out = tmp_path / "out"
    out.mkdir()
    os.mkfifo(out / "mine.cascade.json")
    (out / "mine.cascade.md").symlink_to(tmp_path / "elsewhere.md")
    result = CliRunner().invoke(app, ["eval", str(path), "--cascade", "--target", "0.9", "--folds", "4",
                                      "--out", str(out)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "symlink" in result.output and (out / "mine.cascade.md").is_symlink()
    (out / "mine.cascade.md").unlink()
    result = CliRunner().invoke(app, ["eval", str(path), "--cascade", "--target", "0.9", "--folds", "4",
                                      "--out", str(out)])
    assert result.exit_code == 2 and "not a regular file" in result.output, result.output
    assert stat.S_ISFIFO(os.lstat(out / "mine.cascade.json").st_mode)
    assert not (out / "mine.cascade.md").exists(), "the report was written although its companion was refused"

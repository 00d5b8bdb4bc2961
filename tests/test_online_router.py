"""The online bandit router and ``podium eval --online``: each promise tried against data that breaks it.

All data here is generated (clustered unit vectors standing in for prompt embeddings), so the tests
are fast and say exactly what was planted.
"""

from __future__ import annotations

import json
import math
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from podium.cli.app import app
from podium.errors import ConfigError
from podium.evaluation.dataset import EvalDataset
from podium.evaluation.online import (
    best,
    fixed_policies,
    regret_curve,
    second_half,
    simulate,
)
from podium.evaluation.online_report import markdown_online, svg_online
from podium.routing.learned.bandit import BanditRouter
from podium.routing.learned.contract import LearnedRouter, OnlineRouter
from podium.routing.learned.files import load_router, save_router

D = 384


def clusters(n: int, k: int = 2, seed: int = 0, spread: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors around ``k`` random centres, and each one's cluster."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, D))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    label = rng.integers(0, k, n)
    x = centres[label] + spread * rng.standard_normal((n, D)) / math.sqrt(D)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), label


def planted(n: int, seed: int = 0) -> tuple[EvalDataset, np.ndarray, np.ndarray]:
    """A dataset where the strong model is needed on cluster 1 only (the weak one is as good on cluster 0)."""
    x, label = clusters(n, seed=seed)
    rng = np.random.default_rng(seed + 1)
    strong_q = (rng.random(n) < 0.9).astype(np.float64)
    weak_q = (rng.random(n) < np.where(label == 0, 0.9, 0.1)).astype(np.float64)
    data = EvalDataset("planted", tuple(f"prompt {i}" for i in range(n)), "big", "small", strong_q, weak_q,
                       np.full(n, 1.0), np.full(n, 0.01))
    return data, x, label


# --- learning -------------------------------------------------------------------------------------

def test_the_bandit_meets_the_online_router_contract() -> None:
    router = BanditRouter(("a", "b"))
    assert isinstance(router, OnlineRouter) and isinstance(router, LearnedRouter)
    assert router.kind == "bandit" and router.models == ("a", "b")
    assert router.predict(clusters(3)[0]).shape == (3, 2)


def test_it_learns_a_planted_rule_with_sublinear_regret() -> None:
    """Model a succeeds on cluster 0, b on cluster 1: pseudo-regret against the rule flattens out."""
    x, label = clusters(3000, seed=3)
    p_success = np.where(label[:, None] == np.array([0, 1])[None, :], 0.9, 0.1)  # (n, 2): a, b
    router = BanditRouter(("a", "b"), explore=0.0, knob=1.0, dims=32)
    rng = np.random.default_rng(4)
    regret = np.empty(len(x))
    for t in range(len(x)):
        model = router.choose(x[t], {"a": 1.0, "b": 1.0}).model
        j = router.models.index(model)
        router.update(x[t], model, float(rng.random() < p_success[t, j]))
        regret[t] = p_success[t].max() - p_success[t, j]
    early, late = regret[:1000].sum(), regret[2000:].sum()
    assert late < early / 4, (early, late)
    assert late <= 0.8 * 20  # at most ~20 wrong picks in the last 1,000
    chances = router.predict(x[2000:])
    assert np.mean(np.argmax(chances, 1) == label[2000:]) > 0.98


def test_only_the_chosen_models_outcome_is_used() -> None:
    """Poison every outcome the bandit did not choose: its choices and its state stay exactly the same."""
    data, x, _ = planted(600, seed=5)
    tiers = np.zeros(len(data))
    first = simulate(data, x, explore=0.2, knob=0.9, seed=7, tiers=tiers, dims=16)
    strong_q, weak_q = data.strong_quality.copy(), data.weak_quality.copy()
    rows = first.order
    strong_q[rows[~first.strong]] = 1 - strong_q[rows[~first.strong]]  # the strong outcome it never saw
    weak_q[rows[first.strong]] = 1 - weak_q[rows[first.strong]]
    poisoned = EvalDataset(data.name, data.prompts, data.strong, data.weak, strong_q, weak_q, data.strong_cost,
                           data.weak_cost)
    second = simulate(poisoned, x, explore=0.2, knob=0.9, seed=7, tiers=tiers, dims=16)
    assert np.array_equal(first.strong, second.strong)
    assert np.array_equal(first.quality, second.quality)
    assert first.explanation == second.explanation


def test_an_update_touches_only_its_models_arrays() -> None:
    router = BanditRouter(("a", "b", "c"), dims=8)
    before = {k: v.copy() for k, v in router.arrays().items()}
    router.update(clusters(1)[0][0], "b", 1.0)
    for name in ("precision", "covariance", "moment", "weights", "counts"):
        after = router.arrays()[name]
        assert np.array_equal(after[0], before[name][0]) and np.array_equal(after[2], before[name][2]), name
        assert not np.array_equal(after[1], before[name][1]), name


@settings(max_examples=15, deadline=None)
@given(share=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1))
def test_the_exploration_share_is_respected(share: float, seed: int) -> None:
    """Explored draws ~ Binomial(n, share), each a uniform pick; the rest follow the knob."""
    router = BanditRouter(("a", "b", "c"), explore=share, seed=seed, dims=4)
    x = clusters(1)[0][0]
    n = 1500
    pulls = [router.choose(x, {"a": 1.0, "b": 2.0, "c": 3.0}, knob=0.5) for _ in range(n)]
    explored = [p for p in pulls if p.explored]
    sd = math.sqrt(n * share * (1 - share))
    assert abs(len(explored) - n * share) <= 5 * sd + 1
    assert all(p.model == p.choice.model for p in pulls if not p.explored)
    if len(explored) >= 300:
        counts = np.array([sum(p.model == m for p in explored) for m in "abc"])
        assert np.all(np.abs(counts - len(explored) / 3) <= 5 * math.sqrt(len(explored) * 2 / 9) + 1)


def test_it_is_deterministic_given_a_seed() -> None:
    data, x, _ = planted(300, seed=2)
    runs = [simulate(data, x, explore=0.3, seed=11, tiers=np.zeros(300), dims=8) for _ in range(2)]
    assert np.array_equal(runs[0].order, runs[1].order) and np.array_equal(runs[0].strong, runs[1].strong)
    other = simulate(data, x, explore=0.3, seed=12, tiers=np.zeros(300), dims=8)
    assert not np.array_equal(runs[0].order, other.order)


# --- the router file -------------------------------------------------------------------------------

def test_save_and_load_continue_identically(tmp_path: Path) -> None:
    x, label = clusters(400, seed=8)
    router = BanditRouter(("a", "b"), explore=0.25, seed=3, knob=0.7, costs={"a": 1.0, "b": 0.1})
    for t in range(200):
        router.update(x[t], router.choose(x[t], {"a": 1.0, "b": 0.1}).model, float(label[t]))
    loaded = load_router(save_router(router, tmp_path / "bandit.npz"))
    assert isinstance(loaded, BanditRouter) and loaded.knob == 0.7 and loaded.costs == {"a": 1.0, "b": 0.1}
    for t in range(200, 400):
        pulls = [r.choose(x[t], {"a": 1.0, "b": 0.1}) for r in (router, loaded)]
        assert pulls[0] == pulls[1]
        for r in (router, loaded):
            r.update(x[t], pulls[0].model, float(label[t]))
    for name, value in router.arrays().items():
        assert np.array_equal(value, loaded.arrays()[name]), name
    assert loaded.explain(x[0]) == router.explain(x[0])


def test_a_damaged_bandit_file_is_refused(tmp_path: Path) -> None:
    router = BanditRouter(("a", "b"), dims=8)
    path = save_router(router, tmp_path / "b.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["counts"] = np.array([-1, 0])
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ConfigError, match="counts"):
        load_router(tmp_path / "bad.npz")
    arrays["counts"] = np.array([0, 0])
    arrays["covariance"] = arrays["covariance"][:, :5]
    np.savez(tmp_path / "bad2.npz", **arrays)
    with pytest.raises(ConfigError, match="covariance"):
        load_router(tmp_path / "bad2.npz")


def test_memory_stays_bounded_after_100k_updates() -> None:
    router = BanditRouter(("a", "b"), dims=4, seed=1)
    x, label = clusters(1000, seed=9)
    sizes = {k: (v.shape, v.nbytes) for k, v in router.arrays().items()}
    attributes = set(vars(router))
    for t in range(95_000):
        i = t % 1000
        router.update(x[i], "a" if t % 3 else "b", float(label[i]))
    tracemalloc.start()
    start, _ = tracemalloc.get_traced_memory()
    for t in range(95_000, 100_000):  # the last 5,000 updates allocate nothing that stays
        i = t % 1000
        router.update(x[i], "a" if t % 3 else "b", float(label[i]))
    end, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert end - start < 16 * 1024
    assert {k: (v.shape, v.nbytes) for k, v in router.arrays().items()} == sizes
    assert set(vars(router)) == attributes
    assert int(router.counts.sum()) == 100_000
    for j in range(2):  # the inverse kept by rank-one steps still inverts the precision
        assert np.allclose(router.covariance[j] @ router.precision[j], np.eye(5), atol=1e-6)


def test_concurrent_updates_lose_nothing() -> None:
    """Four threads updating (and predicting) at once end where the same updates in one thread end."""
    x, label = clusters(2000, seed=12)
    shared, alone = BanditRouter(("a", "b"), dims=16), BanditRouter(("a", "b"), dims=16)
    jobs = [(x[i], "a" if i % 2 else "b", float(label[i])) for i in range(2000)]

    def work(part: int) -> None:
        for e, m, r in jobs[part::4]:
            shared.update(e, m, r)
            shared.predict(e[None, :])

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e, m, r in jobs:
        alone.update(e, m, r)
    assert shared.counts.tolist() == alone.counts.tolist() == [1000, 1000]
    for name in ("precision", "moment", "weights", "covariance"):
        assert np.allclose(shared.arrays()[name], alone.arrays()[name], atol=1e-8), name


# --- hostile input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("reward", [float("nan"), float("inf"), -0.01, 1.5, "1", None, True])
def test_a_bad_reward_is_refused_and_changes_nothing(reward: object) -> None:
    router = BanditRouter(("a", "b"), dims=8)
    before = {k: v.copy() for k, v in router.arrays().items()}
    with pytest.raises(ValueError, match="reward"):
        router.update(clusters(1)[0][0], "a", reward)  # type: ignore[arg-type]
    assert all(np.array_equal(v, router.arrays()[k]) for k, v in before.items())


@given(reward=st.one_of(st.floats(allow_nan=True, allow_infinity=True).filter(lambda r: not 0 <= r <= 1),
                        st.floats(0.0, 1.0)))
@settings(max_examples=40, deadline=None)
def test_any_reward_outside_0_1_is_refused(reward: float) -> None:
    router = BanditRouter(("a", "b"), dims=4)
    x = clusters(1)[0][0]
    if 0 <= reward <= 1:
        router.update(x, "b", reward)
        assert router.counts.tolist() == [0, 1]
    else:
        with pytest.raises(ValueError, match="reward"):
            router.update(x, "b", reward)


def test_an_unknown_model_and_a_bad_embedding_are_refused() -> None:
    router = BanditRouter(("a", "b"), dims=8)
    x = clusters(1)[0][0]
    with pytest.raises(ValueError, match="unknown model 'c'"):
        router.update(x, "c", 1.0)
    with pytest.raises(ValueError, match="384 dimensions"):
        router.update(x[:383], "a", 1.0)
    with pytest.raises(ValueError, match="384 dimensions"):
        router.update(np.stack([x, x]), "a", 1.0)
    bad = x.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        router.update(bad, "a", 1.0)
    with pytest.raises(ValueError, match="NaN"):
        router.predict(bad[None, :])
    with pytest.raises(ValueError, match="eligible"):
        router.choose(x, {"z": 1.0})
    assert router.counts.tolist() == [0, 0]


@pytest.mark.parametrize("kw", [{"explore": 1.5}, {"explore": -0.1}, {"dims": 0}, {"noise": 0.0},
                                {"prior": float("nan")}, {"prior_mean": 2.0}])
def test_bad_settings_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kw))):
        BanditRouter(("a", "b"), **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="distinct"):
        BanditRouter(("a", "a"))


# --- the simulation and its report ---------------------------------------------------------------

def test_the_online_run_beats_an_uninformed_heuristic_on_planted_data() -> None:
    """With random heuristic tiers, the learned routing must be the better point in the second half."""
    data, x, label = planted(2000, seed=6)
    tiers = np.random.default_rng(0).integers(0, 3, len(data)).astype(np.float64)
    run = simulate(data, x, explore=0.1, knob=0.8, seed=1, tiers=tiers, dims=16)
    half = second_half(run)
    assert half.met and half.accuracy > half.heuristic_accuracy + 10
    assert abs(half.explored - 10) < 3
    # the bandit routes cluster 1 (where the weak model fails) to the strong model
    late = run.order[run.half:]
    assert run.strong[run.half:][label[late] == 1].mean() > 0.9
    assert run.strong[run.half:][label[late] == 0].mean() < 0.15
    policies = fixed_policies(run)
    assert [p.name for p in policies] == ["always strong", "always weak", "heuristic tier ≥ 1",
                                         "heuristic tier ≥ 2"]
    assert regret_curve(run, best(policies))[-1] < 0  # contextual beats every fixed policy here
    table = markdown_online(run)
    assert "**met**" in table and "always strong" in table
    svg = svg_online(run)
    assert svg.startswith("<svg") and svg.count("<svg") == 2 and "cumulative regret" in svg


def test_regret_is_the_best_fixed_policys_reward_minus_the_bandits() -> None:
    data, x, _ = planted(200, seed=4)
    run = simulate(data, x, explore=0.5, knob=0.6, seed=2, tiers=np.zeros(200), dims=8)
    strong = fixed_policies(run)[0]
    unit = data.strong_cost[run.order]
    mine = run.quality - 0.4 * run.cost / unit
    theirs = data.strong_quality[run.order] - 0.4
    assert np.allclose(regret_curve(run, strong), np.cumsum(theirs) - np.cumsum(mine))


def test_bad_simulation_settings_are_config_errors() -> None:
    data, x, _ = planted(10)
    with pytest.raises(ConfigError, match="explore"):
        simulate(data, x, tiers=np.zeros(10), explore=2.0)
    with pytest.raises(ConfigError, match="knob"):
        simulate(data, x, tiers=np.zeros(10), knob=-1.0)
    with pytest.raises(ValueError, match="embeddings"):
        simulate(data, x[:5], tiers=np.zeros(10))
    three = EvalDataset("three", data.prompts, "big", "small", data.strong_quality, data.weak_quality,
                        data.strong_cost, data.weak_cost, 0, ("big", "mid", "small"),
                        np.column_stack([data.strong_quality] * 3), np.column_stack([data.strong_cost] * 3))
    with pytest.raises(ConfigError, match="has 3"):
        simulate(three, x, tiers=np.zeros(10))


# --- the CLI ---------------------------------------------------------------------------------------

def _jsonl(path: Path, n: int = 12) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            hard = i % 2 == 0
            fh.write(json.dumps({"prompt": f"{'Prove the theorem' if hard else 'Say hi'} number {i}",
                                 "models": {"big": {"quality": 1, "cost": 0.01},
                                            "small": {"quality": 0 if hard else 1, "cost": 0.0001}}}) + "\n")
    return path


@pytest.mark.parametrize(("args", "message"), [
    (["--online", "--explore", "1.5"], "--explore must be a share between 0 and 1"),
    (["--online", "--explore", "-0.2"], "--explore must be a share between 0 and 1"),
    (["--online", "--knob", "7"], "--knob must lie between 0"),
    (["--explore", "0.2"], "add --online"),
    (["--online", "--cascade"], "drop --cascade"),
])
def test_cli_refuses_bad_online_options_with_exit_2_and_one_line(tmp_path: Path, args: list[str],
                                                                  message: str) -> None:
    result = CliRunner().invoke(app, ["eval", str(_jsonl(tmp_path / "d.jsonl")), *args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output


def test_cli_online_run_writes_table_and_svg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_EMBEDDING_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["eval", str(_jsonl(tmp_path / "d.jsonl")), "--online", "--explore", "0.2",
                                      "--seed", "3", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "Goal (second half better than the static heuristic router)" in result.output
    assert (tmp_path / "out" / "d-online.md").is_file()
    assert (tmp_path / "out" / "d-online.svg").read_text().startswith("<svg")

"""The offline learned routers: each recovers a planted signal, cross-fitting gives a memoriser nothing,
router files round-trip exactly and hostile ones are refused, pick() behaves at its ends and in between,
and the CLI's train/eval paths exit as documented. Embeddings here are generated (no MiniLM needed)."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import stat
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from typer.testing import CliRunner

from podium.cli.app import app
from podium.errors import ConfigError
from podium.evaluation.dataset import EvalDataset, load_dataset
from podium.evaluation.learned import EmbeddingTable, LearnedEvalRouter, pick_report, pick_rows
from podium.evaluation.replay import cross_fit_scores, evaluate, score_router
from podium.routing.learned.common import FEATURES, text_features
from podium.routing.learned.contract import LearnedRouter, pick
from podium.routing.learned.files import chances, load_router, save_router
from podium.routing.learned.training import fit_learner

TOPICS = ("algebra", "history", "poetry", "chemistry")


def fake_embed(prompts: Sequence[str]) -> NDArray[np.float32]:
    """A unit vector per prompt: its topic's direction plus noise seeded by the text."""
    out = np.empty((len(prompts), 384), dtype=np.float32)
    centres = np.random.default_rng(99).normal(size=(len(TOPICS), 384))
    for i, p in enumerate(prompts):
        topic = next((t for t in TOPICS if t in p), None)
        seed = int.from_bytes(hashlib.sha256(p.encode()).digest()[:4], "little")
        v = np.random.default_rng(seed).normal(size=384)
        if topic is not None:
            v = v * 0.6 + centres[TOPICS.index(topic)]
        out[i] = v / np.linalg.norm(v)
    return out


def planted(n: int, seed: int, models: Sequence[str] = ("big", "small")) -> tuple[list[str], NDArray[np.float64]]:
    """Prompts on four topics; the last model fails algebra (mostly), every model passes the rest (mostly)."""
    rng = np.random.default_rng(seed)
    prompts = [f"{TOPICS[i % 4]} question {i} " + "word " * int(rng.integers(1, 20)) for i in range(n)]
    y = (rng.random((n, len(models))) < 0.9).astype(float)
    algebra = np.array([p.startswith("algebra") for p in prompts])
    y[algebra, -1] = (rng.random(algebra.sum()) < 0.15).astype(float)
    return prompts, y


def dataset_of(prompts: Sequence[str], y: NDArray[np.float64], name: str = "toy") -> EvalDataset:
    n = len(prompts)
    return EvalDataset(name, tuple(prompts), "big", "small", y[:, 0], y[:, 1], np.full(n, 1.0), np.full(n, 0.1))


OFFLINE = ("knn", "logistic", "mlp", "mf", "ensemble")  # the online bandit has its own tests
FAST = {"mlp": {"epochs": 30}, "mf": {"epochs": 150}}


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(160, 260), m=st.integers(2, 3))
@pytest.mark.parametrize("kind", OFFLINE)
def test_each_learner_recovers_a_planted_signal(kind: str, seed: int, n: int, m: int) -> None:
    models = ("big", "mid", "small")[-m:] if m == 3 else ("big", "small")
    prompts, y = planted(n, seed, models)
    x = fake_embed(prompts)
    router = fit_learner(kind, x, y, models, prompts, params=FAST.get(kind))
    assert isinstance(router, LearnedRouter)
    test = [f"{t} question {n + i} " + "word " * (1 + 2 * i) for i in range(8) for t in ("algebra", "poetry")]
    p = chances(router, fake_embed(test), test)
    assert p.shape == (16, m) and np.all((p >= 0) & (p <= 1))
    small = p[:, -1]
    assert small[0::2].mean() < small[1::2].mean() - 0.2  # the weak model is predicted to fail algebra
    assert np.all(np.abs(p[:, 0] - 0.9) < 0.25)  # the strong model is predicted to pass everything


def test_a_memoriser_gains_nothing_under_cross_fitting() -> None:
    rng = np.random.default_rng(3)
    prompts = [f"item {i}" for i in range(400)]
    y = (rng.random((400, 2)) < [0.8, 0.5]).astype(float)  # outcomes unrelated to the prompt
    d = dataset_of(prompts, y)
    table = EmbeddingTable(fake_embed)
    router = LearnedEvalRouter("knn", table, {"k": 1, "prior": 0.0})
    crossed = score_router("knn", cross_fit_scores(d, router, 5, 0), d, 0.1, 1.0)
    assert abs(crossed.apgr - 0.5) < 0.1
    seen = router.fit(d)  # scored on its own training prompts it looks perfect: that is what folds prevent
    assert score_router("knn", seen.scores(d.prompts), d, 0.1, 1.0).apgr > 0.7


def test_learned_routers_never_see_the_held_out_fold() -> None:
    prompts, y = planted(100, 1)
    d = dataset_of(prompts, y)
    fitted: list[set[str]] = []

    class Spy(LearnedEvalRouter):
        def fit(self, train: EvalDataset):  # type: ignore[no-untyped-def]
            fitted.append(set(train.prompts))
            return super().fit(train)

    spy = Spy("logistic", EmbeddingTable(fake_embed))
    evaluate(d, [spy], folds=4, seed=2, oracle=False)
    assert len(fitted) == 4
    held = [set(d.prompts) - f for f in fitted]
    assert all(h and not (h & f) for h, f in zip(held, fitted, strict=True))
    assert set().union(*held) == set(d.prompts)
    assert set(spy.out_of_fold) == set(d.prompts)


@pytest.mark.parametrize("kind", OFFLINE)
def test_file_round_trip_gives_identical_predictions(kind: str, tmp_path: Path) -> None:
    prompts, y = planted(120, 5)
    y[::7, 1] = np.nan  # unobserved outcomes, as a ledger has
    x = fake_embed(prompts)
    router = fit_learner(kind, x, y, ("big", "small"), prompts, knob=0.7, costs={"big": 2.0, "small": 0.1},
                         params=FAST.get(kind))
    path = save_router(router, tmp_path / "r.npz")
    again = load_router(path)
    test = [f"{t} new {i}" for i in range(5) for t in TOPICS]
    v = fake_embed(test)
    assert np.array_equal(chances(router, v, test), chances(again, v, test))
    assert again.kind == kind and again.models == ("big", "small") and again.knob == 0.7
    assert again.costs == {"big": 2.0, "small": 0.1}
    line = again.explain(v[0], test[0]) if again.uses_text else again.explain(v[0])
    assert "big" in line and all(p not in line for p in prompts) and "question" not in line


def _write_npz(path: Path, header: dict | None, allow_pickle: bool = False, **arrays: object) -> Path:
    data = dict(arrays)
    if header is not None:
        data["header"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    with path.open("wb") as fh:
        np.savez(fh, allow_pickle=allow_pickle, **data)  # type: ignore[arg-type]
    return path


def _good(tmp_path: Path) -> tuple[Path, dict, dict[str, np.ndarray]]:
    prompts, y = planted(40, 2)
    router = fit_learner("knn", fake_embed(prompts), y, ("big", "small"), prompts)
    path = save_router(router, tmp_path / "good.npz")
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    header = json.loads(arrays.pop("header").tobytes())
    return path, header, arrays


def test_hostile_and_damaged_files_are_refused(tmp_path: Path) -> None:
    path, header, arrays = _good(tmp_path)
    assert load_router(path).kind == "knn"
    bad: dict[str, Path] = {}
    bad["pickled"] = _write_npz(tmp_path / "pickled.npz", header, allow_pickle=True,
                                **{**arrays, "ids": np.array([object()] * len(arrays["ids"]), dtype=object)})
    bad["truncated"] = tmp_path / "truncated.npz"
    bad["truncated"].write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    bad["garbage"] = tmp_path / "garbage.npz"
    bad["garbage"].write_bytes(b"not a zip at all")
    bad["no header"] = _write_npz(tmp_path / "noheader.npz", None, **arrays)
    bad["version"] = _write_npz(tmp_path / "version.npz", {**header, "version": 99}, **arrays)
    bad["kind"] = _write_npz(tmp_path / "kind.npz", {**header, "kind": "oracle"}, **arrays)
    bad["embedder"] = _write_npz(tmp_path / "embedder.npz", {**header, "dimensions": 768}, **arrays)
    bad["models"] = _write_npz(tmp_path / "models.npz", {**header, "models": ["only"]}, **arrays)
    bad["knob"] = _write_npz(tmp_path / "knob.npz", {**header, "knob": 3}, **arrays)
    bad["shape"] = _write_npz(tmp_path / "shape.npz", header, **{**arrays, "vectors": arrays["vectors"][:, :100]})
    bad["nan"] = _write_npz(tmp_path / "nan.npz", header,
                            **{**arrays, "vectors": np.full_like(arrays["vectors"], np.nan)})
    bad["outcomes"] = _write_npz(tmp_path / "outcomes.npz", header, **{**arrays, "outcomes": arrays["outcomes"] * 5})
    bad["missing array"] = _write_npz(tmp_path / "missing.npz", header,
                                      **{k: v for k, v in arrays.items() if k != "ids"})
    bad["strings"] = _write_npz(tmp_path / "strings.npz", header, **{**arrays, "ids": np.array(["a"] * 40)})
    bad["absent"] = tmp_path / "absent.npz"
    for why, p in bad.items():
        with pytest.raises(ConfigError) as info:
            load_router(p)
        assert str(p) in info.value.message, why
        assert "podium router train" in info.value.message, why


def test_damaged_dense_and_ensemble_files_are_refused(tmp_path: Path) -> None:
    prompts, y = planted(60, 4)
    for kind in ("logistic", "ensemble"):
        router = fit_learner(kind, fake_embed(prompts), y, ("big", "small"), prompts)
        path = save_router(router, tmp_path / f"{kind}.npz")
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        header = json.loads(arrays.pop("header").tobytes())
        name = "w" if kind == "logistic" else "part1/w"
        broken = {**arrays, name: arrays[name][:-1]}
        with pytest.raises(ConfigError, match="shape"):
            load_router(_write_npz(tmp_path / f"{kind}-shape.npz", header, **broken))
        poisoned = {**arrays, name: np.where(arrays[name] == arrays[name].flat[0], np.inf, arrays[name])}
        with pytest.raises(ConfigError, match="NaN or infinite"):
            load_router(_write_npz(tmp_path / f"{kind}-inf.npz", header, **poisoned))


def test_a_router_file_is_a_plain_zip_of_npy(tmp_path: Path) -> None:
    path, header, _ = _good(tmp_path)
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == ["header.npy", "ids.npy", "outcomes.npy", "vectors.npy"]
    assert header["format"] == "podium-router" and header["version"] == 1 and header["embedder"] == "all-minilm-l6-v2"


chance_maps = st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.floats(0, 1), min_size=1, max_size=4)


@given(chances_=chance_maps, data=st.data())
def test_pick_at_the_ends(chances_: dict[str, float], data: st.DataObject) -> None:
    costs = {m: data.draw(st.floats(0, 10)) for m in chances_}
    cheapest = min(costs.values())
    assert costs[pick(chances_, costs, 0.0).model] == cheapest
    best = pick(chances_, costs, 1.0)
    assert chances_[best.model] >= max(chances_.values()) - 1e-12  # pick() treats chances within 1e-12 as tied


@given(seed=st.integers(0, 10_000), m=st.integers(2, 4))
def test_expensive_picks_grow_with_the_knob_and_match_pick(seed: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    models = [f"m{j}" for j in range(m)]
    ch = rng.random((60, m))
    costs = {f"m{j}": float(j) for j in range(m)}  # m0 cheapest
    quality = (rng.random((60, m)) < 0.5).astype(float)
    cost = np.tile(np.arange(m, dtype=float), (60, 1))
    previous = -1.0
    for knob in np.linspace(0, 1, 11):
        _, mean_cost, shares = pick_rows(ch, quality, cost, models, costs, float(knob))
        assert shares[0] <= 100.0
        assert mean_cost >= previous - 1e-9  # dearer on average as the bar rises
        previous = mean_cost
        for i in range(0, 60, 13):
            one = pick(dict(zip(models, ch[i].tolist(), strict=True)), costs, float(knob)).model
            assert float(quality[i, models.index(one)]) in (0.0, 1.0)
    # two models: the expensive model's share never falls as the knob rises
    two = ch[:, :2]
    shares_strong = [pick_rows(two, quality[:, :2], cost[:, :2], models[:2], costs, k)[2][1]
                     for k in np.linspace(0, 1, 21)]
    assert all(b >= a for a, b in itertools.pairwise(shares_strong))


def test_pick_rows_agrees_with_pick() -> None:
    rng = np.random.default_rng(0)
    models = ["x", "y", "z"]
    costs = {"x": 0.5, "y": 0.1, "z": 2.0}
    ch = rng.random((200, 3))
    quality = rng.random((200, 3))
    cost = np.tile([0.5, 0.1, 2.0], (200, 1))
    for knob in (0.0, 0.3, 0.8, 1.0):
        acc, _, _ = pick_rows(ch, quality, cost, models, costs, knob)
        picked = [models.index(pick(dict(zip(models, row.tolist(), strict=True)), costs, knob).model) for row in ch]
        assert acc == pytest.approx(quality[np.arange(200), picked].mean() * 100)


def test_text_features_are_finite_and_see_code_and_numbers() -> None:
    f = text_features(["", "def f(x):\n    return x == 1;", "What is 12 + 30?", "A) yes\nB) no"])
    assert f.shape == (4, len(FEATURES)) and np.all(np.isfinite(f))
    assert f[1, 6] > f[2, 6] and f[2, 3] > f[1, 3]


def _jsonl(path: Path, n: int = 80, models: Sequence[str] = ("big", "small")) -> Path:
    prompts, y = planted(n, 11, models)
    cost = {m: 10.0 ** -j for j, m in enumerate(models)}
    with path.open("w") as fh:
        for p, row in zip(prompts, y, strict=True):
            fh.write(json.dumps({"prompt": p, "models": {m: {"quality": float(q), "cost": cost[m]}
                                                         for m, q in zip(models, row, strict=True)}}) + "\n")
    return path


@pytest.fixture
def fake_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    import podium.evaluation.embedding_cache as cache

    monkeypatch.setattr(cache, "embed_prompts", fake_embed)


def test_cli_router_train_and_eval_exit_codes(tmp_path: Path, fake_embedder: None) -> None:
    data = _jsonl(tmp_path / "toy.jsonl")
    runner = CliRunner()
    out = tmp_path / "r.npz"
    ok = runner.invoke(app, ["router", "train", str(data), "--kind", "logistic", "--knob", "0.6", "--out", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "APGR" in ok.output and "CPT(50%)" in ok.output and str(out) in ok.output
    router = load_router(out)
    assert router.kind == "logistic" and router.knob == 0.6
    assert json.loads(json.dumps(router.info))["metrics"]["folds"] == 5
    for args in (["--kind", "forest"], ["--knob", "1.5"], ["--folds", "1"]):
        bad = runner.invoke(app, ["router", "train", str(data), "--out", str(out), *args])
        assert bad.exit_code == 2 and bad.output.count("\n") == 1, (args, bad.output)
    missing = runner.invoke(app, ["router", "train", str(tmp_path / "nope.jsonl"), "--out", str(out)])
    assert missing.exit_code == 2
    ev = runner.invoke(app, ["eval", str(data), "--router", "knn,logistic", "--out", str(tmp_path / "ev")])
    assert ev.exit_code == 0, ev.output
    assert "| knn |" in ev.output and "| logistic |" in ev.output and "| length |" in ev.output
    other = _jsonl(tmp_path / "other.jsonl", 60)
    tr = runner.invoke(app, ["eval", str(data), "--router", "knn", "--train-on", str(other), "--out",
                             str(tmp_path / "ev")])
    assert tr.exit_code == 0 and "knn (trained on other), not cross-fitted" in tr.output, tr.output
    assert runner.invoke(app, ["eval", str(data), "--router", "forest"]).exit_code == 2
    assert runner.invoke(app, ["eval", str(data), "--train-on", str(other)]).exit_code == 2


def test_three_models_report_the_pick_at_each_knob(tmp_path: Path, fake_embedder: None) -> None:
    path = _jsonl(tmp_path / "three.jsonl", 120, ("big", "mid", "small"))
    d = load_dataset(path)
    assert set(d.all_models) == {"big", "mid", "small"} and d.weak == "small" and d.quality_matrix().shape == (120, 3)
    assert d.subset([0, 5]).quality_matrix().shape == (2, 3)
    router = LearnedEvalRouter("logistic", EmbeddingTable(fake_embed))
    evaluate(d, [router], folds=3, seed=0, oracle=False)
    rows = pick_report(d, "logistic", router.chances_for(d), router.models)
    by_name = {r.name: r for r in rows}
    assert by_name["logistic knob 0"].shares["small"] == 100.0  # knob 0: the cheapest model always
    assert by_name["logistic knob 1"].accuracy >= by_name["logistic knob 0"].accuracy
    assert by_name["oracle (reads the answers)"].accuracy >= max(r.accuracy for r in rows) - 1e-9
    result = CliRunner().invoke(app, ["eval", str(path), "--router", "logistic", "--folds", "3", "--out",
                                      str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    assert "logistic knob 0.9" in result.output and "always mid" in result.output


def test_save_router_refuses_a_target_that_is_not_a_regular_file(tmp_path: Path, fake_embedder: None) -> None:
    """Issue 12 review: ``--out /dev/null`` (as root) replaced the device with a file. A FIFO and a symlink
    stand in for it here (never the real /dev/null); both are left as they were."""
    from learned_fixtures import train_knn

    good = train_knn(tmp_path / "good.npz")
    router = load_router(good)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link.npz"
    link.symlink_to(good)
    for target in (fifo, link, tmp_path):
        with pytest.raises(ConfigError, match="refusing to write the router file"):
            save_router(router, target)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and link.is_symlink()
    result = CliRunner().invoke(app, ["router", "train", str(_jsonl(tmp_path / "toy.jsonl")), "--out", str(fifo)])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert save_router(router, tmp_path / "again.npz").is_file() and not list(tmp_path.glob(".*.tmp"))


def test_load_router_refuses_non_files_bombs_and_empty_outcomes(tmp_path: Path) -> None:
    from learned_fixtures import train_knn

    good = train_knn(tmp_path / "good.npz")
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    to_fifo = tmp_path / "to_fifo.npz"
    to_fifo.symlink_to(fifo)
    for bad in (fifo, to_fifo, tmp_path):
        with pytest.raises(ConfigError, match="is not a regular file"):
            load_router(bad)
    text = tmp_path / "text.npz"
    text.write_text("hello, not a zip\n")
    with pytest.raises(ConfigError, match=r"not a router file \(not an .npz archive\)"):
        load_router(text)
    with np.load(good) as npz:
        arrays = {name: npz[name] for name in npz.files}
    # a zip bomb: a few KB compressed, gigabytes declared
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, a in arrays.items():
            if name != "vectors":
                buf = io.BytesIO()
                np.lib.format.write_array(buf, a)
                archive.writestr(name + ".npy", buf.getvalue())
        with archive.open("vectors.npy", "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(
                fh, {"descr": "<f8", "fortran_order": False, "shape": (700_000, 384)})
            fh.write(b"\0" * (1 << 20))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ConfigError, match=r"bomb.npz declares arrays of more than 512 MB"):
        load_router(bomb)
    nan = tmp_path / "nan.npz"
    np.savez(nan, **{**arrays, "outcomes": np.full_like(arrays["outcomes"], np.nan)})
    with pytest.raises(ConfigError, match="no observed outcome"):
        load_router(nan)

"""A/B experiments tried from outside: through the real gateway in-process (ASGI transport), on real
SQLite and PostgreSQL ledgers, with the CLI run as a user would.

Sticky assignment (Hypothesis over user ids), a split within binomial bounds, the same arm on two
gateway instances sharing one ledger, a scoped key that never reaches an out-of-scope arm, the arm in
the ledger, the trace and the header, the report's intervals against scipy (or closed forms), and bad
config refused with a line naming it."""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from podium.client import Podium
from podium.config import load_settings
from podium.errors import ConfigError
from podium.experiments import stats
from podium.experiments.assignment import bucket, pick
from podium.ledger import RequestEnd, RequestStart, SQLiteLedger
from podium.ledger.experiment_report import experiment_report, read_sqlite
from podium.server.app import create_app
from podium.server.keys import KeyStore

PODIUM = Path(sys.executable).with_name("podium")
ADMIN = "admin-secret-0123456789"


def config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    models = {"big": ("big-1", 10.0, "advanced"), "small": ("small-1", 0.5, "fast"),
              "other": ("other-1", 1.0, "standard")}
    data: dict[str, Any] = {
        "providers": {"canned": {"kind": "scripted", "options": {"answers": {
            "big-1": "Paris is the capital of France.", "small-1": "Paris", "other-1": "Paris."}}},
            "local": {"enabled": False}},
        "models": {name: {"provider": "canned", "model_id": mid, "context_window": 8000, "input_price": price,
                          "output_price": price, "tier": tier, "region": "us", "max_output_tokens": 100}
                   for name, (mid, price, tier) in models.items()},
        "routing": {"default": "other"},
        "resilience": {"retries": {"max_attempts": 1}},
        "experiments": {"cheaper-routine": {
            "split": {"control": 50, "candidate": 50}, "sticky": "user",
            "arms": {"control": {"model": "big"}, "candidate": {"model": "small"}},
            "applies_to": {"task_types": ["routine"]}}},
        "gateway": {"admin_key": ADMIN, "keys_path": str(tmp_path / "keys.sqlite3"), "auth": "optional"},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
    }
    data.update(extra)
    return data


async def gateway(tmp_path: Path, data: dict[str, Any]) -> tuple[httpx.AsyncClient, Podium]:
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(data))
    settings_ = load_settings(path)
    podium = Podium(settings_)
    app = create_app(settings_, podium=podium)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw"), podium


def body(user: str | None, task: str | None = "routine", **more: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], **more}
    if user is not None:
        data["user"] = user
    if task is not None:
        data["metadata"] = {"task_type": task}
    return data


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


# --- assignment: a pure function of the experiment and the unit -----------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.text(max_size=12), weight=st.integers(min_value=1, max_value=99))
def test_split_is_within_binomial_bounds_for_any_user_ids(prefix: str, weight: int):
    split = {"control": float(weight), "candidate": float(100 - weight)}
    n = 2000
    counts = Counter(pick(split, bucket("exp", f"user:{prefix}/{i}")) for i in range(n))
    p = weight / 100
    sigma = math.sqrt(n * p * (1 - p))
    assert abs(counts["control"] - n * p) <= 5 * sigma, (counts, p)


@settings(max_examples=200, deadline=None)
@given(user=st.text(min_size=1, max_size=40), name=st.text(min_size=1, max_size=20))
def test_assignment_is_sticky_and_depends_only_on_name_and_user(user: str, name: str):
    split = {"a": 1.0, "b": 2.0, "c": 3.0}
    first = pick(split, bucket(name, user))
    assert all(pick(split, bucket(name, user)) == first for _ in range(3))
    assert 0.0 <= bucket(name, user) < 1.0


def test_buckets_are_spread_evenly():
    points = [bucket("exp", f"u{i}") for i in range(10_000)]
    deciles = Counter(int(p * 10) for p in points)
    assert all(900 < deciles[d] < 1100 for d in range(10)), deciles


# --- through the gateway ---------------------------------------------------------------------------------
async def test_a_user_stays_in_one_arm_on_two_gateway_instances_sharing_one_ledger(tmp_path: Path):
    data = config(tmp_path)
    one, podium_one = await gateway(tmp_path, data)
    two, podium_two = await gateway(tmp_path, data)
    try:
        seen: dict[str, set[str]] = {}
        for i in range(40):
            user = f"user-{i}"
            for client in (one, two, one):
                answered = await client.post("/v1/chat/completions", json=body(user))
                assert answered.status_code == 200, answered.text
                header = answered.headers["x-podium-experiment"]
                seen.setdefault(user, set()).add(header)
                arm = header.split("/")[1]
                assert answered.headers["x-podium-model"] == ("big" if arm == "control" else "small")
        assert all(len(arms) == 1 for arms in seen.values()), seen
        arms = Counter(next(iter(a)) for a in seen.values())
        assert set(arms) == {"cheaper-routine/control", "cheaper-routine/candidate"}
        # requests of other task types, or naming a model, are not in the experiment
        plain = await one.post("/v1/chat/completions", json=body("user-1", task="chat"))
        assert "x-podium-experiment" not in plain.headers
        named = await one.post("/v1/chat/completions", json=body("user-1", model="other"))
        assert "x-podium-experiment" not in named.headers and named.headers["x-podium-model"] == "other"
    finally:
        for client, podium in ((one, podium_one), (two, podium_two)):
            await client.aclose()
            await podium.aclose()
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        rows = conn.execute("SELECT user_id, experiment, arm, model FROM requests WHERE experiment IS NOT NULL"
                            ).fetchall()
        others = conn.execute("SELECT COUNT(*) FROM requests WHERE experiment IS NULL").fetchone()[0]
    assert len(rows) == 120 and others == 2
    by_user: dict[str, set[str]] = {}
    for user, experiment, arm, model in rows:
        assert experiment == "cheaper-routine"
        assert model == ("big" if arm == "control" else "small")
        by_user.setdefault(user, set()).add(arm)
    assert all(len(a) == 1 for a in by_user.values())
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        plan = " ".join(str(r) for r in conn.execute(
            "EXPLAIN QUERY PLAN SELECT arm FROM requests WHERE experiment = 'x'").fetchall())
    assert "requests_experiment" in plan


async def test_the_trace_and_the_stream_say_which_arm(tmp_path: Path):
    client, podium = await gateway(tmp_path, config(tmp_path))
    try:
        answered = await client.post("/v1/chat/completions", json=body("alice"))
        header = answered.headers["x-podium-experiment"]
        streamed = await client.post("/v1/chat/completions", json=body("alice", stream=True))
        assert streamed.status_code == 200
        assert streamed.headers["x-podium-experiment"] == header
        direct = await podium.chat("hi", metadata={"task_type": "routine", "user": "alice"})
        assert direct.trace is not None and direct.trace.decision is not None
        decision = direct.trace.decision
        assert f"{decision.experiment}/{decision.arm}" == header
        assert decision.rationale.startswith(f"experiment 'cheaper-routine': arm '{decision.arm}' (sticky by user")
        # naming the experiment as the model puts any request in it; an unknown one is a 404
        named = await client.post("/v1/chat/completions", json=body("alice", task=None,
                                                                        model="experiment:cheaper-routine"))
        assert named.headers["x-podium-experiment"] == header
        missing = await client.post("/v1/chat/completions", json=body("alice", model="experiment:nope"))
        assert missing.status_code == 404 and "experiment 'nope' does not exist" in missing.json()["error"]["message"]
    finally:
        await client.aclose()
        await podium.aclose()


async def test_sticky_by_key_hashes_the_key_and_an_anonymous_request_is_not_sticky(tmp_path: Path):
    data = config(tmp_path)
    data["experiments"]["cheaper-routine"]["sticky"] = "key"
    client, podium = await gateway(tmp_path, data)
    keys = KeyStore(tmp_path / "keys.sqlite3")
    try:
        secret, _ = keys.create("team-a")
        arms = set()
        for i in range(10):  # different users, one key: one arm
            answered = await client.post("/v1/chat/completions", json=body(f"u{i}"), headers=bearer(secret))
            arms.add(answered.headers["x-podium-experiment"])
        assert len(arms) == 1
        direct = await podium.chat("hi", metadata={"task_type": "routine"})  # no user, no key
        assert direct.trace is not None and direct.trace.decision is not None
        assert "not sticky: no user or key" in direct.trace.decision.rationale
    finally:
        await client.aclose()
        await podium.aclose()


async def test_a_scoped_key_never_reaches_an_out_of_scope_arm(tmp_path: Path):
    client, podium = await gateway(tmp_path, config(tmp_path))
    keys = KeyStore(tmp_path / "keys.sqlite3")
    canned = podium.registry.get_provider("canned")
    try:
        only_big, _ = keys.create("big-only", models=["auto", "big"])
        only_other, _ = keys.create("other-only", models=["auto", "other"])
        canned.calls.clear()  # type: ignore[attr-defined]
        fell_back = 0
        for i in range(60):
            answered = await client.post("/v1/chat/completions", json=body(f"user-{i}"), headers=bearer(only_big))
            assert answered.status_code == 200, answered.text
            assert answered.headers["x-podium-model"] == "big"
            assert answered.headers["x-podium-experiment"] == "cheaper-routine/control"
            fell_back += bucket("cheaper-routine", f"user:user-{i}") >= 0.5
        assert fell_back > 10  # users assigned to the candidate were among them, and were served by control
        # neither arm in scope: routed as if there were no experiment, within the scope
        for i in range(10):
            answered = await client.post("/v1/chat/completions", json=body(f"user-{i}"), headers=bearer(only_other))
            assert answered.status_code == 200
            assert answered.headers["x-podium-model"] == "other" and "x-podium-experiment" not in answered.headers
        assert "small-1" not in {model_id for model_id, _ in canned.calls}  # type: ignore[attr-defined]
        # a scoped key may not name the experiment
        named = await client.post("/v1/chat/completions", json=body("u", model="experiment:cheaper-routine"),
                                  headers=bearer(only_big))
        assert named.status_code == 403
        policy = podium.policies.build(None, models=["auto", "big"])
        routed = podium.experiments.route(podium.prepare("hi", {"metadata": {"task_type": "routine",
                                                                           "user": "user-1"}}), policy)
        assert routed is not None and routed.model is not None and routed.model.name == "big"
        if bucket("cheaper-routine", "user:user-1") >= 0.5:
            assert "arm 'candidate' may not serve it" in routed.decision.rationale
            assert "so the control arm 'control' serves it" in routed.decision.rationale
    finally:
        await client.aclose()
        await podium.aclose()


async def test_a_confidential_request_never_reaches_an_arm_outside_its_regions(tmp_path: Path):
    data = config(tmp_path)
    data["models"]["eu-small"] = {**data["models"]["small"], "region": "eu"}
    data["experiments"]["cheaper-routine"]["arms"] = {"control": {"model": "eu-small"}, "candidate": {"model": "small"}}
    data["routing"]["regions_by_sensitivity"] = {"confidential": ["eu"]}
    client, podium = await gateway(tmp_path, data)
    try:
        for i in range(30):
            payload = body(f"user-{i}")
            payload["metadata"]["sensitivity"] = "confidential"
            answered = await client.post("/v1/chat/completions", json=payload, headers={"x-podium-sensitivity":
                                                                                         "confidential"})
            assert answered.status_code == 200, answered.text
            assert answered.headers["x-podium-model"] == "eu-small"
    finally:
        await client.aclose()
        await podium.aclose()


async def test_strategy_and_preset_arms(tmp_path: Path):
    data = config(tmp_path, strategies={"pair": {"type": "vote", "models": ["small", "other"]}})
    data["experiments"] = {"policy": {"split": {"control": 1, "vote": 1, "budget": 1},
                                      "arms": {"control": {"model": "big"}, "vote": {"strategy": "pair"},
                                               "budget": {"preset": "budget"}}}}
    client, podium = await gateway(tmp_path, data)
    try:
        seen = {}
        for i in range(40):
            answered = await client.post("/v1/chat/completions", json=body(f"u{i}", task=None))
            assert answered.status_code == 200, answered.text
            seen[answered.headers["x-podium-experiment"]] = answered.headers["x-podium-model"]
        assert set(seen) == {"policy/control", "policy/vote", "policy/budget"}
        assert seen["policy/control"] == "big"
    finally:
        await client.aclose()
        await podium.aclose()


async def test_the_arm_is_in_the_postgres_ledger(tmp_path: Path, dsn: str):
    client, podium = await gateway(tmp_path, config(tmp_path, ledger={"postgres_dsn": dsn}))
    try:
        headers = {}
        for i in range(6):
            answered = await client.post("/v1/chat/completions", json=body(f"pg-{i}"))
            headers[answered.headers["x-request-id"]] = answered.headers["x-podium-experiment"]
    finally:
        await client.aclose()
        await podium.aclose()
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT request_id, experiment, arm FROM requests").fetchall()
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'requests'")}
    assert {rid: f"{e}/{a}" for rid, e, a in rows} == headers
    assert "requests_experiment" in indexes


# --- the report's intervals -----------------------------------------------------------------------------
def test_t_quantile_and_intervals_against_scipy_or_closed_forms():
    known = {(0.975, 1): 12.706204736174698, (0.975, 10): 2.2281388519649385, (0.975, 30): 2.0422724563012373,
             (0.95, 5): 2.0150483726691575, (0.025, 4): -2.7764451051977987}
    for (p, df), value in known.items():
        assert stats.t_ppf(p, df) == pytest.approx(value, rel=1e-9)
    # Wilson, closed form: 3 of 10
    w = stats.wilson(3, 10)
    z = stats.Z95
    centre = (0.3 + z * z / 20) / (1 + z * z / 10)
    half = z * math.sqrt(0.3 * 0.7 / 10 + z * z / 400) / (1 + z * z / 10)
    assert (w.low, w.high) == pytest.approx((centre - half, centre + half))
    assert stats.wilson(0, 20).low == 0.0 and stats.wilson(20, 20).high == 1.0
    scipy_stats = pytest.importorskip("scipy.stats") if "scipy" in sys.modules or _has_scipy() else None
    if scipy_stats is not None:
        for df in (1, 2, 3.5, 7, 29, 200):
            assert stats.t_ppf(0.975, df) == pytest.approx(scipy_stats.t.ppf(0.975, df), rel=1e-9)
        ci = scipy_stats.binomtest(3, 10).proportion_ci(method="wilson")
        assert (w.low, w.high) == pytest.approx((ci.low, ci.high))


def _has_scipy() -> bool:
    import importlib.util

    return importlib.util.find_spec("scipy") is not None


async def test_report_on_generated_data_with_a_known_difference(tmp_path: Path):
    import numpy as np

    rng = np.random.default_rng(7)
    path = tmp_path / "ledger.sqlite3"
    ledger = SQLiteLedger(path)
    truth = {"control": (0.10, 0.010, 800.0), "candidate": (0.02, 0.002, 400.0)}  # error rate, cost, latency
    data: dict[str, dict[str, list[float]]] = {arm: {"cost": [], "latency": [], "error": []} for arm in truth}
    for i in range(1200):
        arm = "control" if i % 2 else "candidate"
        rate, cost_mean, latency_mean = truth[arm]
        failed = bool(rng.random() < rate)
        cost = float(rng.normal(cost_mean, cost_mean / 4))
        latency = float(rng.exponential(latency_mean))
        rid = f"r{i}"
        await ledger.start_request(RequestStart(rid, time.time(), None, task_type="routine", experiment="exp",
                                                arm=arm))
        await ledger.finish_request(RequestEnd(rid, time.time(), "error" if failed else "ok", "m", "p", 1, 1, cost,
                                               latency, 1))
        data[arm]["cost"].append(cost)
        data[arm]["error"].append(float(failed))
        if not failed:
            data[arm]["latency"].append(latency)
        if i % 3 == 0:
            await ledger.record_feedback(rid, 1.0 if arm == "candidate" else 0.5, None, None)
        if i % 5 == 0:  # scores outside 0..1 are stored but left out of the report's feedback mean
            await ledger.record_feedback(rid, (1000.0, -50.0, 1.5)[i % 3], None, None)
    await ledger.start_request(RequestStart("elsewhere", time.time(), None, experiment="other", arm="control"))
    await ledger.aclose()
    report = read_sqlite(path, lambda q: experiment_report(q, "exp"))
    control, candidate = report.arms
    assert control.arm == "control" and control.control and candidate.arm == "candidate"
    assert control.requests == candidate.requests == 600
    for arm in (control, candidate):
        d = data[arm.arm]
        assert arm.errors == int(sum(d["error"]))
        assert arm.mean_cost.value == pytest.approx(float(np.mean(d["cost"])))
        half = stats.t_ppf(0.975, 599) * float(np.std(d["cost"], ddof=1)) / math.sqrt(600)
        assert (arm.mean_cost.low, arm.mean_cost.high) == pytest.approx((arm.mean_cost.value - half,
                                                                        arm.mean_cost.value + half))
        assert arm.p50_latency_ms.value == pytest.approx(float(np.median(d["latency"])))
        assert arm.p50_latency_ms.low < arm.p50_latency_ms.value < arm.p50_latency_ms.high
        assert arm.mean_cost.low < truth[arm.arm][1] < arm.mean_cost.high
    diff = candidate.vs_control
    # the true differences: error -8 points, cost -0.008, median latency -(800-400)·ln 2 ≈ -277 ms
    assert diff["error_rate"].low < -0.08 < diff["error_rate"].high and diff["error_rate"].excludes_zero
    assert diff["mean_cost"].low < -0.008 < diff["mean_cost"].high and diff["mean_cost"].excludes_zero
    assert diff["p50_latency_ms"].low < -400 * math.log(2) < diff["p50_latency_ms"].high
    assert diff["feedback"].value == pytest.approx(0.5) and candidate.feedback_count == 200
    assert report.to_dict()["arms"][1]["vs_control"]["mean_cost"]["excludes_zero"] is True
    again = read_sqlite(path, lambda q: experiment_report(q, "exp"))  # seeded: the same intervals every time
    assert again.arms[1].vs_control["p95_latency_ms"] == diff["p95_latency_ms"]


async def test_no_difference_gives_intervals_that_include_zero(tmp_path: Path):
    path = tmp_path / "ledger.sqlite3"
    ledger = SQLiteLedger(path)
    for i in range(400):
        rid = f"r{i}"
        await ledger.start_request(RequestStart(rid, time.time(), None, experiment="same", arm=("a", "b")[i % 2]))
        await ledger.finish_request(RequestEnd(rid, time.time(), "error" if i % 10 < 2 else "ok", "m", "p", 1, 1,
                                               0.001 * (i % 7), 100.0 + (i * 37) % 50, 1))
    await ledger.aclose()
    report = read_sqlite(path, lambda q: experiment_report(q, "same", control="a"))
    assert [a.arm for a in report.arms] == ["a", "b"]
    assert not report.arms[1].vs_control["error_rate"].excludes_zero


# --- config and CLI -------------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "fragment"), [
    (lambda e: e["split"].update(control=0), "experiments.x.split.control: the weight of arm 'control' must be"),
    (lambda e: e["split"].update(control=-3), "experiments.x.split.control"),
    (lambda e: e["arms"]["candidate"].update(model="gpt-nope"), "experiments.x.arms.candidate.model"),
    (lambda e: e["arms"].update(candidate={"strategy": "missing"}), "experiments.x.arms.candidate.strategy"),
    (lambda e: e["arms"].update(candidate={"model": "small", "preset": "budget"}), "exactly one of model"),
    (lambda e: e["split"].pop("candidate"), "arm 'candidate' has no weight"),
    (lambda e: e.update(control="base"), "experiments.x.control"),
    (lambda e: e.update(sticky="session"), "experiments.x.sticky"),
])
def test_bad_experiment_config_is_a_config_error_naming_it(tmp_path: Path, change: Any, fragment: str):
    exp = {"split": {"control": 1, "candidate": 1}, "arms": {"control": {"model": "big"},
                                                            "candidate": {"model": "small"}}}
    change(exp)
    data = config(tmp_path, experiments={"x": exp})
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert fragment in str(caught.value)


def test_cli_report_and_a_bad_config_at_the_cli(tmp_path: Path):
    data = config(tmp_path)
    (tmp_path / "podium.yaml").write_text(json.dumps(data))
    env = {"PATH": "/usr/bin:/bin", "XDG_DATA_HOME": str(tmp_path / "d"), "COLUMNS": "200", "HOME": str(tmp_path)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(PODIUM), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)

    import asyncio

    async def traffic() -> None:
        async with Podium(load_settings(tmp_path / "podium.yaml")) as podium:
            for i in range(30):
                await podium.chat("hi", metadata={"task_type": "routine", "user": f"u{i}"})

    asyncio.run(traffic())
    shown = run("report", "--experiment", "cheaper-routine", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert [a["arm"] for a in report["arms"]] == ["control", "candidate"]
    assert sum(a["requests"] for a in report["arms"]) == 30
    table = run("report", "--experiment", "cheaper-routine")
    assert table.returncode == 0 and "against the control arm 'control'" in table.stdout
    assert "feedback: the mean of scores in 0..1" in table.stdout
    for args, said in ((("--experiment", "nope"), "no experiment named 'nope' in the config or the ledger"),
                       (("--shadow", "nope"), "no shadow trial named 'nope' in the config or the ledger"),
                       (("--experiment", "cheaper-routine", "--since-hours", "-5"), "positive number of hours")):
        refused = run("report", *args)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1 and said in lines[0], (args, refused.stderr)
    data["experiments"]["cheaper-routine"]["split"]["candidate"] = 0
    (tmp_path / "podium.yaml").write_text(json.dumps(data))
    bad = run("report", "--experiment", "cheaper-routine")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "experiments.cheaper-routine.split.candidate" in lines[0], bad.stderr

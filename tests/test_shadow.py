"""Shadow trials tried from outside: the served answer is never delayed or changed (a candidate behind a
real OpenAI-wire server that hangs), failures are recorded not raised, the sampled share and the queue
bound hold, the key's scope holds, shutdown with shadows pending returns at once, and the report."""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium import errors
from podium.client import Podium
from podium.config import load_settings
from podium.errors import ConfigError
from podium.ledger.experiment_report import read_sqlite, shadow_report
from podium.providers.scripted import ScriptedProvider, Step
from podium.server.app import create_app
from podium.server.keys import KeyStore
from servers.http_server import Reply, WireServer

HI = [{"role": "user", "content": "What is 6 times 7?"}]


def config(tmp_path: Path, shadow: dict[str, Any], hang_url: str | None = None) -> dict[str, Any]:
    models: dict[str, Any] = {
        name: {"provider": "canned", "model_id": f"{name}-1", "context_window": 8000, "input_price": price,
               "output_price": price, "tier": "fast", "region": "us", "max_output_tokens": 100}
        for name, price in (("served", 10.0), ("cheap", 0.5), ("judge", 1.0), ("wrong", 0.1))}
    providers: dict[str, Any] = {
        "canned": {"kind": "scripted", "options": {"answers": {
            "served-1": "The answer is 42.", "cheap-1": "42", "judge-1": "9\nsame number", "wrong-1": "41"}}},
        "local": {"enabled": False}}
    if hang_url is not None:
        providers["hangs"] = {"kind": "openai", "base_url": hang_url + "/v1", "api_key": "sk-x", "timeout": 60}
        models["local-qwen"] = {**models["cheap"], "provider": "hangs", "model_id": "qwen"}
    return {"providers": providers, "models": models, "routing": {"default": "served"},
            "resilience": {"retries": {"max_attempts": 1}},
            "gateway": {"auth": "optional", "keys_path": str(tmp_path / "keys.sqlite3")},
            "ledger": {"path": str(tmp_path / "ledger.sqlite3")}, "shadow": shadow}


def open_podium(tmp_path: Path, data: dict[str, Any]) -> Podium:
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(data))
    return Podium(load_settings(path))


def rows(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def hanging() -> Iterator[WireServer]:
    server = WireServer(lambda request: Reply(fault="hang")).start()
    yield server
    server.stop()


async def settle(podium: Podium, name: str) -> None:
    """Wait until the trial's queue is empty and its workers idle."""
    trial = podium.shadows.trials[name]
    assert trial.queue is not None
    await asyncio.wait_for(trial.queue.join(), 10)


# --- never delays, never changes, never returned ---------------------------------------------------------
async def test_a_hanging_candidate_never_delays_the_served_answer_and_shutdown_does_not_wait(
        tmp_path: Path, hanging: WireServer):
    data = config(tmp_path, {"to-local": {"candidate": "local-qwen", "sample": 1.0, "timeout": 30}},
                  hang_url=hanging.url)
    podium = open_podium(tmp_path, data)
    app = create_app(podium.settings, podium=podium)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    (tmp_path / "alone").mkdir()
    alone = open_podium(tmp_path / "alone", config(tmp_path / "alone", {}))  # the same request without a shadow
    try:
        expected = await alone.chat("What is 6 times 7?")
        for _ in range(3):
            started = time.perf_counter()
            answered = await http.post("/v1/chat/completions", json={"messages": HI})
            assert time.perf_counter() - started < 2.0  # the candidate hangs for 30 s
            assert answered.status_code == 200
            assert answered.json()["choices"][0]["message"]["content"] == expected.text == "The answer is 42."
            assert answered.headers["x-podium-model"] == "served"
        streamed = await http.post("/v1/chat/completions", json={"messages": HI, "stream": True})
        assert "The answer is 42." in "".join(
            json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
            for line in streamed.text.splitlines() if line.startswith("data: {"))
        await asyncio.sleep(0.2)
        assert len(hanging.requests) >= 1  # the shadow call did reach the candidate, and hangs there
        assert podium.shadows.stats("to-local").sampled == 4
    finally:
        await http.aclose()
        started = time.perf_counter()
        await podium.aclose()  # pending shadows: cancelled and recorded, never waited for
        assert time.perf_counter() - started < 3.0
        await alone.aclose()
    found = rows(tmp_path, "SELECT status, candidate, served_model, error FROM shadow_trials")
    assert len(found) == 4
    assert {r[0] for r in found} == {"cancelled"} and {r[1] for r in found} == {"local-qwen"}
    assert {r[2] for r in found} == {"served"}


async def test_a_candidate_that_times_out_or_fails_is_recorded_not_raised(tmp_path: Path, hanging: WireServer):
    data = config(tmp_path, {"slow": {"candidate": "local-qwen", "sample": 1.0, "timeout": 0.3},
                             "broken": {"candidate": "wrong", "sample": 1.0}}, hang_url=hanging.url)
    podium = open_podium(tmp_path, data)
    canned = podium.registry.get_provider("canned")
    assert isinstance(canned, ScriptedProvider)
    canned.set_script("wrong-1", Step(error=errors.ProviderUnavailableError("down for maintenance")))
    try:
        answer = await podium.chat("What is 6 times 7?")
        assert answer.text == "The answer is 42."
        await settle(podium, "slow")
        await settle(podium, "broken")
    finally:
        await podium.aclose()
    found = dict(rows(tmp_path, "SELECT trial, status || ': ' || error FROM shadow_trials"))
    assert found["slow"] == "error: no answer within 0.3 s"
    assert found["broken"].startswith("error: ") and "down for maintenance" in found["broken"]
    assert podium.shadows.stats("slow").failed == 1 and podium.shadows.stats("broken").failed == 1


# --- comparing ------------------------------------------------------------------------------------------
async def test_answers_are_compared_by_their_extracted_answer_and_by_a_judge(tmp_path: Path):
    data = config(tmp_path, {"cheap": {"candidate": "cheap", "sample": 1.0},
                             "wrong": {"candidate": "wrong", "sample": 1.0},
                             "judged": {"candidate": "wrong", "sample": 1.0, "compare": "judge:judge"}})
    podium = open_podium(tmp_path, data)
    try:
        answer = await podium.chat("What is 6 times 7?", metadata={"task_type": "routine"})
        for name in ("cheap", "wrong", "judged"):
            await settle(podium, name)
    finally:
        await podium.aclose()
    found = {r[0]: r[1:] for r in rows(tmp_path, "SELECT trial, status, agreed, score, served_cost, candidate_cost, "
                                                 "judge_cost, task_type, request_id, shadow_id FROM shadow_trials")}
    assert found["cheap"][:3] == ("ok", 1, 1.0)  # "The answer is 42." and "42": the same answer
    assert found["wrong"][:3] == ("ok", 0, 0.0)
    assert found["judged"][:3] == ("ok", 1, 0.9)  # the judge said 9 of 10
    assert found["judged"][5] > 0 and found["cheap"][5] == 0
    assert found["cheap"][3] == pytest.approx(answer.cost) and 0 < found["cheap"][4] < answer.cost
    assert {r[6] for r in found.values()} == {"routine"} and {r[7] for r in found.values()} == {answer.id}
    # the shadow's own calls are in the ledger (each model's cost), under ids with no request row
    shadow_ids = {r[8] for r in found.values()}
    calls = rows(tmp_path, "SELECT request_id, model FROM calls")
    assert {rid for rid, _ in calls} - {answer.id} == shadow_ids
    assert rows(tmp_path, "SELECT COUNT(*) FROM requests") == [(1,)]
    assert podium.ledger is not None
    assert not podium.ledger._seq  # type: ignore[attr-defined]  # nothing left open for the shadow ids


# --- sampling, queue, scope -----------------------------------------------------------------------------
async def test_the_sampled_share_is_within_binomial_bounds_and_task_types_filter(tmp_path: Path):
    data = config(tmp_path, {"some": {"candidate": "cheap", "sample": 0.3, "task_types": ["routine"],
                                      "queue": 1000}})
    podium = open_podium(tmp_path, data)
    n = 400
    try:
        for i in range(n):
            await podium.chat("What is 6 times 7?", metadata={"task_type": "routine" if i % 2 == 0 else "code"})
        await settle(podium, "some")
    finally:
        await podium.aclose()
    sampled = podium.shadows.stats("some").sampled
    eligible, p = n // 2, 0.3
    assert abs(sampled - eligible * p) <= 5 * math.sqrt(eligible * p * (1 - p)), sampled
    assert rows(tmp_path, "SELECT DISTINCT task_type FROM shadow_trials") == [("routine",)]
    assert rows(tmp_path, "SELECT COUNT(*) FROM shadow_trials WHERE status = 'ok'") == [(sampled,)]


async def test_the_queue_bound_holds_and_what_it_drops_is_counted(tmp_path: Path, hanging: WireServer):
    data = config(tmp_path, {"bounded": {"candidate": "local-qwen", "sample": 1.0, "concurrency": 1, "queue": 2,
                                         "timeout": 30}}, hang_url=hanging.url)
    podium = open_podium(tmp_path, data)
    try:
        for _ in range(10):
            await podium.chat("What is 6 times 7?")
            await asyncio.sleep(0)  # the worker takes its first job
        stats = podium.shadows.stats("bounded")
        trial = podium.shadows.trials["bounded"]
        assert trial.queue is not None and trial.queue.qsize() <= 2
        assert stats.sampled == 10 and stats.dropped == 10 - 1 - 2
    finally:
        await podium.aclose()
    statuses = sorted(r[0] for r in rows(tmp_path, "SELECT status FROM shadow_trials"))
    assert statuses == ["cancelled"] * 3 + ["dropped"] * 7


async def test_a_shadow_the_keys_scope_refuses_is_skipped_never_called(tmp_path: Path):
    data = config(tmp_path, {"cheap": {"candidate": "cheap", "sample": 1.0}})
    podium = open_podium(tmp_path, data)
    app = create_app(podium.settings, podium=podium)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    keys = KeyStore(tmp_path / "keys.sqlite3")
    scoped, _ = keys.create("served-only", models=["auto", "served"])
    canned = podium.registry.get_provider("canned")
    assert isinstance(canned, ScriptedProvider)
    try:
        answered = await http.post("/v1/chat/completions", json={"messages": HI},
                                   headers={"authorization": f"Bearer {scoped}"})
        assert answered.status_code == 200
        await settle(podium, "cheap")
    finally:
        await http.aclose()
        await podium.aclose()
    assert "cheap-1" not in {model_id for model_id, _ in canned.calls}
    assert rows(tmp_path, "SELECT status, error FROM shadow_trials") == [
        ("skipped", "'cheap' is outside the scope of key 'served-only'")]
    assert podium.shadows.stats("cheap").skipped == 1


async def test_shadow_calls_never_spend_the_keys_budget(tmp_path: Path):
    data = config(tmp_path, {"cheap": {"candidate": "cheap", "sample": 1.0}})
    podium = open_podium(tmp_path, data)
    app = create_app(podium.settings, podium=podium)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
    keys = KeyStore(tmp_path / "keys.sqlite3")
    secret, record = keys.create("budgeted", budget=100.0)
    try:
        answered = await http.post("/v1/chat/completions", json={"messages": HI},
                                   headers={"authorization": f"Bearer {secret}"})
        await settle(podium, "cheap")
        assert podium.ledger is not None
        spent = await podium.ledger.spent_since(0.0, key_id=record.id)
    finally:
        await http.aclose()
        await podium.aclose()
    served_cost = rows(tmp_path, "SELECT cost FROM requests")[0][0]
    assert spent == pytest.approx(served_cost)
    assert answered.status_code == 200
    assert rows(tmp_path, "SELECT status FROM shadow_trials") == [("ok",)]


# --- the report -------------------------------------------------------------------------------------------
async def test_the_shadow_report_per_task_type(tmp_path: Path):
    data = config(tmp_path, {"cheap": {"candidate": "cheap", "sample": 1.0, "queue": 1000}})
    podium = open_podium(tmp_path, data)
    canned = podium.registry.get_provider("canned")
    assert isinstance(canned, ScriptedProvider)
    canned.set_script("cheap-1", ["42", "42", "42", "17"])  # agrees three times, then never again
    try:
        for i in range(8):
            await podium.chat("What is 6 times 7?", metadata={"task_type": "routine" if i < 4 else "code"})
            await settle(podium, "cheap")
    finally:
        await podium.aclose()
    report = read_sqlite(tmp_path / "ledger.sqlite3", lambda q: shadow_report(q, "cheap"))
    groups = {g.task_type: g for g in report.groups}
    assert set(groups) == {"routine", "code", "(all)"}
    assert groups["routine"].agreement.value == 0.75 and groups["code"].agreement.value == 0.0
    assert groups["(all)"].compared == 8
    all_ = groups["(all)"]
    assert all_.saving == pytest.approx(all_.served_cost - all_.candidate_cost) and all_.saving > 0
    assert 0 < all_.agreement.low < 0.375 < all_.agreement.high < 1
    assert report.to_dict()["groups"][0]["agreement"]["method"] == "wilson"


# --- config ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("shadow", "fragment"), [
    ({"candidate": "cheap", "sample": 1.5}, "shadow.x.sample"),
    ({"candidate": "cheap", "sample": -0.1}, "shadow.x.sample"),
    ({"candidate": "nope-model", "sample": 0.1}, "shadow.x.candidate"),
    ({"candidate": "cheap", "sample": 0.1, "compare": "vibes"}, "shadow.x.compare: compare must be 'answers' or"),
    ({"candidate": "cheap", "sample": 0.1, "compare": "judge:nobody"}, "shadow.x.compare"),
    ({"candidate": "cheap", "sample": 0.1, "queue": 0}, "shadow.x.queue"),
])
def test_bad_shadow_config_is_a_config_error_naming_it(tmp_path: Path, shadow: dict[str, Any], fragment: str):
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(config(tmp_path, {"x": shadow})))
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert fragment in str(caught.value)


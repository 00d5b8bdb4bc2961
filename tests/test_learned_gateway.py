"""``routing.router: learned`` end to end: the real gateway in-process (ASGI), a real OpenAI-wire server
for the models, the real local MiniLM embedding every prompt, a router file written by ``podium router
train``'s learner; and the CLI as a user runs it.

Each promise is tried from outside: math goes to the model that gets math right and the rest to the
cheap one, and the trace says why; the key's scope, the data's regions and the budget still hold
when the router wants otherwise; bad config is refused at load in one line; the event loop keeps
answering while prompts are embedded; feedback teaches an online router.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from learned_fixtures import CHAT, MATH, NEW_CHAT, NEW_MATH, TinyOnline, embed, train_knn, wire_config
from podium.client import Podium
from podium.config import load_settings
from podium.errors import ConfigError
from podium.learned_runtime import LearnedRuntime, prompt_text, reward_of
from podium.routing.learned_route import LearnedSetup
from podium.server.app import create_app
from podium.server.keys import KeyStore
from podium.types import ChatRequest, Message
from servers.http_server import WireServer
from servers.wires import WIRES, Scenario

PODIUM = Path(sys.executable).with_name("podium")


@pytest.fixture(scope="module")
def server() -> Iterator[WireServer]:
    scenario = Scenario(text="Answer from the wire.")
    wire = WireServer(lambda req: WIRES["openai"].handle(req, scenario)).start()
    yield wire
    wire.stop()


@pytest.fixture(scope="module")
def router_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_knn(tmp_path_factory.mktemp("router") / "router.npz")


@dataclass
class Gw:
    http: httpx.AsyncClient
    podium: Podium
    keys: KeyStore
    ledger: Path

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.ledger) as conn:
            return conn.execute(sql, params).fetchall()

    async def ask(self, prompt: str, key: str, **extra: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}", **extra.pop("headers", {})}
        body = {"model": "auto", "messages": [{"role": "user", "content": prompt}], **extra}
        return await self.http.post("/v1/chat/completions", json=body, headers=headers)


async def open_gateway(tmp_path: Path, data: dict[str, Any], podium: Podium | None = None) -> Gw:
    path = tmp_path / "podium.yaml"
    path.write_text(yaml.safe_dump(data))
    settings = load_settings(path)
    podium = podium or Podium(settings)
    app = create_app(settings, podium=podium)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw", timeout=60)
    return Gw(http, podium, KeyStore(tmp_path / "keys.sqlite3"), tmp_path / "ledger.sqlite3")


@pytest.fixture
async def gw(tmp_path: Path, server: WireServer, router_file: Path) -> AsyncIterator[Gw]:
    gateway = await open_gateway(tmp_path, wire_config(tmp_path, server, routing={
        "router": "learned", "learned": {"file": str(router_file)}}))
    yield gateway
    await gateway.http.aclose()
    await gateway.podium.aclose()


def rationale(gw: Gw, response: httpx.Response) -> str:
    found = gw.rows("SELECT rationale FROM requests WHERE request_id = ?", response.headers["x-request-id"])
    return str(found[0][0])


# --- routing by the learner ------------------------------------------------------------------------
async def test_math_goes_to_the_model_that_gets_it_right_the_rest_to_the_cheap_one(gw: Gw):
    key, _ = gw.keys.create("all")
    for prompt in NEW_MATH:
        answer = await gw.ask(prompt, key)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-podium-model"] == "pricey", prompt
        why = rationale(gw, answer)
        assert why.startswith("learned router (knn, file router.npz): P(success) pricey 1.00, cheap 0.")
        assert "knob 0.50 → bar 0.50; cheapest over the bar: pricey" in why and "nearest" in why
        assert prompt not in why  # the explanation names training prompts by fingerprint, never by text
    for prompt in NEW_CHAT:
        answer = await gw.ask(prompt, key)
        assert answer.headers["x-podium-model"] == "cheap", (prompt, rationale(gw, answer))
        assert "cheapest over the bar: cheap" in rationale(gw, answer)


async def test_every_dialect_and_streams_route_by_the_learner(gw: Gw):
    key, _ = gw.keys.create("dialects")
    auth = {"authorization": f"Bearer {key}"}
    messages = await gw.http.post("/v1/messages", headers=auth, json={
        "model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": NEW_MATH[0]}]})
    assert messages.status_code == 200, messages.text
    assert messages.headers["x-podium-model"] == "pricey"
    responses = await gw.http.post("/v1/responses", headers=auth, json={"model": "auto", "input": NEW_CHAT[0]})
    assert responses.status_code == 200, responses.text
    assert responses.headers["x-podium-model"] == "cheap"
    streamed = await gw.ask(NEW_MATH[1], key, stream=True)
    assert streamed.status_code == 200 and "data: [DONE]" in streamed.text
    assert "learned router" in rationale(gw, streamed)
    assert gw.rows("SELECT model FROM requests WHERE request_id = ?", streamed.headers["x-request-id"]) == \
        [("pricey",)]


async def test_the_knob_per_request_in_metadata_or_header_and_bad_knobs_are_400(gw: Gw):
    key, _ = gw.keys.create("knobs")
    cheapest = await gw.ask(NEW_MATH[0], key, metadata={"router_knob": "0"})
    assert cheapest.headers["x-podium-model"] == "cheap"
    assert "knob 0.00 → bar 0.00" in rationale(gw, cheapest)
    best = await gw.ask(NEW_CHAT[0], key, headers={"x-podium-router-knob": "1"})
    assert best.headers["x-podium-model"] == "pricey"  # only the likeliest model clears a bar of 1 x best
    for bad in ("1.5", "-0.1", "abc", "nan", "inf"):
        refused = await gw.ask(NEW_CHAT[0], key, headers={"x-podium-router-knob": bad})
        assert refused.status_code == 400, (bad, refused.text)
        assert "router_knob" in refused.json()["error"]["message"]
        refused = await gw.ask(NEW_CHAT[0], key, metadata={"router_knob": bad})
        assert refused.status_code == 400, bad
    auth = {"authorization": f"Bearer {key}", "x-podium-router-knob": "2"}
    refused = await gw.http.post("/v1/messages", headers=auth, json={
        "model": "auto", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
    assert refused.status_code == 400 and refused.json()["type"] == "error"  # Anthropic's error shape


async def test_a_named_model_and_a_routing_rule_win_over_the_learner(tmp_path: Path, server: WireServer,
                                                                    router_file: Path):
    gw = await open_gateway(tmp_path, wire_config(tmp_path, server, routing={
        "router": "learned", "learned": {"file": str(router_file)},
        "rules": [{"task_type": "chitchat", "model": "pricey"}]}))
    try:
        key, _ = gw.keys.create("k")
        named = await gw.ask(NEW_MATH[0], key, model="cheap")
        assert named.headers["x-podium-model"] == "cheap" and "learned" not in rationale(gw, named)
        ruled = await gw.ask(NEW_CHAT[0], key, metadata={"task_type": "chitchat"})
        assert ruled.headers["x-podium-model"] == "pricey" and "rule" in rationale(gw, ruled)
    finally:
        await gw.http.aclose()
        await gw.podium.aclose()


# --- constraints still hold ------------------------------------------------------------------------
async def test_a_key_scoped_to_the_cheap_model_never_gets_the_pricey_one(gw: Gw):
    key, _ = gw.keys.create("cheap only", models=["cheap", "auto"])
    for prompt in NEW_MATH + MATH[:3]:
        answer = await gw.ask(prompt, key)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-podium-model"] == "cheap"
        why = rationale(gw, answer)  # the pricey model is not even among the chances weighed
        assert "learned router" in why and "within the key's scope" in why
        weighed = why.split("; knob")[0]  # Choice.describe(): the eligible models' chances, before the knob
        assert weighed.startswith("learned router (knn, file router.npz): P(success) cheap 0.")
        assert "pricey" not in weighed and "cheapest over the bar: cheap" in why
    assert {m for (m,) in gw.rows("SELECT model FROM calls")} == {"cheap"}


async def test_confidential_data_no_model_of_the_file_may_serve_so_the_tiers_decide(gw: Gw):
    key, _ = gw.keys.create("eu")
    answer = await gw.ask(NEW_MATH[0], key, metadata={"sensitivity": "confidential"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-podium-model"] == "eu-model"
    why = rationale(gw, answer)
    assert why.startswith("learned router (knn, file router.npz): no model of the file may serve this request")
    assert "cheap: region us not in ['ch', 'eu', 'local']" in why and "so the tiers decide" in why


async def test_a_budget_that_rules_out_the_pricey_model(tmp_path: Path, server: WireServer, router_file: Path):
    gw = await open_gateway(tmp_path, wire_config(tmp_path, server, routing={
        "router": "learned", "learned": {"file": str(router_file)}, "max_cost_per_request": 0.0005}))
    try:
        key, _ = gw.keys.create("k")
        answer = await gw.ask(NEW_MATH[0], key, max_tokens=50)
        assert answer.headers["x-podium-model"] == "cheap"
        assert "learned router" in rationale(gw, answer) and "max $0.0005 per request" in rationale(gw, answer)
    finally:
        await gw.http.aclose()
        await gw.podium.aclose()


# --- concurrency: the loop never waits for an embedding ---------------------------------------------
async def test_health_answers_while_twenty_requests_are_embedding(tmp_path: Path, server: WireServer,
                                                                  router_file: Path):
    """The embedder is held on a gate: if embedding ran on the event loop, /health could not answer."""
    gate, entered = threading.Event(), threading.Event()
    real = embed

    def held(texts: Any) -> Any:
        entered.set()
        assert gate.wait(30)
        return real(texts)

    data = wire_config(tmp_path, server, routing={"router": "learned", "learned": {"file": str(router_file)}})
    path = tmp_path / "podium.yaml"
    path.write_text(yaml.safe_dump(data))
    settings = load_settings(path)
    podium = Podium(settings)
    podium.learned = LearnedRuntime(settings.learned, embedder=held)
    gw = await open_gateway(tmp_path, data, podium)
    try:
        key, _ = gw.keys.create("many")
        prompts = (NEW_MATH + NEW_CHAT) * 3 + NEW_MATH[:2]
        asks = [asyncio.ensure_future(gw.ask(p, key)) for p in prompts]
        assert await asyncio.to_thread(entered.wait, 10)
        health = await asyncio.wait_for(gw.http.get("/health"), 5)
        assert health.status_code == 200 and not any(a.done() for a in asks)
        gate.set()
        answers = await asyncio.gather(*asks)
        assert [a.headers["x-podium-model"] for a in answers] == \
            ["pricey" if p in NEW_MATH else "cheap" for p in prompts]
        assert podium.learned.batches <= 3  # prompts that waited together were embedded together
    finally:
        gate.set()
        await gw.http.aclose()
        await podium.aclose()


async def test_twenty_concurrent_requests_with_the_real_embedder_route_like_one_at_a_time(gw: Gw):
    key, _ = gw.keys.create("burst")
    prompts = (NEW_MATH + NEW_CHAT) * 3 + NEW_CHAT[:2]
    answers = await asyncio.gather(*(gw.ask(p, key) for p in prompts))
    assert [a.headers["x-podium-model"] for a in answers] == ["pricey" if p in NEW_MATH else "cheap" for p in prompts]


async def test_a_heuristic_config_never_embeds(tmp_path: Path, server: WireServer):
    gw = await open_gateway(tmp_path, wire_config(tmp_path, server))
    try:
        assert gw.podium.learned is None and gw.podium.router.learned is None
        key, _ = gw.keys.create("k")
        answer = await gw.ask(NEW_MATH[0], key)
        assert answer.status_code == 200 and "learned" not in rationale(gw, answer)
    finally:
        await gw.http.aclose()
        await gw.podium.aclose()


# --- bad config is refused at load ------------------------------------------------------------------
def _config_error(tmp_path: Path, server: WireServer, routing: dict[str, Any], **extra: Any) -> str:
    data = wire_config(tmp_path, server, routing=routing)
    data.update(extra)
    path = tmp_path / "podium.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


def test_bad_learned_config_is_a_config_error_naming_the_problem_and_the_fix(tmp_path: Path, server: WireServer,
                                                                            router_file: Path):
    assert "does not exist" in _config_error(tmp_path, server, {"router": "learned",
                                                                "learned": {"file": "nowhere.npz"}})
    assert "podium router train" in _config_error(tmp_path, server, {"router": "learned",
                                                                     "learned": {"file": "nowhere.npz"}})
    assert "needs a router file" in _config_error(tmp_path, server, {"router": "learned"})
    assert "routing.router is heuristic" in _config_error(tmp_path, server, {"learned": {"file": str(router_file)}})
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    assert "junk.npz" in _config_error(tmp_path, server, {"router": "learned", "learned": {"file": "junk.npz"}})
    assert "knob" in _config_error(tmp_path, server, {"router": "learned",
                                                      "learned": {"file": str(router_file), "knob": 1.5}})
    assert "online" in _config_error(tmp_path, server, {"router": "learned",
                                                        "learned": {"file": str(router_file), "explore": 0.1}})
    assert "heuristic" in _config_error(tmp_path, server, {"router": "clever"})
    stranger = train_knn(tmp_path / "stranger.npz", models=("cheap", "gpt-9-ultra"))
    assert "'gpt-9-ultra', which is not in the catalogue" in _config_error(
        tmp_path, server, {"router": "learned", "learned": {"file": str(stranger)}})
    off = train_knn(tmp_path / "off.npz", models=("cheap", "gpt-4o"))
    message = _config_error(tmp_path, server, {"router": "learned", "learned": {"file": str(off)}})
    assert "provider 'openai' is not enabled" in message and "OPENAI_API_KEY" in message


def test_a_relative_router_file_is_read_from_the_config_files_folder(tmp_path: Path, server: WireServer):
    (tmp_path / "conf").mkdir()
    train_knn(tmp_path / "conf" / "r.npz")
    path = tmp_path / "conf" / "podium.yaml"
    path.write_text(yaml.safe_dump(wire_config(tmp_path, server, routing={"router": "learned",
                                                                           "learned": {"file": "r.npz"}})))
    settings = load_settings(path)
    assert settings.learned is not None and settings.learned.path == tmp_path / "conf" / "r.npz"
    assert settings.learned.knob == 0.5 and settings.learned.names == ("cheap", "pricey")


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "PODIUM_CONFIG"}
    env.update(XDG_DATA_HOME=str(cwd / "data"), XDG_CONFIG_HOME=str(cwd / "config"), COLUMNS="200")
    return subprocess.run([str(PODIUM), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_cli_asks_through_the_learned_router_and_refuses_bad_config_in_one_line(
        tmp_path: Path, server: WireServer, router_file: Path):
    path = tmp_path / "podium.yaml"
    path.write_text(yaml.safe_dump(wire_config(tmp_path, server, routing={
        "router": "learned", "learned": {"file": str(router_file)}})))
    asked = _cli("ask", NEW_MATH[1], "--json", "--config", str(path), cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["model"] == "pricey"
    assert answer["trace"]["decision"]["rationale"].startswith("learned router (knn, file router.npz)")
    path.write_text(yaml.safe_dump(wire_config(tmp_path, server, routing={
        "router": "learned", "learned": {"file": str(tmp_path / "missing.npz")}})))
    for command in (("ask", "hi"), ("serve", "--port", "0")):
        result = _cli(*command, "--config", str(path), cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "missing.npz does not exist" in lines[0] and "Traceback" not in result.stderr


# --- online routers: feedback teaches, exploration tries ---------------------------------------------
async def _online_gateway(tmp_path: Path, server: WireServer, router_file: Path, explore: float = 0.0,
                          seed: int | None = None) -> tuple[Gw, TinyOnline]:
    data = wire_config(tmp_path, server, routing={"router": "learned", "learned": {"file": str(router_file)}})
    path = tmp_path / "podium.yaml"
    path.write_text(yaml.safe_dump(data))
    settings = load_settings(path)
    online = TinyOnline(("cheap", "pricey"))
    setup = LearnedSetup(online, Path("online.npz"), 0.5, explore)  # type: ignore[arg-type]
    settings = dataclasses.replace(settings, learned=setup)
    podium = Podium(settings)
    podium.learned = LearnedRuntime(setup, seed=seed)
    return await open_gateway(tmp_path, data, podium), online


async def test_feedback_updates_an_online_router_with_the_requests_embedding(tmp_path: Path, server: WireServer,
                                                                            router_file: Path):
    gw, online = await _online_gateway(tmp_path, server, router_file)
    try:
        key, _ = gw.keys.create("fb")
        auth = {"authorization": f"Bearer {key}"}
        answer = await gw.ask(NEW_MATH[0], key)
        model = answer.headers["x-podium-model"]
        assert "learned router (bandit, file online.npz)" in rationale(gw, answer)
        request_id = answer.headers["x-request-id"]
        told = await gw.http.post("/v1/feedback", headers=auth, json={"request_id": request_id, "score": 0.25})
        assert told.json() == {"ok": True, "request_id": request_id, "learned": True}
        vector, updated, reward = online.updates[-1]
        assert (updated, reward) == (model, 0.25)
        assert float(np.dot(vector, embed([NEW_MATH[0]])[0])) > 0.999
        label = await gw.http.post("/v1/feedback", headers=auth, json={"request_id": request_id, "label": "good"})
        assert label.json() == {"ok": True, "request_id": request_id, "learned": False,
                                "learned_reason": "this request already taught the router"}
        for body in ({"score": 7}, {"label": "meh"}):
            ignored = await gw.http.post("/v1/feedback", headers=auth, json={"request_id": request_id, **body})
            assert ignored.json()["learned"] is False  # stored, but not a reward the learner can use
            assert "not a reward" in ignored.json()["learned_reason"]
        named = await gw.ask(NEW_CHAT[0], key, model="eu-model")
        ignored = await gw.http.post("/v1/feedback", headers=auth, json={
            "request_id": named.headers["x-request-id"], "score": 1})
        assert ignored.json()["learned"] is False and len(online.updates) == 1
        assert len(gw.rows("SELECT * FROM feedback")) == 5
    finally:
        await gw.http.aclose()
        await gw.podium.aclose()


async def test_replayed_feedback_teaches_the_online_router_once(tmp_path: Path, server: WireServer,
                                                                router_file: Path):
    """One request, the same "bad" label posted 300 times (sequentially and concurrently): the router is
    updated once, every row is still stored, and the repeats say why they did not teach."""
    gw, online = await _online_gateway(tmp_path, server, router_file)
    try:
        key, _ = gw.keys.create("replayer")
        auth = {"authorization": f"Bearer {key}"}
        request_id = (await gw.ask(NEW_MATH[0], key)).headers["x-request-id"]
        body = {"request_id": request_id, "label": "bad"}
        first = await gw.http.post("/v1/feedback", headers=auth, json=body)
        assert first.json()["learned"] is True
        told = [await gw.http.post("/v1/feedback", headers=auth, json=body) for _ in range(149)]
        told += await asyncio.gather(*(gw.http.post("/v1/feedback", headers=auth, json=body) for _ in range(150)))
        assert all(t.status_code == 200 and t.json()["learned"] is False for t in told)
        assert {t.json()["learned_reason"] for t in told} == {"this request already taught the router"}
        assert len(online.updates) == 1
        assert len(gw.rows("SELECT * FROM feedback WHERE request_id = ?", request_id)) == 300
    finally:
        await gw.http.aclose()
        await gw.podium.aclose()


def test_training_from_the_ledger_counts_one_latest_feedback_per_request():
    """300 "bad" rows on one request and then a "good": one training row whose outcome is the latest
    usable reward, weighing as much as a request told once; rows that are no reward are skipped."""
    from podium.routing.learned.ledger_labels import labels_from_rows

    blob = np.ones(384, dtype="<f4").tobytes()
    rows = [("r1", "a", blob, 384, None, "bad", None)] * 300 + [("r1", "a", blob, 384, None, "good", None),
                                                               ("r1", "a", blob, 384, 7.0, None, None)]
    rows += [("r2", "b", blob, 384, 0.0, None, None)]
    labels = labels_from_rows(rows)
    assert len(labels) == 2 and labels.labels == {"a": 1, "b": 1}
    np.testing.assert_array_equal(labels.outcomes, [[1.0, np.nan], [np.nan, 0.0]])
    assert labels.sources == {"feedback": 2} and labels.ignored == 1


async def test_exploration_takes_a_random_eligible_model_and_says_so(tmp_path: Path, server: WireServer,
                                                                    router_file: Path):
    gw, _ = await _online_gateway(tmp_path, server, router_file, explore=1.0, seed=7)
    try:
        key, _ = gw.keys.create("explorer")
        scoped, _ = gw.keys.create("scoped", models=["cheap", "auto"])
        seen = set()
        for prompt in NEW_CHAT * 4:
            answer = await gw.ask(prompt, key)
            assert "explore (share 1.00): random eligible model" in rationale(gw, answer)
            seen.add(answer.headers["x-podium-model"])
        assert seen == {"cheap", "pricey"}
        for prompt in NEW_MATH * 2:  # exploring never leaves the key's scope
            assert (await gw.ask(prompt, scoped)).headers["x-podium-model"] == "cheap"
    finally:
        await gw.http.aclose()
        await gw.podium.aclose()


async def test_the_recent_memory_is_bounded_and_rewards_are_read_strictly():
    setup = LearnedSetup(TinyOnline(("a", "b")), Path("x.npz"), 0.5)  # type: ignore[arg-type]
    runtime = LearnedRuntime(setup, embedder=lambda texts: np.zeros((len(texts), 384), np.float32), recent=3)
    try:
        for i in range(10):
            runtime.remember(f"r{i}", np.zeros(384, np.float32), "a")
        assert runtime.recall("r0") is None and runtime.recall("r9") is not None
        assert [reward_of(s, None) for s in (0.0, 1.0, 0.5, -1.0, 2.0)] == [0.0, 1.0, 0.5, None, None]
        assert [reward_of(None, w) for w in ("Good", "thumbs-down", "meh", None)] == [1.0, 0.0, None, None]
    finally:
        runtime.close()


def test_what_is_embedded_is_the_last_user_message_then_the_system_prompt_bounded():
    request = ChatRequest(messages=[Message.system("Be brief."), Message.user("first"),
                                    Message(role="assistant", content="ok"), Message.user("second " * 1000)])
    text = prompt_text(request)
    assert text.startswith("second second") and len(text) == 2000
    short = ChatRequest(messages=[Message.system("Be brief."), Message.user("What is 2+2?")])
    assert prompt_text(short) == "What is 2+2?\nBe brief."
    assert CHAT and MATH  # the fixtures' training prompts are the ones the router file was fitted on


async def test_the_bandit_router_file_learns_from_feedback_through_the_gateway(tmp_path: Path, server: WireServer):
    """C's contextual bandit, saved as a router file and loaded by config: feedback saying the cheap model
    fails math moves the next math prompt to the pricey model; its own exploration share is the default."""
    from podium.routing.learned.bandit import BanditRouter
    from podium.routing.learned.files import save_router

    path = save_router(BanditRouter(("cheap", "pricey"), explore=0.25, knob=0.9), tmp_path / "bandit.npz")
    own = load_settings(_write(tmp_path, wire_config(tmp_path, server, routing={
        "router": "learned", "learned": {"file": str(path)}})))
    assert own.learned is not None and own.learned.online and own.learned.explore == 0.25
    gw = await open_gateway(tmp_path, wire_config(tmp_path, server, routing={
        "router": "learned", "learned": {"file": str(path), "explore": 0}}))
    try:
        key, _ = gw.keys.create("bandit")
        auth = {"authorization": f"Bearer {key}"}
        first = await gw.ask(NEW_MATH[0], key)
        assert first.headers["x-podium-model"] == "cheap"  # no evidence yet: equal chances, the cheaper wins
        assert "learned router (bandit, file bandit.npz)" in rationale(gw, first)
        for prompt in MATH:  # the cheap model answers math and is told it was wrong
            answer = await gw.ask(prompt, key, model="cheap")
            told = await gw.http.post("/v1/feedback", headers=auth, json={
                "request_id": answer.headers["x-request-id"], "label": "bad"})
            assert told.json()["learned"] is False  # a named model: no embedding was taken for it
        for prompt in MATH:  # routed, so embedded; then labelled
            answer = await gw.ask(prompt, key, metadata={"router_knob": "0"})
            assert answer.headers["x-podium-model"] == "cheap"
            told = await gw.http.post("/v1/feedback", headers=auth, json={
                "request_id": answer.headers["x-request-id"], "label": "bad"})
            assert told.json()["learned"] is True
        later = await gw.ask(NEW_MATH[0], key)
        assert later.headers["x-podium-model"] == "pricey", rationale(gw, later)
        assert "bandit after 8 updates (cheap 8, pricey 0)" in rationale(gw, later)
    finally:
        await gw.http.aclose()
        await gw.podium.aclose()


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "podium.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# --- the choice within constraints, for any chances, prices and scopes (Hypothesis) -------------------
_NAMES = ("m0", "m1", "m2", "m3")


@settings(max_examples=150, deadline=None)
@given(chances=st.lists(st.floats(0, 1), min_size=4, max_size=4),
       prices=st.lists(st.floats(0.01, 50), min_size=4, max_size=4),
       scope=st.sets(st.sampled_from(_NAMES)), knob=st.floats(0, 1),
       regions=st.sampled_from([None, frozenset({"eu"}), frozenset({"us"})]))
def test_the_learned_choice_is_always_a_model_the_request_may_use(chances: list[float], prices: list[float],
                                                                   scope: set[str], knob: float,
                                                                   regions: frozenset[str] | None):
    from podium.catalogue import bundled_catalogue, count_message_tokens
    from podium.errors import BadRequestError
    from podium.policy import RequestPolicy
    from podium.routing import Router, estimate_cost
    from podium.routing.learned_route import Prediction

    rows = {name: {"provider": "local", "model_id": f"{name}-id", "context_window": 8000, "input_price": price,
                   "output_price": price, "tier": "fast", "region": "eu" if i % 2 else "us",
                   "capabilities": ["chat"]} for i, (name, price) in enumerate(zip(_NAMES, prices, strict=True))}
    catalogue = bundled_catalogue().merged(rows)
    setup = LearnedSetup(TinyOnline(_NAMES), Path("p.npz"), 0.5)  # type: ignore[arg-type]
    router = Router(catalogue, ["local"], learned=setup)
    request = ChatRequest(messages=[Message.user("hi")], max_tokens=10,
                          metadata={"router_knob": knob})  # type: ignore[arg-type]
    policy = RequestPolicy("r", scope=frozenset(scope), regions=regions)
    prediction = Prediction(np.zeros(384, np.float32), dict(zip(_NAMES, chances, strict=True)), "why")
    eligible = {n for n in _NAMES if n in scope and (regions is None or rows[n]["region"] in regions)}
    if not eligible:  # nothing at all may serve it: the tiers' 400, never a model outside the policy
        with pytest.raises(BadRequestError, match="no enabled model satisfies this request"):
            router.route(request, policy=policy, prediction=prediction)
        return
    routed = router.route(request, policy=policy, prediction=prediction)
    chosen = routed.decision.model
    assert routed.decision.rationale.startswith("learned router (bandit, file p.npz): ")
    assert chosen in eligible
    best = max(chances[_NAMES.index(n)] for n in eligible)
    assert chances[_NAMES.index(chosen)] >= knob * best - 1e-9  # it clears the bar …
    tokens = count_message_tokens(request.messages)
    cheaper = [n for n in eligible if estimate_cost(request, catalogue.get(n), tokens) < routed.decision.estimated_cost
               - 1e-12 and chances[_NAMES.index(n)] >= knob * best - 1e-9]
    assert not cheaper  # … and no cheaper eligible model does


def test_one_runtime_serves_successive_event_loops_even_if_one_closed_mid_batch():
    """SyncPodium and the CLI run their own loops; a loop closed while its batch was on the worker must not
    leave the runtime waiting for a drain that will never finish."""
    gate = threading.Event()

    def slow(texts: Any) -> Any:
        gate.wait(5)
        return np.ones((len(texts), 384), np.float32) / np.sqrt(384)

    setup = LearnedSetup(TinyOnline(("a", "b")), Path("x.npz"), 0.5)  # type: ignore[arg-type]
    runtime = LearnedRuntime(setup, embedder=slow)
    request = ChatRequest(messages=[Message.user("hi")])

    async def abandoned() -> None:
        waiting = asyncio.ensure_future(runtime.predict(request))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # the batch is on the worker; the loop ends without waiting for it

    try:
        asyncio.run(abandoned())
        gate.set()
        for _ in range(2):
            prediction = asyncio.run(asyncio.wait_for(runtime.predict(request), 10))
            assert set(prediction.chances) == {"a", "b"}
    finally:
        gate.set()
        runtime.close()

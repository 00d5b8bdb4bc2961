"""Opt-in prompt embeddings in the ledger (``ledger.store_embeddings``): stored only when asked, one row
per answered request with the model that answered, float32 bytes of the real MiniLM vector, never the
prompt's text; written through the buffered path on SQLite and on the real PostgreSQL; read back to
teach an online router after a restart forgot its memory."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from learned_fixtures import CHAT, MATH, NEW_CHAT, NEW_MATH, TinyOnline, embed, wire_config
from podium.client import Podium
from podium.config import load_settings
from podium.errors import ConfigError, ProviderUnavailableError
from podium.learned_runtime import LearnedRuntime, prompt_text
from podium.ledger import InvalidRow, RequestStart, SQLiteLedger
from podium.routing.learned_route import LearnedSetup
from podium.types import ChatRequest, Message
from servers.http_server import WireServer
from servers.wires import WIRES, Scenario

PODIUM = Path(sys.executable).with_name("podium")
SECRET_PROMPT = "My tax number is 123-45-6789; what is 17 * 23?"


@pytest.fixture(scope="module")
def server() -> Any:
    scenario = Scenario(text="391")
    wire = WireServer(lambda req: WIRES["openai"].handle(req, scenario)).start()
    yield wire
    wire.stop()


def load(tmp_path: Path, data: dict[str, Any]) -> Any:
    path = tmp_path / "podium.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_settings(path)


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def ask_all(podium: Podium, prompts: list[str], **fields: Any) -> list[str]:
    answers = await asyncio.gather(*(podium.chat(p, **fields) for p in prompts))
    return [a.id for a in answers]


async def test_no_rows_unless_opted_in(tmp_path: Path, server: WireServer):
    podium = Podium(load(tmp_path, wire_config(tmp_path, server, routing={"default": "cheap"})))
    assert podium.learned is None  # nothing is embedded at all
    await ask_all(podium, NEW_MATH)
    await podium.aclose()
    ledger = tmp_path / "ledger.sqlite3"
    assert rows(ledger, "SELECT COUNT(*) FROM requests") == [(3,)]
    assert rows(ledger, "SELECT COUNT(*) FROM request_embeddings") == [(0,)]


async def test_opted_in_every_answered_request_has_its_vector_and_never_its_text(tmp_path: Path, server: WireServer):
    podium = Podium(load(tmp_path, wire_config(tmp_path, server, ledger={"store_embeddings": True})))
    prompts = [SECRET_PROMPT, *NEW_CHAT]
    ids = await ask_all(podium, prompts)
    named = await podium.chat(NEW_MATH[0], model="pricey", max_tokens=20)
    streamed = podium.stream(ChatRequest(messages=[Message.system("Be brief."), Message.user(NEW_MATH[1])]))
    async for _ in streamed:
        pass
    await podium.aclose()
    ledger = tmp_path / "ledger.sqlite3"
    stored = {r: (m, bytes(v), d) for r, m, v, d in rows(ledger, "SELECT * FROM request_embeddings")}
    assert set(stored) == {*ids, named.id, streamed.request_id}
    assert stored[named.id][0] == "pricey"  # the model that answered
    expected = embed([*prompts, NEW_MATH[0], f"{NEW_MATH[1]}\nBe brief."])
    for request_id, vector in zip([*ids, named.id, streamed.request_id], expected, strict=True):
        _, blob, dims = stored[request_id]
        assert dims == 384 and len(blob) == 384 * 4
        got = np.frombuffer(blob, dtype="<f4")
        assert float(np.dot(got, vector)) > 0.9999
    with sqlite3.connect(ledger) as conn:  # the text is nowhere in the file, in any table
        dump = "\n".join(conn.iterdump())
    assert "123-45-6789" not in dump and "tax number" not in dump and NEW_CHAT[0] not in dump
    assert SECRET_PROMPT.encode() not in ledger.read_bytes()


async def test_failed_requests_store_no_embedding(tmp_path: Path):
    data = {"providers": {"canned": {"kind": "scripted", "options": {"answers": {"m-1": {"error": "unavailable"}}}},
                          "local": {"enabled": False}},
            "models": {"m": {"provider": "canned", "model_id": "m-1", "context_window": 4000, "input_price": 0,
                             "output_price": 0, "tier": "fast", "region": "us"}},
            "resilience": {"retries": {"max_attempts": 1}},
            "ledger": {"path": str(tmp_path / "ledger.sqlite3"), "store_embeddings": True}}
    podium = Podium(load(tmp_path, data))
    with pytest.raises(ProviderUnavailableError):
        await podium.chat("hello", model="m")
    await podium.aclose()
    assert rows(tmp_path / "ledger.sqlite3", "SELECT COUNT(*) FROM request_embeddings") == [(0,)]
    assert rows(tmp_path / "ledger.sqlite3", "SELECT status FROM requests") == [("error",)]


def test_store_embeddings_without_a_ledger_is_a_config_error(tmp_path: Path, server: WireServer):
    data = wire_config(tmp_path, server)
    data["ledger"] = {"enabled": False, "store_embeddings": True}
    with pytest.raises(ConfigError, match=r"ledger\.store_embeddings keeps embeddings in the ledger, which is off"):
        load(tmp_path, data)


@settings(max_examples=40, deadline=None)
@given(dims=st.integers(-3, 5000), extra=st.integers(-2, 2))
def test_the_ledger_refuses_a_vector_that_is_not_float32_of_its_dims(tmp_path_factory: pytest.TempPathFactory,
                                                                     dims: int, extra: int):
    ledger = SQLiteLedger(tmp_path_factory.mktemp("l") / "ledger.sqlite3")

    async def run() -> None:
        size = max(0, 4 * dims + extra)
        good = 0 < dims <= 4096 and extra == 0
        if good:
            await ledger.record_embedding("r", "m", b"\0" * size, dims)
        else:
            with pytest.raises(InvalidRow, match="4 bytes"):
                await ledger.record_embedding("r", "m", b"\0" * size, dims)
        await ledger.aclose()

    asyncio.run(run())


async def test_feedback_after_a_restart_teaches_the_online_router_from_the_stored_embedding(
        tmp_path: Path, server: WireServer):
    base = load(tmp_path, wire_config(tmp_path, server, ledger={"store_embeddings": True}))
    first = Podium(base)
    answer = await first.chat(NEW_MATH[0], model="cheap")
    await first.aclose()
    online = TinyOnline(("cheap", "pricey"))
    setup = LearnedSetup(online, Path("online.npz"), 0.5)  # type: ignore[arg-type]
    second = Podium(dataclasses.replace(base, learned=setup))  # a new process: nothing remembered
    second.learned = LearnedRuntime(setup)
    try:
        assert second.learned.recall(answer.id) is None
        assert await second.learn(answer.id, 1.0, None) is True
        vector, model, reward = online.updates[-1]
        assert (model, reward) == ("cheap", 1.0)
        assert float(np.dot(vector, embed([NEW_MATH[0]])[0])) > 0.9999
        assert await second.learn("no-such-request", 1.0, None) is False
    finally:
        await second.aclose()


async def test_postgres_stores_and_reads_embeddings(dsn: str, tmp_path: Path, server: WireServer):
    from podium.ledger.postgres import PostgresLedger

    data = wire_config(tmp_path, server, ledger={"store_embeddings": True, "postgres_dsn": dsn})
    podium = Podium(load(tmp_path, data))
    ids = await ask_all(podium, [SECRET_PROMPT, *NEW_CHAT])
    await podium.aclose()
    import psycopg

    with psycopg.connect(dsn) as conn:
        stored = {r: (m, bytes(v), d) for r, m, v, d in conn.execute("SELECT * FROM request_embeddings")}
        dump = [str(row) for table in ("requests", "calls", "request_embeddings")
                for row in conn.execute(f"SELECT * FROM {table}")]
    assert set(stored) == set(ids)
    expected = embed([SECRET_PROMPT, *NEW_CHAT])
    for request_id, vector in zip(ids, expected, strict=True):
        assert stored[request_id][2] == 384
        assert float(np.dot(np.frombuffer(stored[request_id][1], dtype="<f4"), vector)) > 0.9999
    assert not any("123-45-6789" in row for row in dump)
    reader = PostgresLedger(dsn)
    try:
        found = await reader.request_embedding(ids[0])
        assert found is not None and found[2] == 384 and found[0] in {"cheap", "pricey", "eu-model"}
        assert await reader.request_embedding("nope") is None
        await reader.start_request(RequestStart("direct", time.time(), None))
        await reader.record_embedding("direct", "cheap", b"\0" * 1536, 384)
        await reader.flush()
    finally:
        await reader.aclose()


def test_what_the_ledger_would_embed_is_what_routing_embeds():
    request = ChatRequest(messages=[Message.system("Be brief."), Message.user(NEW_MATH[1])])
    assert prompt_text(request) == f"{NEW_MATH[1]}\nBe brief."


# --- train from the ledger, then serve ------------------------------------------------------------------
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "PODIUM_CONFIG"}
    env.update(XDG_DATA_HOME=str(cwd / "data"), XDG_CONFIG_HOME=str(cwd / "config"), COLUMNS="200")
    return subprocess.run([str(PODIUM), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


async def test_podium_router_train_from_the_ledger_then_serve_with_it(tmp_path: Path, server: WireServer):
    """Feedback says the cheap model fails math and the pricey one does not; a router trained from the
    ledger (embeddings + labels, no text) then sends new math to the pricey model and the rest to the cheap."""
    podium = Podium(load(tmp_path, wire_config(tmp_path, server, ledger={"store_embeddings": True})))
    assert podium.ledger is not None
    for prompt in MATH:
        for model, label in (("cheap", "bad"), ("pricey", "good")):
            answer = await podium.chat(prompt, model=model)
            await podium.ledger.record_feedback(answer.id, None, label, None)
    for prompt in CHAT:
        answer = await podium.chat(prompt, model="cheap")
        await podium.ledger.record_feedback(answer.id, 1.0, None, "fine")
        await podium.ledger.record_feedback(answer.id, 7.0, None, None)  # not 0..1: ignored
    unlabelled = await podium.chat(NEW_CHAT[0], model="pricey")
    await podium.aclose()
    ledger = tmp_path / "ledger.sqlite3"
    trained = _cli("router", "train", "--ledger", str(ledger), "--kind", "knn", "--knob", "0.5", "--out",
                   str(tmp_path / "from-ledger.npz"), cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "24 labelled requests" in trained.stdout and "cheap 16" in trained.stdout and "pricey 8" in trained.stdout
    assert "8 feedback rows were no 0..1 score" in trained.stdout and unlabelled.id not in trained.stdout
    config = wire_config(tmp_path, server, routing={"router": "learned", "learned": {"file": "from-ledger.npz"}})
    served = Podium(load(tmp_path, config))
    try:
        for prompt in NEW_MATH:
            assert (await served.chat(prompt)).model == "pricey", prompt
        for prompt in NEW_CHAT:
            assert (await served.chat(prompt)).model == "cheap", prompt
    finally:
        await served.aclose()
    for args, fragment in (((), "needs a DATASET"), (("--ledger", str(tmp_path / "nope.sqlite3")), "no ledger at"),
                           (("--ledger", str(tmp_path / "podium.yaml")), "not a Podium ledger"),
                           (("data.jsonl", "--ledger", str(ledger)), "not both")):
        refused = _cli("router", "train", *args, "--out", str(tmp_path / "x.npz"), cwd=tmp_path)
        assert refused.returncode == 2, (args, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1 and fragment in refused.stderr, refused.stderr


async def test_one_model_of_labels_is_not_enough_and_says_what_to_do(tmp_path: Path, server: WireServer):
    from podium.routing.learned.ledger_labels import train_from_ledger

    podium = Podium(load(tmp_path, wire_config(tmp_path, server, ledger={"store_embeddings": True})))
    assert podium.ledger is not None
    answer = await podium.chat(NEW_MATH[0], model="cheap")
    await podium.ledger.record_feedback(answer.id, 1.0, None, None)
    await podium.aclose()
    with pytest.raises(ConfigError, match="two or more models"):
        train_from_ledger(str(tmp_path / "ledger.sqlite3"), "knn", 0.5)


async def test_router_train_reads_a_postgres_ledger(dsn: str, tmp_path: Path, server: WireServer):
    from podium.routing.learned.ledger_labels import train_from_ledger

    podium = Podium(load(tmp_path, wire_config(tmp_path, server, ledger={"store_embeddings": True,
                                                                         "postgres_dsn": dsn})))
    assert podium.ledger is not None
    for prompt, model, score in ((MATH[0], "cheap", 0.0), (MATH[1], "pricey", 1.0), (CHAT[0], "cheap", 1.0),
                                 (CHAT[1], "pricey", 0.5)):
        answer = await podium.chat(prompt, model=model)
        await podium.ledger.record_feedback(answer.id, score, None, None)
    await podium.aclose()
    router, labels = train_from_ledger(dsn, "logistic", 0.5)
    assert labels.labels == {"cheap": 2, "pricey": 2} and router.models == ("cheap", "pricey")
    assert router.info["training"]["ledger"] == "PostgreSQL"

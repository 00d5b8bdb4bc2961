"""`podium serve` as a user runs it: a real process on a free port, the official OpenAI SDK as the client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from conftest import HAVE_LOCAL, require_redis
from podium.server.keys import KeyStore

ADMIN = "admin-secret-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gateway:
    url: str
    key: str
    keys: KeyStore
    log: Path
    ledger: Path
    process: subprocess.Popen[bytes]

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key or self.key, max_retries=0)


def write_config(directory: Path, **gateway: Any) -> Path:
    config = {
        "providers": {"canned": {"kind": "scripted", "options": {"answers": {
            "echo-1": "Paris is the capital of France.", "other-1": "Paris"}}}},
        "models": {name: {"provider": "canned", "model_id": f"{name}-1", "context_window": 8000, "input_price": 1.0,
                          "output_price": 2.0, "tier": "fast", "region": "us"} for name in ("echo", "other")},
        "strategies": {"panel": {"type": "consensus", "models": ["echo", "other"]}},
        "gateway": {"admin_key": ADMIN, "keys_path": str(directory / "keys.sqlite3"), **gateway},
        "ledger": {"path": str(directory / "ledger.sqlite3")},
    }
    path = directory / "podium.yaml"
    path.write_text(json.dumps(config))
    return path


def start(directory: Path, config: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = port or free_port()
    log = directory / f"gateway-{port}.log"
    process = subprocess.Popen([sys.executable, "-m", "podium.cli", "serve", "--port", str(port), "--config",
                                str(config)], stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=directory)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return process, url, log
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"podium serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    config = write_config(tmp_path)
    keys = KeyStore(tmp_path / "keys.sqlite3")
    secret, _ = keys.create("tests")
    process, url, log = start(tmp_path, config)
    yield Gateway(url, secret, keys, log, tmp_path / "ledger.sqlite3", process)
    process.terminate()
    process.wait(10)


def test_sdk_sync_completion_with_headers(gateway: Gateway):
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "Capital of France?"}], max_tokens=20)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Paris is the capital of France."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert completion.model == "echo"
    assert raw.headers["x-request-id"].startswith("req_")
    assert float(raw.headers["x-podium-overhead-ms"]) >= 0


async def test_sdk_async_and_streaming_with_usage(gateway: Gateway):
    client = openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, max_retries=0)
    completion = await client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "Paris is the capital of France."
    stream = await client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}],
                                                  stream=True, stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris is the capital of France."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    no_usage = await client.chat.completions.create(model="echo", messages=[{"role": "user", "content": "hi"}],
                                                    stream=True)
    assert [c.usage async for c in no_usage if c.usage is not None] == []
    await client.close()


def test_named_strategy_and_routing_through_metadata(gateway: Gateway):
    client = gateway.client()
    completion = client.chat.completions.create(model="panel", messages=[{"role": "user", "content": "Capital?"}])
    assert "Paris" in completion.choices[0].message.content
    assert completion.model == "panel"
    routed = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}],
                                            metadata={"sensitivity": "public", "tags": "area:docs"})
    assert routed.choices[0].message.content
    models = {m.id: m for m in client.models.list()}
    assert {"echo", "other", "panel"} <= set(models)
    assert models["smollm2"].alias_of == "smollm2-135m"  # type: ignore[attr-defined]  # aliases listed too
    assert models["smollm2-135m-embed"].owned_by == "local"


def test_errors_are_openai_errors(gateway: Gateway):
    messages = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="pk-wrong-key", max_retries=0).chat.completions.create(
            model="echo", messages=messages)
    with pytest.raises(openai.NotFoundError, match="Did you mean: echo"):
        gateway.client().chat.completions.create(model="ecko", messages=messages)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        gateway.client().chat.completions.create(model="echo", messages=messages, temperature=5)
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument supplied: bogus"):
        gateway.client().chat.completions.create(model="echo", messages=messages, extra_body={"bogus": 1})
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "echo", "messages": messages})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    limited, _ = gateway.keys.create("echo only", models=["echo"])
    with pytest.raises(openai.PermissionDeniedError, match="may not use 'other'"):
        gateway.client(limited).chat.completions.create(model="other", messages=messages)


def test_rate_limit_and_budget_per_key(gateway: Gateway):
    messages = [{"role": "user", "content": "hi"}]
    slow, _ = gateway.keys.create("slow", rpm=2)
    for _ in range(2):
        gateway.client(slow).chat.completions.create(model="echo", messages=messages)
    with pytest.raises(openai.RateLimitError) as info:
        gateway.client(slow).chat.completions.create(model="echo", messages=messages)
    assert int(info.value.response.headers["retry-after"]) >= 1
    # each request holds its worst case ($0.000121: 21 tokens at most for "hi" in a message, 50 out, at $1/$2
    # per M) and then settles its real cost (~$0.00002): with $0.00013 the second request no longer fits
    poor, _ = gateway.keys.create("poor", budget=0.00013)
    gateway.client(poor).chat.completions.create(model="echo", messages=messages, max_tokens=50)
    with pytest.raises(openai.RateLimitError, match="budget") as budget:
        gateway.client(poor).chat.completions.create(model="echo", messages=messages, max_tokens=50)
    assert budget.value.body["type"] == "insufficient_quota"  # type: ignore[index]


def test_admin_keys_feedback_metrics_and_no_secrets_in_logs(gateway: Gateway):
    created = httpx.post(f"{gateway.url}/admin/keys", json={"name": "ci", "rpm": 100},
                         headers={"authorization": f"Bearer {ADMIN}"})
    assert created.status_code == 201
    new_key = created.json()["key"]
    assert httpx.post(f"{gateway.url}/admin/keys", json={"name": "x"},
                      headers={"authorization": f"Bearer {gateway.key}"}).status_code == 401
    completion = gateway.client(new_key).chat.completions.create(model="echo",
                                                                   messages=[{"role": "user", "content": "hi"}])
    feedback = httpx.post(f"{gateway.url}/v1/feedback", json={"request_id": completion.id, "score": 0.9,
                                                               "label": "good"},
                          headers={"authorization": f"Bearer {new_key}"})
    assert feedback.status_code == 200, feedback.text
    metrics = httpx.get(f"{gateway.url}/metrics").text
    assert 'podium_requests_total{model="echo",provider="canned",status="ok"}' in metrics
    listed = httpx.get(f"{gateway.url}/admin/keys", headers={"authorization": f"Bearer {ADMIN}"}).json()["data"]
    key_id = next(k["id"] for k in listed if k["name"] == "ci")
    assert httpx.delete(f"{gateway.url}/admin/keys/{key_id}",
                        headers={"authorization": f"Bearer {ADMIN}"}).status_code == 200
    gateway.process.terminate()
    gateway.process.wait(10)
    import sqlite3

    with sqlite3.connect(gateway.ledger) as conn:
        rows = conn.execute("SELECT request_id, score, label FROM feedback").fetchall()
    assert rows == [(completion.id.removeprefix("chatcmpl-"), 0.9, "good")]
    log = gateway.log.read_text()
    assert new_key not in log and gateway.key not in log and ADMIN not in log
    answered = [line for line in log.splitlines() if f"request {completion.id.removeprefix('chatcmpl-')} " in line]
    assert len(answered) == 1 and "INFO podium.gateway" in answered[0] and "status=200" in answered[0]


@pytest.mark.skipif(not HAVE_LOCAL, reason="needs the local extra: pip install 'podium[local]'")
def test_sdk_against_the_local_models(tmp_path: Path):
    config = tmp_path / "podium.yaml"
    config.write_text(json.dumps({"gateway": {"auth": "optional", "keys_path": str(tmp_path / "k.sqlite3")},
                                  "ledger": {"path": str(tmp_path / "l.sqlite3")}}))
    process, url, _ = start(tmp_path, config)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        completion = client.chat.completions.create(
            model="smollm2-135m", max_tokens=16, temperature=0, seed=1,
            messages=[{"role": "system", "content": "You are a helpful assistant. Answer briefly."},
                      {"role": "user", "content": "What is the capital of France?"}])
        assert "Paris" in completion.choices[0].message.content
        stream = client.chat.completions.create(model="consensus:smollm2-135m,gemma3-270m", max_tokens=8,
                                                messages=[{"role": "user", "content": "Capital of France?"}],
                                                stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    finally:
        process.terminate()
        process.wait(10)


def test_two_gateways_share_limits_budgets_and_one_ledger(tmp_path: Path, dsn: str):
    """Two `podium serve` processes, one Redis (limits, budgets) and one PostgreSQL ledger."""
    require_redis()
    import redis

    redis.Redis().flushdb()
    config = write_config(tmp_path, state="redis")
    data = json.loads(config.read_text())
    data["ledger"] = {"postgres_dsn": dsn}
    config.write_text(json.dumps(data))
    keys = KeyStore(tmp_path / "keys.sqlite3")
    limited, _ = keys.create("shared", rpm=3)
    (a, url_a, _), (b, url_b, _) = start(tmp_path, config), start(tmp_path, config)
    try:
        messages = [{"role": "user", "content": "hi"}]
        clients = [openai.OpenAI(base_url=f"{u}/v1", api_key=limited, max_retries=0) for u in (url_a, url_b, url_a)]
        for client in clients:
            client.chat.completions.create(model="echo", messages=messages)
        with pytest.raises(openai.RateLimitError):  # the fourth request, on the other instance
            openai.OpenAI(base_url=f"{url_b}/v1", api_key=limited, max_retries=0).chat.completions.create(
                model="echo", messages=messages)
        poor, _ = keys.create("shared budget", budget=0.00013)  # room for one request (see the test above)
        openai.OpenAI(base_url=f"{url_a}/v1", api_key=poor, max_retries=0).chat.completions.create(
            model="echo", messages=messages, max_tokens=50)
        with pytest.raises(openai.RateLimitError, match="budget"):  # the other instance sees the spend
            openai.OpenAI(base_url=f"{url_b}/v1", api_key=poor, max_retries=0).chat.completions.create(
                model="echo", messages=messages, max_tokens=50)
    finally:
        for process in (a, b):
            process.terminate()
            process.wait(10)
    import psycopg

    with psycopg.connect(dsn) as conn:  # 3 + 1 answered requests, from both instances, in one ledger
        assert conn.execute("SELECT COUNT(*) FROM requests WHERE status = 'ok'").fetchone()[0] == 4
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 4


def test_guardrails_route_personal_data_to_eu_models_and_redact_secrets(tmp_path: Path):
    config = tmp_path / "podium.yaml"
    data = json.loads(write_config(tmp_path, auth="optional", guardrails={"pii": "route_local"}).read_text())
    data["providers"]["local"] = {"enabled": False}
    data["providers"]["canned-eu"] = {"kind": "scripted", "region": "eu", "options": {"default": "EU answer"}}
    data["models"]["eu-echo"] = {"provider": "canned-eu", "context_window": 8000, "input_price": 5.0,
                                 "output_price": 5.0, "tier": "fast", "region": "eu"}
    config.write_text(json.dumps(data))
    process, url, log = start(tmp_path, config)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="anything", max_retries=0)
        plain = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "hi"}])
        assert plain.model in {"echo", "other"}  # the cheapest, in the US
        personal = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "Write to jane.doe@example.com, my key is "
                                                                 "sk-proj-abcdefghijklmnopqrstuvwxyz"}])
        completion = personal.parse()
        assert completion.model == "eu-echo" and completion.choices[0].message.content == "EU answer"
        notes = json.loads(personal.text)["podium"]["notes"]
        assert any("personal data (email) → confidential" in n for n in notes)
        assert any("redacted secrets (openai_key)" in n for n in notes)
    finally:
        process.terminate()
        process.wait(10)
    assert "sk-proj-abcdefghijklmnopqrstuvwxyz" not in log.read_text()


def test_cache_serves_repeats_without_a_call_and_is_bypassable(tmp_path: Path):
    config = write_config(tmp_path, auth="optional", cache={"enabled": True, "ttl": 60})
    process, url, _ = start(tmp_path, config)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        messages = [{"role": "user", "content": "Capital of France?"}]
        first = client.chat.completions.with_raw_response.create(model="echo", messages=messages)
        second = client.chat.completions.with_raw_response.create(model="echo", messages=messages)
        assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
        assert json.loads(second.text)["podium"]["cost"] == 0.0 and json.loads(first.text)["podium"]["cost"] > 0
        assert json.loads(second.text)["podium"]["notes"][0].startswith("cache hit")
        other_turn = [*messages, {"role": "assistant", "content": "Paris"}, {"role": "user", "content": "And Italy?"}]
        third = client.chat.completions.with_raw_response.create(model="echo", messages=other_turn)
        assert json.loads(third.text)["podium"]["cost"] > 0  # a different conversation is a different key
        bypass = client.chat.completions.with_raw_response.create(model="echo", messages=messages,
                                                                  extra_headers={"x-podium-cache": "bypass"})
        assert json.loads(bypass.text)["podium"]["cost"] > 0
        metrics = httpx.get(f"{url}/metrics").text
        assert 'podium_cache_hits_total{kind="exact",model="echo"} 1.0' in metrics
    finally:
        process.terminate()
        process.wait(10)
    import sqlite3

    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        rows = conn.execute("SELECT strategy, cost, calls FROM requests ORDER BY started_at").fetchall()
    assert rows[1] == ("cache", 0.0, 0)


def test_langchain_chat_openai_against_the_gateway(gateway: Gateway):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, model="echo", max_retries=0)  # type: ignore[arg-type]
    assert llm.invoke("Capital of France?").content == "Paris is the capital of France."
    assert "".join(str(chunk.content) for chunk in llm.stream("Capital of France?")) == \
        "Paris is the capital of France."
    panel = ChatOpenAI(base_url=f"{gateway.url}/v1", api_key=gateway.key, model="panel", max_retries=0)  # type: ignore[arg-type]
    assert "Paris" in str(panel.invoke("Capital?").content)


def test_a_client_that_leaves_mid_stream_is_accounted_and_its_budget_hold_released(tmp_path: Path):
    """A real disconnect: the call is cancelled upstream, the request is 'cancelled' in the ledger, the
    budget holds only what was used, the log says 499, and no traceback is written."""
    config = write_config(tmp_path)
    data = json.loads(config.read_text())
    data["providers"]["canned"]["options"]["answers"]["slow-1"] = {
        "text": "one two three four five six seven eight", "chunk_latency": 0.2}
    data["models"]["slow"] = {**data["models"]["echo"], "model_id": "slow-1", "max_output_tokens": 1000}
    config.write_text(json.dumps(data))
    keys = KeyStore(tmp_path / "keys.sqlite3")
    secret, _ = keys.create("leaver", budget=0.0025)  # worst case of one call ~$0.002: one at a time
    process, url, log = start(tmp_path, config)
    try:
        body = {"model": "slow", "stream": True, "messages": [{"role": "user", "content": "count"}]}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body,
                          headers={"authorization": f"Bearer {secret}"}, timeout=10) as response:
            assert response.status_code == 200
            request_id = response.headers["x-request-id"]
            lines = response.iter_lines()
            next(lines)
            next(lines)  # the role chunk and the first word, then the client goes
        time.sleep(1.0)
        # the hold was released: the same key can afford another call at once
        again = httpx.post(f"{url}/v1/chat/completions", json={**body, "stream": False},
                           headers={"authorization": f"Bearer {secret}"}, timeout=10)
        assert again.status_code == 200, again.text
    finally:
        process.terminate()
        process.wait(10)
    import sqlite3

    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        status, error, cost = conn.execute("SELECT status, error, cost FROM requests WHERE request_id = ?",
                                           (request_id,)).fetchone()
    assert status == "cancelled" and "client went away" in error
    text = log.read_text()
    assert f"request {request_id} " in text and "status=499" in text
    line = next(ln for ln in text.splitlines() if f"request {request_id} " in ln)
    assert cost and f"cost={cost:.6f}" in line  # the log line says what the cut stream cost, as the ledger does
    assert "Traceback" not in text


def test_a_client_that_gives_up_on_a_whole_answer_cancels_it(tmp_path: Path):
    """A non-streamed request whose client disconnects is cancelled (it ran to its end before: spending,
    holding its budget, keeping a local model generating): 'cancelled' in the ledger within a moment, the
    budget hold released, 499 in the log."""
    config = write_config(tmp_path)
    data = json.loads(config.read_text())
    data["providers"]["canned"]["options"]["answers"]["slow-1"] = [{"text": "late", "latency": 60}, "quick"]
    data["models"]["slow"] = {**data["models"]["echo"], "model_id": "slow-1", "max_output_tokens": 1000}
    config.write_text(json.dumps(data))
    keys = KeyStore(tmp_path / "keys.sqlite3")
    secret, _ = keys.create("quitter", budget=0.0025)  # one call's worst case at a time
    process, url, log = start(tmp_path, config)
    try:
        body = {"model": "slow", "messages": [{"role": "user", "content": "take your time"}]}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"},
                       timeout=1.0)
        time.sleep(1.0)
        again = httpx.post(f"{url}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {secret}"},
                           timeout=10)
        assert again.status_code == 200, again.text  # the abandoned call's hold was given back
        assert again.json()["choices"][0]["message"]["content"] == "quick"
    finally:
        process.terminate()
        process.wait(10)
    import sqlite3

    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        rows = conn.execute("SELECT status FROM requests WHERE requested_model = 'slow' "
                            "ORDER BY started_at").fetchall()
    assert rows == [("cancelled",), ("ok",)]
    assert "status=499" in log.read_text()

"""`podium serve` features beyond chat: /v1/embeddings, the semantic cache, team budgets, OTLP traces."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import openai
import pytest

from podium.server.keys import KeyStore
from servers.http_server import WireServer
from servers.wires import WIRES, Scenario, word_vector
from test_gateway import start, write_config
from test_provider_contract import KEY

VEC_PRICE = 0.02


@pytest.fixture
def vectors() -> Iterator[WireServer]:
    """An OpenAI-wire server answering /v1/embeddings with word-hash vectors."""
    scenario = Scenario()
    server = WireServer(lambda req: WIRES["openai"].handle(req, scenario)).start()
    yield server
    server.stop()


def config_with_vectors(directory: Path, server: WireServer, **gateway: Any) -> Path:
    path = write_config(directory, **gateway)
    data = json.loads(path.read_text())
    data["providers"]["vectors"] = {"kind": "openai", "base_url": server.url + "/v1", "api_key": KEY}
    data["models"]["vec"] = {"provider": "vectors", "model_id": "text-embedding-3-small",
                             "capabilities": ["embeddings"], "context_window": 8191, "input_price": VEC_PRICE,
                             "output_price": 0.0, "tier": "fast", "region": "us"}
    path.write_text(json.dumps(data))
    return path


def stop(process: Any) -> None:
    process.terminate()
    process.wait(10)


def test_embeddings_through_the_official_sdk(tmp_path: Path, vectors: WireServer):
    config = config_with_vectors(tmp_path, vectors)
    keys = KeyStore(tmp_path / "keys.sqlite3")
    secret, _ = keys.create("embedder")
    chat_only, _ = keys.create("chat only", models=["echo"])
    process, url, log = start(tmp_path, config)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0)
        texts = ["the quick brown fox", "jumps over the lazy dog"]
        # the SDK asks for base64 by default and decodes it itself
        default = client.embeddings.create(model="vec", input=texts)
        floats = client.embeddings.create(model="vec", input=texts[0], encoding_format="float")
        assert [d.index for d in default.data] == [0, 1]
        for item, text in zip(default.data, texts, strict=True):
            assert item.embedding == pytest.approx(word_vector(text), rel=1e-6)  # float32 on the wire
        assert floats.data[0].embedding == pytest.approx(word_vector(texts[0]))
        client.embeddings.create(model="vec", input="my key is sk-proj-abcdefghijklmnopqrstuvwxyz")
        assert json.loads(vectors.requests[-1].body)["input"] == ["my key is [SECRET]"]  # guardrails: redacted
        assert default.usage.prompt_tokens == 9 and default.model == "vec"
        with pytest.raises(openai.PermissionDeniedError, match="may not use 'vec'"):
            openai.OpenAI(base_url=f"{url}/v1", api_key=chat_only, max_retries=0).embeddings.create(
                model="vec", input="x")
        with pytest.raises(openai.BadRequestError, match="'echo' is not an embedding model"):
            client.embeddings.create(model="echo", input="x")
        with pytest.raises(openai.BadRequestError, match="token arrays are not supported"):
            client.embeddings.create(model="vec", input=[[1, 2, 3]])
        with pytest.raises(openai.BadRequestError, match="unknown parameter 'frobnicate'"):
            client.embeddings.create(model="vec", input="x", extra_body={"frobnicate": 1})
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"{url}/v1", api_key="pk-wrong", max_retries=0).embeddings.create(
                model="vec", input="x")
    finally:
        stop(process)
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        rows = conn.execute("SELECT strategy, model, input_tokens, cost FROM requests WHERE status = 'ok'").fetchall()
    assert rows[:2] == [("embeddings", "vec", 9, pytest.approx(9 * VEC_PRICE / 1e6)),
                        ("embeddings", "vec", 4, pytest.approx(4 * VEC_PRICE / 1e6))]
    assert KEY not in log.read_text() and secret not in log.read_text()
    assert "sk-proj-abcdefghijklmnopqrstuvwxyz" not in log.read_text()


def podium_field(raw: Any) -> dict[str, Any]:
    return dict(json.loads(raw.text)["podium"])


def test_semantic_cache_hits_paraphrases_but_not_other_names_or_histories(tmp_path: Path, vectors: WireServer):
    # word-hash vectors: the same words score 1.0; "France" → "Germany" shares 5 of 6 words (0.83), above this
    # deliberately low threshold, so only the anchor guard keeps it from being served France's answer
    config = config_with_vectors(tmp_path, vectors, auth="optional",
                                 cache={"enabled": True, "semantic": True, "semantic_threshold": 0.8,
                                        "semantic_model": "vec"})
    process, url, _ = start(tmp_path, config)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)

        def ask(*turns: str) -> dict[str, Any]:
            messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
            return podium_field(client.chat.completions.with_raw_response.create(model="echo", messages=messages))

        first = ask("What is the capital of France?")
        assert first["cost"] > 0
        paraphrase = ask("Capital of France: what is the capital?")  # the same words, another order
        assert paraphrase["cost"] == 0.0 and paraphrase["notes"][0].startswith("semantic cache hit (similarity")
        assert ask("What is the capital of Germany?")["cost"] > 0  # anchors differ: France ≠ Germany
        assert ask("Hello", "Hi there", "What is the capital of France?")["cost"] > 0  # another history
        metrics = httpx.get(f"{url}/metrics").text
        assert 'podium_cache_hits_total{kind="semantic",model="echo"} 1.0' in metrics
    finally:
        stop(process)


def test_team_budget_and_limits_hold_across_the_teams_keys(tmp_path: Path):
    # each request holds $0.000121 (see test_gateway): the team's $0.00013 holds one request, the team RPM 3
    config = write_config(tmp_path, teams={"research": {"budget": 0.00013, "budget_period": "day"},
                                           "ops": {"rpm": 3}})
    keys = KeyStore(tmp_path / "keys.sqlite3")
    alice, _ = keys.create("alice", team="research")
    bob, _ = keys.create("bob", team="research", budget=10.0)
    carol, _ = keys.create("carol", team="ops")
    dave, _ = keys.create("dave", team="ops")
    process, url, _ = start(tmp_path, config)
    messages = [{"role": "user", "content": "hi"}]
    try:
        def client(key: str) -> openai.OpenAI:
            return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)

        client(alice).chat.completions.create(model="echo", messages=messages, max_tokens=50)
        with pytest.raises(openai.RateLimitError, match="team 'research' \\(of key 'bob'\\) has spent") as info:
            client(bob).chat.completions.create(model="echo", messages=messages, max_tokens=50)
        assert info.value.body["code"] == "budget_exceeded"  # type: ignore[index]
        for key in (carol, dave, carol):
            client(key).chat.completions.create(model="echo", messages=messages)
        with pytest.raises(openai.RateLimitError, match="team 'ops': 3 requests"):
            client(dave).chat.completions.create(model="echo", messages=messages)
        admin = {"authorization": "Bearer admin-secret-0123456789"}
        refused = httpx.post(f"{url}/admin/keys", headers=admin, json={"name": "eve", "team": "sales"})
        assert refused.status_code == 400 and "unknown team 'sales' (teams: ops, research)" in refused.text
        created = httpx.post(f"{url}/admin/keys", headers=admin, json={"name": "erin", "team": "ops"})
        assert created.status_code == 201 and created.json()["team"] == "ops"
        listed = httpx.get(f"{url}/admin/keys", headers=admin).json()
        assert {k["name"]: k["team"] for k in listed["data"]} == {"alice": "research", "bob": "research",
                                                                  "carol": "ops", "dave": "ops", "erin": "ops"}
    finally:
        stop(process)


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace receiver: POST /v1/traces with a protobuf ExportTraceServiceRequest."""

    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/v1/traces":
            type(self).received.append(body)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


def test_otlp_spans_nest_request_strategy_calls_under_the_callers_trace(tmp_path: Path):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    _Collector.received = []
    collector = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    path = write_config(tmp_path, auth="optional")
    data = json.loads(path.read_text())
    data["telemetry"] = {"enabled": True, "otlp_endpoint": f"http://127.0.0.1:{collector.server_port}",
                         "service_name": "podium-test"}
    path.write_text(json.dumps(data))
    process, url, _ = start(tmp_path, path)
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        client.chat.completions.create(model="panel", messages=[{"role": "user", "content": "hi"}],
                                       extra_headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    finally:
        stop(process)  # shutting down flushes the batch of spans
        collector.shutdown()
    spans = {}
    for body in _Collector.received:
        export = ExportTraceServiceRequest.FromString(body)
        for resource in export.resource_spans:
            service = {a.key: a.value.string_value for a in resource.resource.attributes}["service.name"]
            assert service == "podium-test"
            for scope in resource.scope_spans:
                for span in scope.spans:
                    spans[span.span_id] = span
    by_name: dict[str, list[Any]] = {}
    for span in spans.values():
        by_name.setdefault(span.name, []).append(span)
    (request,) = by_name["podium.request"]
    (strategy,) = by_name["strategy panel"]
    calls = by_name["chat echo"] + by_name["chat other"]
    assert request.trace_id.hex() == trace_id and request.parent_span_id.hex() == parent_id
    assert strategy.parent_span_id == request.span_id
    assert len(calls) >= 2 and all(c.parent_span_id == strategy.span_id for c in calls)
    attributes = {a.key: a.value for a in calls[0].attributes}
    assert attributes["gen_ai.operation.name"].string_value == "chat"
    assert attributes["gen_ai.usage.input_tokens"].int_value > 0
    assert attributes["podium.cost_usd"].double_value > 0
    assert "hi" not in {a.value.string_value for s in spans.values() for a in s.attributes}  # no prompt text


def test_a_cache_that_is_down_is_a_miss_not_a_failed_request(tmp_path: Path):
    scenario = Scenario()
    server = WireServer(lambda req: WIRES["openai"].handle(req, scenario)).start()
    config = config_with_vectors(tmp_path, server, auth="optional",
                                 cache={"enabled": True, "semantic": True, "semantic_model": "vec"})
    server.stop()  # the embedding model is unreachable from the start
    process, url, _ = start(tmp_path, config)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": "What is the capital of France?"}])
        assert raw.parse().choices[0].message.content == "Paris is the capital of France."
        assert any(n.startswith("cache unavailable (") for n in podium_field(raw)["notes"])
    finally:
        stop(process)


def test_the_semantic_lookup_obeys_the_requests_regions_and_is_one_of_its_calls(tmp_path: Path, vectors: WireServer):
    """The question is embedded under the request's policy: never sent to a US embedding model when the
    data is confidential (or holds personal data under route_local), and recorded as a call of the
    request itself, under its id, not as a request of its own."""
    config = config_with_vectors(tmp_path, vectors, auth="optional", guardrails={"pii": "route_local"},
                                 cache={"enabled": True, "semantic": True, "semantic_model": "vec"})
    data = json.loads(config.read_text())
    data["providers"]["canned-eu"] = {"kind": "scripted", "region": "eu", "options": {"default": "EU answer"}}
    data["providers"]["local"] = {"enabled": False}
    data["models"]["eu-echo"] = {"provider": "canned-eu", "context_window": 8000, "input_price": 1.0,
                                 "output_price": 1.0, "tier": "fast", "region": "eu"}
    config.write_text(json.dumps(data))
    process, url, _ = start(tmp_path, config)
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        embedded = len(vectors.requests)
        for metadata, text in (({"sensitivity": "confidential"}, "What is our merger plan?"),
                               ({}, "Mail bob@example.org the card 4111 1111 1111 1111")):
            raw = client.chat.completions.with_raw_response.create(model="auto", metadata=metadata,
                                                                    messages=[{"role": "user", "content": text}])
            assert any(n.startswith("semantic cache skipped:") and "region 'us'" in n
                       for n in podium_field(raw)["notes"])
        assert len(vectors.requests) == embedded  # nothing went to the US embedding model
        public = client.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": "What is the capital of France?"}])
        request_id = public.headers["x-request-id"]
        assert len(vectors.requests) == embedded + 1
    finally:
        stop(process)
    import sqlite3

    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        steps = conn.execute("SELECT step, model FROM calls WHERE request_id = ? ORDER BY seq",
                             (request_id,)).fetchall()
        requests = conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0]
    assert steps == [("semantic-cache", "vec"), (None, "echo")]
    assert requests == 3  # one row per chat request; the lookup is not a request of its own


def test_embeddings_honour_the_sensitivity_and_preset_headers(tmp_path: Path, vectors: WireServer):
    config = config_with_vectors(tmp_path, vectors, auth="optional")
    process, url, _ = start(tmp_path, config)
    try:
        before = len(vectors.requests)
        for header, value in (("x-podium-sensitivity", "confidential"), ("x-podium-preset", "privacy-first")):
            refused = httpx.post(f"{url}/v1/embeddings", json={"model": "vec", "input": "our merger plan"},
                                 headers={header: value})
            assert refused.status_code == 403, refused.text
            assert refused.json()["error"]["code"] == "region_not_allowed"
        assert httpx.post(f"{url}/v1/embeddings", json={"model": "vec", "input": "x"},
                          headers={"x-podium-sensitivity": "secret"}).status_code == 400
        assert len(vectors.requests) == before
        assert httpx.post(f"{url}/v1/embeddings", json={"model": "vec", "input": "public text"}).status_code == 200
    finally:
        stop(process)

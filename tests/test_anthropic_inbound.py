"""The official ``anthropic`` SDK against the gateway's ``/v1/messages`` and ``/v1/messages/count_tokens``,
over each outbound wire: a model on an OpenAI, Anthropic, Gemini or Ollama upstream (local servers
speaking the vendors' documented formats). In-process through the SDK's own HTTP client on an ASGI
transport, and once against ``podium serve`` found through ``ANTHROPIC_BASE_URL``."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest

from podium.client import Podium
from podium.config import load_settings
from podium.server.app import create_app
from podium.server.keys import KeyStore
from servers.http_server import WireServer
from servers.wires import WIRES, Scenario

KINDS = ["openai", "anthropic", "gemini", "ollama"]
PREFIX = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta", "ollama": ""}
MODEL_ID = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5-20250929", "gemini": "gemini-2.5-flash",
            "ollama": "llama3.2:3b"}
HI = [{"role": "user", "content": "hi"}]
WEATHER = {"name": "get_weather", "description": "The weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@dataclass
class Gw:
    kind: str
    client: anthropic.AsyncAnthropic
    http: httpx2.AsyncClient
    scenario: Scenario
    server: WireServer
    keys: KeyStore
    key: str
    podium: Podium
    ledger: Path

    def sdk(self, key: str) -> anthropic.AsyncAnthropic:
        return anthropic.AsyncAnthropic(base_url="http://gw", api_key=key, http_client=self.http, max_retries=0)

    def upstream(self) -> dict[str, Any]:
        """The last body the upstream received."""
        return self.server.requests[-1].json  # type: ignore[no-any-return]

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.ledger) as conn:
            return conn.execute(sql, params).fetchall()


def config(tmp_path: Path, kind: str, url: str) -> dict[str, Any]:
    row = {"provider": "up", "model_id": MODEL_ID[kind], "context_window": 8000, "input_price": 1.0,
           "output_price": 2.0, "tier": "fast", "region": "us", "max_output_tokens": 100,
           "capabilities": ["chat", "tools", "vision"]}
    return {
        "providers": {"up": {"kind": kind, "base_url": url + PREFIX[kind], "api_key": "sk-upstream-0123456789"},
                      "local": {"enabled": False}},
        "models": {"m": row, "other": row},
        "resilience": {"retries": {"max_attempts": 1}},
        "gateway": {"keys_path": str(tmp_path / "keys.sqlite3")},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")},
    }


async def open_gateway(tmp_path: Path, kind: str) -> Gw:
    scenario = Scenario()
    server = WireServer(lambda request: WIRES[kind].handle(request, scenario)).start()
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(config(tmp_path, kind, server.url)))
    settings = load_settings(path)
    podium = Podium(settings)
    app = create_app(settings, podium=podium)
    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://gw")
    keys = KeyStore(tmp_path / "keys.sqlite3")
    key, _ = keys.create("tests")
    client = anthropic.AsyncAnthropic(base_url="http://gw", api_key=key, http_client=http, max_retries=0)
    return Gw(kind, client, http, scenario, server, keys, key, podium, tmp_path / "ledger.sqlite3")


@pytest.fixture(params=KINDS)
async def gw(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Gw]:
    gateway = await open_gateway(tmp_path, request.param)
    yield gateway
    await gateway.http.aclose()
    await gateway.podium.aclose()
    gateway.server.stop()


@pytest.fixture
async def openai_gw(tmp_path: Path) -> AsyncIterator[Gw]:
    gateway = await open_gateway(tmp_path, "openai")
    yield gateway
    await gateway.http.aclose()
    await gateway.podium.aclose()
    gateway.server.stop()


# --- every wire ------------------------------------------------------------------------------------------------------
async def test_create_answers_a_message_under_the_request_id(gw: Gw):
    raw = await gw.client.messages.with_raw_response.create(model="m", max_tokens=50, system="Be brief.",
                                                            messages=HI)
    message = await raw.parse()
    request_id = raw.headers["x-request-id"]
    assert raw.headers["request-id"] == request_id and message._request_id == request_id
    assert message.id == f"msg_{request_id}"
    assert message.type == "message" and message.role == "assistant" and message.model == "m"
    assert [(b.type, b.text) for b in message.content if b.type == "text"] == [("text", "Hello from the wire.")]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 7)
    assert gw.rows("SELECT request_id, status FROM requests") == [(request_id, "ok")]
    feedback = await gw.http.post("/v1/feedback", json={"request_id": message.id, "score": 1.0},
                                  headers={"x-api-key": gw.key})
    assert feedback.status_code == 200 and feedback.json()["request_id"] == request_id


async def test_stream_helper_text_and_final_message(gw: Gw):
    async with gw.client.messages.stream(model="m", max_tokens=50, messages=HI) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "Hello from the wire."
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn" and final.model == "m"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 7)
    request_id = final.id.removeprefix("msg_")
    assert gw.rows("SELECT request_id, status FROM requests") == [(request_id, "ok")]


async def test_create_stream_sends_the_typed_events_in_order(gw: Gw):
    stream = await gw.client.messages.create(model="m", max_tokens=50, messages=HI, stream=True)
    events = [event async for event in stream]
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[1] == "content_block_start"
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "".join(e.delta.text for e in events if e.type == "content_block_delta") == "Hello from the wire."
    delta = events[-2]
    assert delta.delta.stop_reason == "end_turn"
    assert (delta.usage.input_tokens, delta.usage.output_tokens) == (12, 7)


async def test_tool_use_round_trip(gw: Gw):
    gw.scenario.tool = ("call_1", "get_weather", '{"city": "Paris"}')
    message = await gw.client.messages.create(model="m", max_tokens=50, tools=[WEATHER],
                                              tool_choice={"type": "any"}, messages=[
                                                  {"role": "user", "content": "Weather in Paris?"}])
    calls = [b for b in message.content if b.type == "tool_use"]
    assert [(c.name, c.input) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert message.stop_reason == "tool_use"
    sent = json.dumps(gw.upstream())
    assert "get_weather" in sent and '"city"' in sent
    async with gw.client.messages.stream(model="m", max_tokens=50, tools=[WEATHER], messages=[
            {"role": "user", "content": "Weather in Paris?"}]) as stream:
        streamed = await stream.get_final_message()
    assert [(b.name, b.input) for b in streamed.content if b.type == "tool_use"] == [("get_weather", {"city": "Paris"})]
    assert streamed.stop_reason == "tool_use"
    gw.scenario.tool = None
    answer = await gw.client.messages.create(model="m", max_tokens=50, tools=[WEATHER], messages=[
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": message.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny, 21 °C"}]}])
    assert answer.content[0].type == "text" and answer.stop_reason == "end_turn"
    assert "sunny, 21" in json.dumps(gw.upstream(), ensure_ascii=False)


async def test_count_tokens(gw: Gw):
    small = await gw.client.messages.count_tokens(model="m", messages=HI)
    more = await gw.client.messages.count_tokens(model="m", system="Be brief.", tools=[WEATHER], messages=[
        {"role": "user", "content": "What is the weather in Paris today, and tomorrow?"}])
    assert 0 < small.input_tokens < more.input_tokens
    assert (await gw.client.messages.count_tokens(model="auto", messages=HI)).input_tokens == small.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        await gw.client.messages.count_tokens(model="no-such-model", messages=HI)
    with pytest.raises(anthropic.AuthenticationError):
        await gw.sdk("pk-wrong-key").messages.count_tokens(model="m", messages=HI)
    assert gw.server.requests == []  # counted by Podium, never sent


async def test_errors_in_anthropics_shape(gw: Gw):
    with pytest.raises(anthropic.AuthenticationError) as bad_key:
        await gw.sdk("pk-wrong-key").messages.create(model="m", max_tokens=5, messages=HI)
    assert bad_key.value.body["type"] == "error"  # type: ignore[index]
    assert bad_key.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError, match="max_tokens: Field required"):
        await gw.client.post("/v1/messages", body={"model": "m", "messages": HI}, cast_to=anthropic.types.Message)
    with pytest.raises(anthropic.NotFoundError) as unknown:
        await gw.client.messages.create(model="no-such-model", max_tokens=5, messages=HI)
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError, match="frequency_penalty: Extra inputs are not permitted"):
        await gw.client.messages.create(model="m", max_tokens=5, messages=HI, extra_body={"frequency_penalty": 1})
    gw.scenario.error = "rate_limit"
    with pytest.raises(anthropic.RateLimitError) as limited:
        await gw.client.messages.create(model="m", max_tokens=5, messages=HI)
    assert limited.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert gw.server.requests  # the last one reached the upstream
    assert "sk-upstream" not in str(limited.value.body)


async def test_a_failure_after_the_first_byte_is_an_error_event(gw: Gw):
    gw.scenario.text = " ".join(["word"] * 12)
    gw.scenario.fault, gw.scenario.fault_after_chunks = "reset_mid_body", 4
    stream = await gw.client.messages.create(model="m", max_tokens=50, messages=HI, stream=True)
    seen: list[str] = []

    async def read() -> None:
        async for event in stream:
            seen.append(event.type)

    with pytest.raises(anthropic.APIStatusError) as failed:
        await read()
    assert seen[0] == "message_start" and "message_stop" not in seen
    assert failed.value.body["type"] == "error"  # type: ignore[index]
    assert failed.value.body["error"]["type"] in ("api_error", "overloaded_error")  # type: ignore[index]


# --- the dialect itself (one wire) ---------------------------------------------------------------------------------
async def test_scoped_and_budgeted_keys_are_refused_as_on_chat_completions(openai_gw: Gw):
    gw = openai_gw
    scoped, _ = gw.keys.create("scoped", models=["other"])
    poor, _ = gw.keys.create("poor", budget=0.0)
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        await gw.sdk(scoped).messages.create(model="m", max_tokens=5, messages=HI)
    assert denied.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    assert (await gw.sdk(scoped).messages.create(model="other", max_tokens=5, messages=HI)).content
    with pytest.raises(anthropic.PermissionDeniedError):
        await gw.sdk(scoped).messages.count_tokens(model="m", messages=HI)
    with pytest.raises(anthropic.RateLimitError) as broke:
        await gw.sdk(poor).messages.create(model="m", max_tokens=5, messages=HI)
    chat = [await gw.http.post("/v1/chat/completions", json={"model": "m", "messages": HI, "max_tokens": 5},
                               headers={"authorization": f"Bearer {key}"}) for key in (scoped, poor)]
    assert [r.status_code for r in chat] == [403, broke.value.status_code]
    assert len(gw.server.requests) == 1  # only the allowed one went out


async def test_request_fields_reach_the_upstream_translated(openai_gw: Gw):
    gw = openai_gw
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
    raw = await gw.http.post("/v1/messages", headers={"x-api-key": gw.key, "x-podium-task-type": "analysis"}, json={
        "model": "m", "max_tokens": 3000, "temperature": 0.3, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END"],
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind.",
                                                            "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "user-42"}, "thinking": {"type": "enabled", "budget_tokens": 2048},
        "tools": [WEATHER], "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        "output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}},
        "messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, image]},
                     {"role": "assistant", "content": [
                         {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                         {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
                     {"role": "user", "content": [
                         {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                          "content": [{"type": "text", "text": "no such city"}]},
                         {"type": "text", "text": "Try again."}]}]})
    assert raw.status_code == 200, raw.text
    body = gw.upstream()
    assert body["messages"][0] == {"role": "system", "content": "Be brief.\n\nBe kind."}
    assert body["messages"][1]["content"][1] == {"type": "image_url",
                                                 "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    assert body["messages"][2]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "Error: no such city"}
    assert body["messages"][4]["content"] == [{"type": "text", "text": "Try again."}]
    assert (body["temperature"], body["top_p"], body["stop"], body["user"]) == (0.3, 0.9, ["END"], "user-42")
    assert body["max_tokens"] == 3000 and body["reasoning_effort"] == "low"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert "top_k" not in body
    notes = raw.json()["podium"]["notes"]
    assert "'top_k' dropped: Podium has no equivalent" in notes and "'cache_control' dropped: Podium has no " \
        "equivalent" in notes
    assert any("thinking blocks" in note for note in notes)
    assert gw.rows("SELECT task_type FROM requests") == [("analysis",)]


@pytest.mark.parametrize(("field", "value", "named"), [
    ("tools", [{"type": "web_search_20250305", "name": "web_search"}], "tools.0.type"),
    ("container", "container_1", "container"),
    ("inference_geo", "us", "inference_geo"),
    ("max_tokens", 0, "max_tokens"),
    ("temperature", 1.5, "temperature"),
    ("metadata", {"user_id": "u", "team": "x"}, "metadata.team"),
    ("thinking", {"type": "enabled", "budget_tokens": 100}, "budget_tokens"),
    ("tool_choice", {"type": "sometimes"}, "tool_choice.type"),
    ("tool_choice", {"type": ["auto"]}, "tool_choice.type"),
    ("output_config", {"effort": {"a": 1}}, "output_config.effort"),
    ("output_config", {"format": {"type": "json_schema", "schema": json.loads("[" * 100 + "]" * 100)}},
     "output_config.format.schema"),
    ("messages", [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": json.loads(
        '{"a":' * 100 + "1" + "}" * 100)}]}], "messages.0.content.0.input: nests JSON deeper than 64 levels"),
    ("messages", [{"role": "user", "content": [{"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}]}], "messages.0.content.0"),
    ("messages", [{"role": "user", "content": [{"type": "server_tool_use", "id": "x"}]}], "messages.0.content.0.type"),
    ("messages", [{"role": "robot", "content": "hi"}], "messages.0.role"),
    ("messages", [], "messages"),
    ("stream", "yes", "stream"),
])
async def test_refusals_name_the_field(openai_gw: Gw, field: str, value: Any, named: str):
    body: dict[str, Any] = {"model": "m", "max_tokens": 16, "messages": HI, "tools": [WEATHER], field: value}
    response = await openai_gw.http.post("/v1/messages", json=body, headers={"x-api-key": openai_gw.key})
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
    assert named in error["error"]["message"]
    assert openai_gw.server.requests == []


async def test_cached_input_is_reported_apart_as_anthropic_counts_it(openai_gw: Gw):
    openai_gw.scenario.cached_tokens = 4
    message = await openai_gw.client.messages.create(model="m", max_tokens=16, messages=HI)
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (8, 4, 7)


async def test_the_raw_stream_is_anthropics_event_lines(openai_gw: Gw):
    response = await openai_gw.http.post("/v1/messages", json={"model": "m", "max_tokens": 16, "messages": HI,
                                                               "stream": True}, headers={"x-api-key": openai_gw.key})
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [frame for frame in response.text.split("\n\n") if frame]
    names = []
    for frame in frames:
        event, data = frame.split("\n")
        name = event.removeprefix("event: ")
        assert json.loads(data.removeprefix("data: "))["type"] == name
        names.append(name)
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-1] == "message_stop"
    start = json.loads(frames[0].split("\n")[1][6:])["message"]
    assert start["id"] == f"msg_{response.headers['x-request-id']}" and start["content"] == []


async def test_a_strategy_and_auto_answer_through_messages(openai_gw: Gw):
    routed = await openai_gw.client.messages.create(model="auto", max_tokens=16, messages=HI)
    assert routed.model in ("m", "other")
    voted = await openai_gw.client.messages.create(model="consensus:m,other", max_tokens=16, messages=HI)
    assert voted.content[0].type == "text" and voted.content[0].text == "Hello from the wire."


# --- a real server, found the way the SDK finds it -----------------------------------------------------------------
def test_podium_serve_through_anthropic_base_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from test_gateway import start, write_config

    process, url, _ = start(tmp_path, write_config(tmp_path))
    try:
        key, _ = KeyStore(tmp_path / "keys.sqlite3").create("sdk")
        monkeypatch.setenv("ANTHROPIC_BASE_URL", url)  # set for the client only: the server is already running
        monkeypatch.setenv("ANTHROPIC_API_KEY", key)
        client = anthropic.Anthropic(max_retries=0)
        message = client.messages.create(model="echo", max_tokens=20, messages=HI)
        assert message.content[0].type == "text" and message.content[0].text == "Paris is the capital of France."
        with client.messages.stream(model="panel", max_tokens=20, messages=HI) as stream:
            assert "".join(stream.text_stream)
            assert stream.get_final_message().stop_reason == "end_turn"
    finally:
        process.terminate()
        process.wait(10)

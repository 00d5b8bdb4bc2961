"""``POST /v1/responses`` with the official ``openai`` SDK: text, instructions, multi-turn input, a function
tool round trip, structured output, both kinds of streaming, raw responses and errors, each over the four
outbound wires (local servers speaking each vendor's documented format); then the promises every dialect
shares: a scoped or budgeted key is held to the same limits as on chat completions, one ledger row per
request under the id the client sees, and every refused parameter is a 400 that names it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from podium import errors
from podium.providers.scripted import Step
from podium.server.dialect import Exchange
from podium.server.responses_api import RESPONSES, Turn, response_json
from podium.types import ChatRequest, ChatResponse
from servers.http_server import Request, WireServer
from servers.wires import WIRES, Scenario
from test_gateway_policy import Gw, bearer, config, open_gateway
from test_provider_contract import KEY, MODEL_ID, PREFIX

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}, "strict": True}


@dataclass
class Wired:
    kind: str
    gw: Gw
    server: WireServer
    scenario: Scenario
    key: str

    def sdk(self, key: str | None = None) -> openai.AsyncOpenAI:
        return self.gw.sdk(key or self.key)

    def sent(self) -> dict[str, Any]:
        """The body of the last request the upstream received."""
        body: dict[str, Any] = self.server.requests[-1].json
        return body


@pytest.fixture(params=sorted(WIRES))
async def wired(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Wired]:
    kind: str = request.param
    scenario = Scenario()

    def handle(req: Request) -> Any:
        return WIRES[kind].handle(req, scenario)

    server = WireServer(handle).start()
    data = config(tmp_path)
    data["providers"]["upstream"] = {"kind": kind, "base_url": server.url + PREFIX[kind], "api_key": KEY}
    data["models"]["up"] = {"provider": "upstream", "model_id": MODEL_ID[kind], "context_window": 100_000,
                            "input_price": 1.0, "output_price": 2.0, "tier": "fast", "region": "us",
                            "max_output_tokens": 4096, "capabilities": ["chat", "tools", "json"]}
    gw = await open_gateway(tmp_path, data)
    key, _ = gw.keys.create("responses")
    yield Wired(kind, gw, server, scenario, key)
    await gw.http.aclose()
    await gw.podium.aclose()
    server.stop()


def system_text(kind: str, body: dict[str, Any]) -> str:
    """The instructions as each wire carries them."""
    if kind == "anthropic":
        system = body["system"]
        return system if isinstance(system, str) else "".join(block["text"] for block in system)
    if kind == "gemini":
        return "".join(part["text"] for part in body["systemInstruction"]["parts"])
    first = body["messages"][0]
    assert first["role"] in ("system", "developer")
    return str(first["content"])


def turns(kind: str, body: dict[str, Any]) -> list[str]:
    """The conversation's roles as the wire sent them (system text aside)."""
    if kind == "gemini":
        return [c["role"] for c in body["contents"]]
    return [m["role"] for m in body["messages"] if m["role"] not in ("system", "developer")]


# --- each wire ----------------------------------------------------------------------------------------
async def test_text_with_instructions_usage_and_the_request_id(wired: Wired) -> None:
    raw = await wired.sdk().responses.with_raw_response.create(
        model="up", input="What is the capital of France?", instructions="Be brief.", max_output_tokens=200,
        temperature=0.5, metadata={"task_type": "qa"})
    response = raw.parse()
    assert response.output_text == "Hello from the wire."
    assert response.status == "completed" and response.object == "response"
    assert response.id == f"resp_{raw.headers['x-request-id']}"
    assert response.model == "up" and response.instructions == "Be brief." and response.temperature == 0.5
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (12, 7, 19)
    [message] = response.output
    assert message.type == "message" and message.role == "assistant" and message.status == "completed"
    sent = wired.sent()
    assert system_text(wired.kind, sent) == "Be brief."
    assert "What is the capital of France?" in json.dumps(sent)
    assert wired.gw.rows("SELECT request_id, task_type, status FROM requests") == [
        (raw.headers["x-request-id"], "qa", "ok")]


async def test_a_multi_turn_input_list(wired: Wired) -> None:
    response = await wired.sdk().responses.create(model="up", input=[
        {"role": "developer", "content": "Answer in one word."},
        {"role": "user", "content": "My name is Ada."},
        {"type": "message", "role": "assistant", "id": "msg_earlier", "status": "completed",
         "content": [{"type": "output_text", "text": "Hello Ada.", "annotations": []}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is my name?"}]},
    ])
    assert response.output_text == "Hello from the wire."
    sent = wired.sent()
    assert system_text(wired.kind, sent) == "Answer in one word."
    assert turns(wired.kind, sent) == (["user", "model", "user"] if wired.kind == "gemini" else
                                       ["user", "assistant", "user"])
    assert "Hello Ada." in json.dumps(sent) and "What is my name?" in json.dumps(sent)


async def test_a_function_tool_round_trip(wired: Wired) -> None:
    wired.scenario.tool = ("call_9", "get_weather", '{"city": "Paris"}')
    sdk = wired.sdk()
    question = {"role": "user", "content": "Weather in Paris?"}
    first = await sdk.responses.create(model="up", input=[question], tools=[WEATHER],  # type: ignore[list-item]
                                       tool_choice="auto")
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and json.loads(calls[0].arguments) == {"city": "Paris"}
    assert calls[0].status == "completed" and calls[0].id and calls[0].id.startswith("fc_")
    if wired.kind in ("openai", "anthropic"):  # the wires whose calls have ids
        assert calls[0].call_id == "call_9"
    sent = wired.sent()
    assert "get_weather" in json.dumps(sent) and "additionalProperties" in json.dumps(sent)
    wired.scenario.tool = None
    earlier = [item.model_dump(exclude_none=True) for item in first.output]
    answer = await sdk.responses.create(model="up", tools=[WEATHER], input=[  # type: ignore[list-item]
        question, *earlier, {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18C and sunny"}])
    assert answer.output_text == "Hello from the wire."
    sent = json.dumps(wired.sent())
    assert "18C and sunny" in sent and sent.count("Paris") >= 2  # the question and the call's arguments
    if wired.kind in ("openai", "anthropic"):
        assert sent.count(calls[0].call_id) == 2  # the call and its result, tied by the id


class City(BaseModel):
    city: str
    country: str


async def test_structured_output_with_text_format(wired: Wired) -> None:
    wired.scenario.text = wired.scenario.json_answer = '{"city": "Paris", "country": "France"}'
    parsed = await wired.sdk().responses.parse(model="up", input="Capital of France?", text_format=City)
    assert parsed.output_parsed == City(city="Paris", country="France")
    assert parsed.text is not None and parsed.text.format.type == "json_schema"
    sent = wired.sent()
    schema = {"openai": lambda b: b["response_format"]["json_schema"]["schema"],
              "anthropic": lambda b: b["output_config"]["format"]["schema"],
              "gemini": lambda b: b["generationConfig"]["responseJsonSchema"],
              "ollama": lambda b: b["format"]}[wired.kind](sent)
    assert schema["properties"] == {"city": {"title": "City", "type": "string"},
                                    "country": {"title": "Country", "type": "string"}}


async def test_the_stream_helper_and_its_final_response(wired: Wired) -> None:
    async with wired.sdk().responses.stream(model="up", input="hi", instructions="Be brief.") as stream:
        events = [event async for event in stream]
        final = await stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello from the wire."
    assert final.output_text == "Hello from the wire." and final.status == "completed"
    assert final.usage is not None and final.usage.output_tokens == 7 and final.usage.input_tokens == 12
    assert final.instructions == "Be brief."
    assert wired.server.requests[-1].json.get("stream", True) is True


async def test_streamed_tool_calls_as_raw_events(wired: Wired) -> None:
    wired.scenario.tool = ("call_7", "get_weather", '{"city": "Paris"}')
    raw = await wired.sdk().responses.with_raw_response.create(model="up", input="Weather in Paris?",
                                                               tools=[WEATHER], stream=True)  # type: ignore[list-item]
    request_id = raw.headers["x-request-id"]
    events = [event async for event in raw.parse()]  # a stream's parse() is the stream itself
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert all(e.response.id == f"resp_{request_id}" for e in events  # type: ignore[union-attr]
               if e.type in ("response.created", "response.completed"))
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(arguments) == {"city": "Paris"}
    [done] = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done.arguments == arguments
    final = events[-1].response  # type: ignore[union-attr]
    [call] = [item for item in final.output if item.type == "function_call"]
    assert call.name == "get_weather" and call.arguments == arguments and call.id == done.item_id
    assert final.usage is not None and final.usage.output_tokens == 7
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == (["message", "function_call"] if wired.kind == "anthropic" else ["function_call"])
    assert wired.gw.rows("SELECT status FROM requests WHERE request_id = ?", request_id) == [("ok",)]


async def test_errors_in_openai_json(wired: Wired) -> None:
    with pytest.raises(openai.AuthenticationError):
        await wired.sdk("pk-wrong-key").responses.create(model="up", input="hi")
    with pytest.raises(openai.NotFoundError, match="Did you mean"):
        await wired.sdk().responses.create(model="upp", input="hi")
    with pytest.raises(openai.BadRequestError, match="stateless") as stateless:
        await wired.sdk().responses.create(model="up", input="hi", previous_response_id="resp_123")
    assert stateless.value.param == "previous_response_id"
    with pytest.raises(openai.BadRequestError, match="web_search") as builtin:
        await wired.sdk().responses.create(model="up", input="hi", tools=[{"type": "web_search"}])
    assert builtin.value.param == "tools[0].type"
    wired.scenario.error = "rate_limit"
    with pytest.raises(openai.RateLimitError):
        await wired.sdk().responses.create(model="up", input="hi")
    assert len(wired.server.requests) >= 1


async def test_a_stream_that_breaks_after_its_first_byte_ends_with_error_and_response_failed(wired: Wired) -> None:
    wired.scenario.text = "one two three four five six"
    wired.scenario.fault, wired.scenario.fault_after_chunks = "reset_mid_body", 5
    stream = await wired.sdk().responses.create(model="up", input="count", stream=True)
    events = [event async for event in stream]
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]
    assert events[0].type == "response.created"
    failed = events[-1].response  # type: ignore[union-attr]
    assert failed.status == "failed" and failed.error is not None and failed.error.message
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert wired.gw.rows("SELECT status FROM requests") == [("error",)]


# --- shared promises (scripted models) -------------------------------------------------------------------
@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gw]:
    data = config(tmp_path)
    data["models"]["echo"]["capabilities"] = ["chat", "tools"]
    gateway = await open_gateway(tmp_path, data)
    yield gateway
    await gateway.http.aclose()
    await gateway.podium.aclose()


async def test_scoped_and_budgeted_keys_are_held_as_on_chat_completions(gw: Gw) -> None:
    async def both(key: str, model: str, **limits: Any) -> list[tuple[int, str]]:
        chat = await gw.http.post("/v1/chat/completions", headers=bearer(key), json={
            "model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 50})
        responses = await gw.http.post("/v1/responses", headers=bearer(key), json={
            "model": model, "input": "hi", "max_output_tokens": 50})
        return [(r.status_code, r.json()["error"]["type"] if r.status_code != 200 else "ok")
                for r in (chat, responses)]

    scoped, _ = gw.keys.create("echo only", models=["echo"])
    assert await both(scoped, "echo") == [(200, "ok"), (200, "ok")]
    assert await both(scoped, "other") == [(403, "permission_error")] * 2
    # each request holds its worst case (~$0.000121), then settles its real cost: $0.00013 fits one at a time
    for endpoint in ("/v1/chat/completions", "/v1/responses"):
        poor, _ = gw.keys.create(f"poor {endpoint}", budget=0.00013)
        asked = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 50} if "chat" in endpoint else \
            {"input": "hi", "max_output_tokens": 50}
        body: dict[str, Any] = {"model": "echo", **asked}
        statuses = [(await gw.http.post(endpoint, headers=bearer(poor), json=body)).status_code for _ in range(2)]
        assert statuses == [200, 429], endpoint
    slow, _ = gw.keys.create("slow", rpm=2)
    got = [(await gw.http.post("/v1/responses", headers=bearer(slow), json={"model": "echo", "input": "hi"}))
           for _ in range(3)]
    assert [r.status_code for r in got] == [200, 200, 429] and int(got[2].headers["retry-after"]) >= 1


async def test_one_ledger_row_per_request_under_the_id_the_client_sees_and_feedback_by_it(gw: Gw) -> None:
    key, record = gw.keys.create("ids")
    sdk = gw.sdk(key)
    answered = await sdk.responses.with_raw_response.create(model="echo", input="hi")
    answer_id = answered.headers["x-request-id"]
    assert answered.parse().id == f"resp_{answer_id}"
    streamed = await gw.http.post("/v1/responses", headers=bearer(key),
                                  json={"model": "echo", "input": "hi", "stream": True})
    stream_id = streamed.headers["x-request-id"]
    ids = {json.loads(line[6:])["response"]["id"] for line in streamed.text.splitlines()
           if line.startswith("data: {") and '"response":' in line}
    assert ids == {f"resp_{stream_id}"}
    gw.canned().set_script("other-1", Step(error=errors.ProviderUnavailableError("down")))
    failed = await gw.http.post("/v1/responses", headers=bearer(key), json={"model": "other", "input": "hi"})
    assert failed.status_code == 503 and failed.json()["error"]["type"] == "service_unavailable"
    rows = gw.rows("SELECT request_id, status, key_id FROM requests ORDER BY started_at")
    assert sorted(rows) == sorted([(answer_id, "ok", record.id), (stream_id, "ok", record.id),
                                   (failed.headers["x-request-id"], "error", record.id)])
    feedback = await gw.http.post("/v1/feedback", headers=bearer(key),
                                  json={"request_id": f"resp_{answer_id}", "score": 1.0})
    assert feedback.status_code == 200 and feedback.json()["request_id"] == answer_id


async def test_cut_answers_are_incomplete_and_routing_headers_apply(gw: Gw) -> None:
    key, _ = gw.keys.create("cut")
    gw.canned().set_script("echo-1", [Step(text="Paris is", finish_reason="length")] * 2)
    sdk = gw.sdk(key)
    response = await sdk.responses.create(model="echo", input="hi", max_output_tokens=2,
                                          extra_headers={"X-Podium-Task-Type": "geography"})
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens" and response.output[0].status == "incomplete"
    stream = await sdk.responses.create(model="echo", input="hi", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"  # type: ignore[union-attr]
    assert gw.rows("SELECT task_type FROM requests ORDER BY started_at LIMIT 1") == [("geography",)]


HI = {"model": "echo", "input": "hi"}


@pytest.mark.parametrize(("body", "param", "words"), [
    ({**HI, "previous_response_id": "resp_1"}, "previous_response_id", "send the whole conversation"),
    ({**HI, "conversation": "conv_1"}, "conversation", "stateless"),
    ({**HI, "background": True}, "background", "stateless"),
    ({**HI, "prompt": {"id": "pmpt_1"}}, "prompt", "stored prompt templates"),
    ({**HI, "tools": [{"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[0].type", "file_search"),
    ({**HI, "tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0].type", "mcp"),
    ({**HI, "tool_choice": {"type": "web_search_preview"}}, "tool_choice.type", "web_search_preview"),
    ({"model": "echo", "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "stateless"),
    ({"model": "echo", "input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type", "web_search_call"),
    ({"model": "echo", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
     "input[0].content[0].type", "input_file"),
    ({"model": "echo", "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].file_id", "image_url"),
    ({"model": "echo", "input": [{"role": "robot", "content": "x"}]}, "input[0].role", "robot"),
    ({"model": "echo", "input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id", "string"),
    ({"model": "echo", "input": []}, "input", "empty"),
    ({"model": "echo"}, "input", "required"),
    ({**HI, "max_output_tokens": 0}, "max_output_tokens", "positive"),
    ({**HI, "text": {"format": {"type": "xml"}}}, "text.format.type", "xml"),
    ({**HI, "reasoning": {"effort": "extreme"}}, "reasoning.effort", "extreme"),
    ({**HI, "include": ["everything"]}, "include", "everything"),
    ({**HI, "truncation": "sometimes"}, "truncation", "auto or disabled"),
    ({**HI, "tools": [WEATHER], "tool_choice": {"type": "allowed_tools", "mode": "auto",
                                                 "tools": [{"type": "function", "name": "nope"}]}},
     "tool_choice.tools", "nope"),
])
async def test_refused_parameters_are_400s_that_name_them(gw: Gw, body: dict[str, Any], param: str,
                                                          words: str) -> None:
    key, _ = gw.keys.create("refused")
    reply = await gw.http.post("/v1/responses", headers=bearer(key), json=body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert words in error["message"] and param.split("[")[0].split(".")[0] in error["message"]


@pytest.mark.parametrize("body", [
    {**HI, "bogus": 1}, {**HI, "temperature": 5}, {**HI, "stream": "yes"}, {**HI, "metadata": {"a": 1}},
    {**HI, "tools": "x"}, {**HI, "tools": [{"type": "function"}]}, {**HI, "tool_choice": 3}, {**HI, "text": []},
    {"model": "echo", "input": [1]}, {"model": "echo", "input": [{"role": "user", "content": [{"type": "x"}]}]},
    {"model": "echo", "input": 7}, [], "hi", {**HI, "instructions": ["a"]}, {**HI, "reasoning": "high"},
])
async def test_malformed_bodies_are_400s_with_error_json(gw: Gw, body: Any) -> None:
    key, _ = gw.keys.create("malformed")
    reply = await gw.http.post("/v1/responses", headers=bearer(key), json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["type"] == "invalid_request_error" and "Traceback" not in reply.text


async def test_accepted_fields_without_effect_and_openai_only_fields(gw: Gw) -> None:
    key, _ = gw.keys.create("accepted")
    response = await gw.sdk(key).responses.create(
        model="echo", input="hi", store=True, truncation="auto", max_tool_calls=3, parallel_tool_calls=False,
        include=["reasoning.encrypted_content"], reasoning={"effort": "low", "summary": "auto"},
        prompt_cache_key="k", service_tier="auto", safety_identifier="user-hash", user="u-1",
        text={"format": {"type": "text"}, "verbosity": "low"}, top_p=0.9,
        tools=[WEATHER], tool_choice={"type": "allowed_tools", "mode": "auto",  # type: ignore[list-item]
                                      "tools": [{"type": "function", "name": "get_weather"}]})
    assert response.output_text == "Paris is the capital of France."
    assert response.parallel_tool_calls is False and response.reasoning is not None
    assert response.reasoning.effort == "low" and response.store is False  # type: ignore[attr-defined]
    assert isinstance(response.tools[0], openai.types.responses.FunctionTool)
    notes = response.to_dict()["podium"]["notes"]  # type: ignore[typeddict-item]
    assert [n.split("'")[1] for n in notes[:5]] == ["store", "truncation: auto", "max_tool_calls",
                                                   "reasoning.summary", "include"]


async def test_a_chat_request_to_responses_is_not_confused_with_chat_completions(gw: Gw) -> None:
    key, _ = gw.keys.create("confused")
    reply = await gw.http.post("/v1/responses", headers=bearer(key),
                               json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]})
    assert reply.status_code == 400 and "messages" in reply.json()["error"]["message"]


async def test_other_methods_and_stored_response_routes_answer_error_json(gw: Gw) -> None:
    wrong = await gw.http.get("/v1/responses")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    stored = await gw.http.get("/v1/responses/resp_123")
    assert stored.status_code == 404 and stored.json()["error"]["code"] == "unknown_url"


# --- the rendering alone ----------------------------------------------------------------------------------
def test_logprobs_asked_for_are_returned_on_the_output_text() -> None:
    token = {"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}
    answer = ChatResponse(id="req_1", text="Hi", model="m", provider="p", logprobs={"content": [token]})
    asked = response_json(answer, Turn({}, logprobs=True))
    assert asked["output"][0]["content"][0]["logprobs"] == [token]
    assert response_json(answer, Turn({}))["output"][0]["content"][0]["logprobs"] == []


async def test_an_empty_stream_is_one_empty_message_and_a_completed_response() -> None:
    async def nothing() -> AsyncIterator[Any]:
        return
        yield

    exchange = Exchange(ChatRequest.from_prompt("hi"), include_usage=True, state=Turn({}))
    body = b"".join([data async for data in RESPONSES.events(exchange, "req_1", None, nothing(), lambda: None)])
    events = [json.loads(line[6:]) for line in body.decode().splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == ""


# --- a real `podium serve`, the sync client ---------------------------------------------------------------
def test_the_sync_sdk_against_a_real_gateway_process(tmp_path: Path) -> None:
    from podium.server.keys import KeyStore
    from test_gateway import start, write_config

    secret, _ = KeyStore(tmp_path / "keys.sqlite3").create("sync")
    process, url, log = start(tmp_path, write_config(tmp_path))
    try:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=secret, max_retries=0)
        response = client.responses.create(model="echo", input="Capital of France?", instructions="Be brief.")
        assert response.output_text == "Paris is the capital of France."
        with client.responses.stream(model="echo", input="Capital of France?") as stream:
            deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
            final = stream.get_final_response()
        assert "".join(deltas) == final.output_text == "Paris is the capital of France."
        with client.responses.with_streaming_response.create(model="echo", input="hi") as raw:
            assert raw.headers["x-request-id"].startswith("req_")
            assert raw.parse().id == f"resp_{raw.headers['x-request-id']}"
        # each answer echoes its own request's parameters, never an earlier request's
        plain = client.responses.create(model="echo", input="hi")
        assert plain.instructions is None and final.instructions is None and response.instructions == "Be brief."
    finally:
        process.terminate()
        process.wait(10)
    assert secret not in log.read_text()

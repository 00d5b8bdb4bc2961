"""Each wire's translation of the Chat Completions fields, through the providers against servers that speak the
vendors' formats: structured output, tool choice, reasoning effort, several candidates, usage counted once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from podium import errors
from podium.catalogue import ModelInfo
from podium.config import ProviderSpec, resolve
from podium.config.loader import validate
from podium.providers.anthropic import wire as anthropic_wire
from podium.providers.gemini import wire as gemini_wire
from podium.providers.http import retry_after
from podium.providers.ollama import wire as ollama_wire
from podium.providers.plugins import build_provider
from podium.types import ChatRequest, Message, StreamChunk
from servers.http_server import Reply, WireServer
from servers.wires import WIRES, Scenario

KEY = "sk-translation-test-77aa66bb55cc"
PREFIX = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta", "ollama": ""}
SCHEMA = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"],
          "additionalProperties": False}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "final_answer", "schema": SCHEMA, "strict": True}}
TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]


class Wire:
    """One wire server and the requests it got; ``scenario`` says how it answers."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.scenario = Scenario()
        self.server = WireServer(lambda request: WIRES[kind].handle(request, self.scenario)).start()

    def provider(self, **options: Any):  # type: ignore[no-untyped-def]
        return build_provider(ProviderSpec(name=self.kind, kind=self.kind, enabled=True, reason="t",
                                           base_url=self.server.url + PREFIX[self.kind], api_key=KEY,
                                           options=options))

    @property
    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = self.server.requests[-1].json
        return data


@pytest.fixture
def wire(request: pytest.FixtureRequest) -> Iterator[Wire]:
    served = Wire(request.param)
    yield served
    served.server.stop()


def model(kind: str, model_id: str, *capabilities: str, max_output_tokens: int | None = 64000) -> ModelInfo:
    return ModelInfo(name="m", provider=kind, model_id=model_id, display_name="m", context_window=200_000,
                     max_output_tokens=max_output_tokens, input_price=3.0, cached_input_price=0.3, output_price=15.0,
                     tier="fast", region="us", capabilities=frozenset({"chat", *capabilities}))


def ask(**fields: Any) -> ChatRequest:
    return ChatRequest(messages=[Message(role="developer", content="Be brief."), Message.user("What is 6 x 7?")],
                       **fields)


async def both(provider: Any, request: ChatRequest, info: ModelInfo) -> tuple[Any, list[StreamChunk]]:
    return await provider.complete(request, info), [c async for c in provider.stream(request, info)]


# --- Anthropic ------------------------------------------------------------------------------------------
CLAUDE = model("anthropic", "claude-sonnet-4-5-20250929", "json")  # structured outputs
CLAUDE_OLD = model("anthropic", "claude-3-5-haiku-20241022", max_output_tokens=8192)  # without them


@pytest.mark.parametrize("wire", ["anthropic"], indirect=True)
async def test_anthropic_json_schema_is_structured_output_where_the_model_has_it(wire: Wire):
    p = wire.provider()
    response, chunks = await both(p, ask(response_format=JSON_SCHEMA), CLAUDE)
    body = wire.body
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in body and "tool_choice" not in body
    assert json.loads(response.text) == {"answer": 42} and response.tool_calls is None
    assert json.loads("".join(c.text for c in chunks)) == {"answer": 42}
    await p.aclose()


@pytest.mark.parametrize("wire", ["anthropic"], indirect=True)
async def test_anthropic_json_without_structured_output_is_a_forced_tool_whose_input_is_the_answer(wire: Wire):
    p = wire.provider()
    for request, info, tool, schema in ((ask(response_format=JSON_SCHEMA), CLAUDE_OLD, "final_answer", SCHEMA),
                                        (ask(response_format={"type": "json_object"}), CLAUDE, "json_answer",
                                         {"type": "object"})):
        response, chunks = await both(p, request, info)
        body = wire.body
        assert body["tool_choice"] == {"type": "tool", "name": tool} and "output_config" not in body
        assert body["tools"][-1]["name"] == tool and body["tools"][-1]["input_schema"] == schema
        assert json.loads(response.text) == {"answer": 42}
        assert response.tool_calls is None and response.finish_reason == "stop"
        assert json.loads("".join(c.text for c in chunks)) == {"answer": 42}
        assert not any(c.tool_calls for c in chunks)
        assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    await p.aclose()


def test_anthropic_json_tool_beside_the_callers_tools():
    with_tools = ask(response_format={"type": "json_object"}, tools=TOOLS)
    body = anthropic_wire.request_body(with_tools, "c", stream=False, default_max_tokens=100)
    assert [t["name"] for t in body["tools"]] == ["lookup", "json_answer"]
    assert body["tool_choice"] == {"type": "any"}  # one of the caller's tools, or the answer
    body = anthropic_wire.request_body(with_tools.model_copy(update={"tool_choice": "none"}), "c", stream=False,
                                       default_max_tokens=100)
    assert body["tool_choice"] == {"type": "tool", "name": "json_answer"}
    clash = ask(response_format={"type": "json_schema", "json_schema": {"name": "lookup", "schema": SCHEMA}},
                tools=TOOLS)  # the schema's name is taken by a tool of the caller's
    assert anthropic_wire.json_tool(clash, structured_output=False) == "json_answer"


def test_anthropic_tool_choice_and_parallel_tool_calls():
    def choice(**fields: Any) -> Any:
        return anthropic_wire.request_body(ask(tools=TOOLS, **fields), "c", stream=False,
                                           default_max_tokens=100).get("tool_choice")

    assert choice() is None
    assert choice(tool_choice="auto") == {"type": "auto"}
    assert choice(tool_choice="required") == {"type": "any"}
    assert choice(tool_choice="none") == {"type": "none"}
    assert choice(tool_choice={"type": "function", "function": {"name": "lookup"}}) == {"type": "tool",
                                                                                        "name": "lookup"}
    assert choice(parallel_tool_calls=False) == {"type": "auto", "disable_parallel_tool_use": True}
    assert choice(tool_choice="required", parallel_tool_calls=False) == {"type": "any",
                                                                         "disable_parallel_tool_use": True}
    assert choice(parallel_tool_calls=True) == {"type": "auto", "disable_parallel_tool_use": False}
    assert choice(tool_choice="none", parallel_tool_calls=False) == {"type": "none"}


def test_anthropic_reasoning_effort_is_a_thinking_budget_inside_max_tokens():
    def body(**fields: Any) -> dict[str, Any]:
        return anthropic_wire.request_body(ask(**fields), "c", stream=False, default_max_tokens=64000)

    assert body(reasoning_effort="high")["thinking"] == {"type": "enabled", "budget_tokens": 24576}
    assert body(reasoning_effort="medium")["thinking"]["budget_tokens"] == 8192
    assert body(reasoning_effort="low")["thinking"]["budget_tokens"] == 1024
    assert body(reasoning_effort="none")["thinking"] == {"type": "disabled"}
    assert "thinking" not in body()
    assert body(reasoning_effort="high", max_tokens=2000)["thinking"]["budget_tokens"] == 1999  # below max_tokens
    assert "thinking" not in body(reasoning_effort="high", max_tokens=1000)  # no room for the minimum budget
    hot = body(reasoning_effort="high", temperature=0.2, top_p=0.5)  # thinking takes neither
    assert "temperature" not in hot and hot["top_p"] == 0.95
    assert body(temperature=0.2, top_p=0.5)["temperature"] == 0.2
    forced = body(reasoning_effort="high", response_format={"type": "json_object"})  # forced tool: no thinking
    assert "thinking" not in forced and forced["tool_choice"]["type"] == "tool"


@pytest.mark.parametrize("wire", ["anthropic"], indirect=True)
async def test_anthropic_thinking_never_reaches_the_answer(wire: Wire):
    wire.scenario.thinking = "The user wants 6 x 7. SECRET-REASONING"
    wire.scenario.text = "42"
    p = wire.provider()
    response, chunks = await both(p, ask(reasoning_effort="medium"), CLAUDE)
    assert wire.body["thinking"] == {"type": "enabled", "budget_tokens": 8192} and wire.body["max_tokens"] == 64000
    assert response.text == "42" and "".join(c.text for c in chunks) == "42"
    await p.aclose()


@pytest.mark.parametrize("wire", ["anthropic"], indirect=True)
async def test_anthropic_stream_usage_is_counted_once(wire: Wire):
    """message_delta's counts are cumulative (input and cache reads again): the stream's usage and cost
    equal the whole answer's, not the input twice."""
    wire.scenario.input_tokens, wire.scenario.cached_tokens, wire.scenario.output_tokens = 1000, 600, 50
    p = wire.provider()
    response, chunks = await both(p, ask(), CLAUDE)
    usages = [c.usage for c in chunks if c.usage is not None]
    assert len(usages) == 1 and usages[0] == response.usage
    assert (usages[0].input_tokens, usages[0].cached_input_tokens, usages[0].output_tokens) == (1000, 600, 50)
    assert CLAUDE.cost_of(usages[0]) == pytest.approx(CLAUDE.cost_of(response.usage))
    await p.aclose()


def test_anthropic_message_delta_without_input_counts_keeps_message_starts():
    decoder = anthropic_wire.StreamDecoder("m", "p")
    decoder.feed("message_start", {"type": "message_start", "message": {"usage": {
        "input_tokens": 30, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 5, "output_tokens": 1}}})
    (chunk,) = decoder.feed("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                              "usage": {"output_tokens": 12}})  # the older, output-only shape
    assert chunk.usage is not None
    assert (chunk.usage.input_tokens, chunk.usage.cached_input_tokens, chunk.usage.output_tokens) == (45, 10, 12)


@pytest.mark.parametrize("wire", ["anthropic"], indirect=True)
async def test_anthropic_max_tokens_and_developer_messages(wire: Wire):
    p = wire.provider()
    await p.complete(ask(), model("anthropic", "claude-opus-4-5-20251101", max_output_tokens=64000))
    assert wire.body["max_tokens"] == 64000 and wire.body["system"] == "Be brief."
    assert [m["role"] for m in wire.body["messages"]] == ["user"]
    await p.aclose()


# --- Gemini -----------------------------------------------------------------------------------------
GEMINI = model("gemini", "gemini-2.5-flash", "json")


@pytest.mark.parametrize("wire", ["gemini"], indirect=True)
async def test_gemini_n_is_candidate_count_and_every_candidate_is_a_choice(wire: Wire):
    wire.scenario.text = "Six times seven is forty-two."
    p = wire.provider()
    response, chunks = await both(p, ask(n=3), GEMINI)
    assert wire.body["generationConfig"]["candidateCount"] == 3
    texts = [response.text, *(c.text for c in response.more_choices)]
    assert [c.index for c in response.more_choices] == [1, 2]
    assert texts == ["Six times seven is forty-two.", "Six times seven is forty-two. (take 2)",
                     "Six times seven is forty-two. (take 3)"]
    streamed = {i: "".join(c.text for c in chunks if c.index == i) for i in range(3)}
    assert list(streamed.values()) == texts  # each candidate on its own index, never spliced
    assert sorted(c.index for c in chunks if c.finish_reason) == [0, 1, 2]
    assert [c.usage is not None for c in chunks].count(True) == 1 and chunks[-1].usage == response.usage
    await p.aclose()


def test_gemini_generation_config_fields():
    body = gemini_wire.request_body(ask(seed=7, presence_penalty=0.5, frequency_penalty=-0.25), "gemini-2.5-flash")
    config = body["generationConfig"]
    assert (config["seed"], config["presencePenalty"], config["frequencyPenalty"]) == (7, 0.5, -0.25)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [c["role"] for c in body["contents"]] == ["user"]


@pytest.mark.parametrize(("model_id", "effort", "config"), [
    ("gemini-2.5-flash", "low", {"thinkingBudget": 1024}),
    ("gemini-2.5-flash", "medium", {"thinkingBudget": 8192}),
    ("gemini-2.5-flash", "high", {"thinkingBudget": 24576}),
    ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
    ("gemini-2.5-pro", "none", {"thinkingBudget": 128}),  # 2.5 Pro always thinks
    ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "minimal"}),
    ("gemini-3-flash-preview", "medium", {"thinkingLevel": "medium"}),
    ("gemini-3-pro-preview", "minimal", {"thinkingLevel": "low"}),  # Pro's lowest level
    ("gemini-3.8-flash", "xhigh", {"thinkingLevel": "high"}),
    ("gemini-2.0-flash", "high", None),  # no thinking on 2.0
])
def test_gemini_reasoning_effort_is_thinking_config(model_id: str, effort: str, config: dict[str, Any] | None):
    body = gemini_wire.request_body(ask(reasoning_effort=effort), model_id)
    assert body.get("generationConfig", {}).get("thinkingConfig") == config


def test_gemini_tool_choice_is_tool_config():
    def config(choice: Any) -> Any:
        return gemini_wire.request_body(ask(tools=TOOLS, tool_choice=choice), "gemini-2.5-flash").get("toolConfig")

    assert config("auto") == {"functionCallingConfig": {"mode": "AUTO"}}
    assert config("required") == {"functionCallingConfig": {"mode": "ANY"}}
    assert config("none") == {"functionCallingConfig": {"mode": "NONE"}}
    assert config({"type": "function", "function": {"name": "lookup"}}) == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["lookup"]}}


@pytest.mark.parametrize("wire", ["gemini"], indirect=True)
async def test_gemini_thought_parts_never_reach_the_answer(wire: Wire):
    wire.scenario.thinking = "**Multiplying** SECRET-THOUGHT"
    wire.scenario.text = "It is 42."
    p = wire.provider()
    response, chunks = await both(p, ask(reasoning_effort="low"), GEMINI)
    assert response.text == "It is 42." and "".join(c.text for c in chunks) == "It is 42."
    await p.aclose()


async def _drain(chunks: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [c async for c in chunks]


def _quota_error(delay: str) -> Reply:
    return Reply.json({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                 "message": "You exceeded your current quota, please check your plan and billing.",
                                 "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                                     {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_"
                                                     "requests", "quotaId": "GenerateRequestsPerMinutePerProject"}]},
                                     {"@type": "type.googleapis.com/google.rpc.Help", "links": [
                                         {"description": "Learn more", "url": "https://ai.google.dev/gemini-api/docs/"
                                                                              "rate-limits"}]},
                                     {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}},
                      429)


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_gemini_429_waits_as_long_as_retry_info_says(streaming: bool):
    with WireServer(lambda request: _quota_error("37s")) as server:
        p = build_provider(ProviderSpec(name="gemini", kind="gemini", enabled=True, reason="t",
                                        base_url=server.url + "/v1beta", api_key=KEY))
        with pytest.raises(errors.RateLimitedError) as info:
            await (_drain(p.stream(ask(), GEMINI)) if streaming else p.complete(ask(), GEMINI))
        assert info.value.retry_after == 37
        await p.aclose()


def test_retry_info_is_read_after_the_headers():
    body = _quota_error("1.5s").body
    assert retry_after({}, body) == 1.5
    assert retry_after({"retry-after": "4"}, body) == 4  # an explicit header first
    assert retry_after({}, b'{"error": {"code": 429, "message": "quota"}}') is None


def test_gemini_key_and_base_url_are_read_as_google_genai_reads_them():
    def spec(**env: str) -> ProviderSpec:
        return resolve(validate({}), None, env=env).providers["gemini"]

    both_keys = spec(GOOGLE_API_KEY="g-google", GEMINI_API_KEY="g-gemini")
    assert both_keys.api_key == "g-google" and both_keys.key_env == "GOOGLE_API_KEY"  # GOOGLE_API_KEY wins
    assert spec(GEMINI_API_KEY="g-gemini").api_key == "g-gemini"
    only_google = spec(GOOGLE_API_KEY="g-google")
    assert only_google.enabled and only_google.api_key == "g-google" and "GOOGLE_API_KEY" in only_google.reason
    assert spec().reason == "no key: set GEMINI_API_KEY"
    host = spec(GOOGLE_API_KEY="k", GOOGLE_GEMINI_BASE_URL="http://gateway.local:8080/")
    assert host.base_url == "http://gateway.local:8080/v1beta"  # the host; the API version is added
    assert spec(GOOGLE_API_KEY="k", GOOGLE_GEMINI_BASE_URL="http://a/", GEMINI_BASE_URL="http://b/v1").base_url == \
        "http://b/v1"  # Podium's own whole-URL variable is the more specific one


async def test_google_gemini_base_url_reaches_the_versioned_path():
    scenario = Scenario(text="hello")
    with WireServer(lambda request: WIRES["gemini"].handle(request, scenario)) as server:
        spec = resolve(validate({}), None, env={"GOOGLE_API_KEY": KEY, "GOOGLE_GEMINI_BASE_URL": server.url}).providers[
            "gemini"]
        p = build_provider(spec)
        assert (await p.complete(ask(), GEMINI)).text == "hello"
        assert server.requests[-1].path == "/v1beta/models/gemini-2.5-flash:generateContent"
        assert server.requests[-1].headers["x-goog-api-key"] == KEY
        await p.aclose()


# --- Ollama -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("model_id", "effort", "think"), [
    ("qwen3:8b", "high", True), ("qwen3:8b", "minimal", True), ("qwen3:8b", "none", False),
    ("gpt-oss:20b", "high", "high"), ("gpt-oss:20b", "medium", "medium"), ("gpt-oss:20b", "none", "low"),
])
def test_ollama_reasoning_effort_is_think(model_id: str, effort: str, think: bool | str):
    assert ollama_wire.request_body(ask(reasoning_effort=effort), model_id, stream=False)["think"] == think


def test_ollama_options_format_and_developer_messages():
    body = ollama_wire.request_body(ask(seed=3, presence_penalty=0.5, frequency_penalty=1.0,
                                        response_format=JSON_SCHEMA), "llama3.2:3b", stream=True)
    assert body["options"] == {"seed": 3, "presence_penalty": 0.5, "frequency_penalty": 1.0}
    assert body["format"] == SCHEMA and "think" not in body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize("wire", ["ollama"], indirect=True)
async def test_ollama_thinking_never_reaches_the_answer(wire: Wire):
    wire.scenario.thinking = "Okay, 6 times 7... SECRET"
    wire.scenario.text = "42"
    p = wire.provider()
    response, chunks = await both(p, ask(reasoning_effort="high"), model("ollama", "qwen3:8b"))
    assert wire.body["think"] is True
    assert response.text == "42" and "".join(c.text for c in chunks) == "42"
    await p.aclose()


# --- OpenAI-compatible hosts --------------------------------------------------------------------------
@pytest.mark.parametrize("wire", ["openai"], indirect=True)
async def test_the_developer_role_goes_only_to_hosts_that_have_it(wire: Wire):
    info = model("openai", "gpt-4o-mini")
    compatible = wire.provider()  # a vLLM / llama.cpp / Groq-like host
    await compatible.complete(ask(), info)
    assert wire.body["messages"][0] == {"role": "system", "content": "Be brief."}
    declared = wire.provider(developer_role=True)
    await declared.complete(ask(), info)
    assert wire.body["messages"][0]["role"] == "developer"
    openai = build_provider(ProviderSpec(name="openai", kind="openai", enabled=True, reason="t",
                                         base_url="https://api.openai.com/v1", api_key=KEY))
    assert openai._body(ask(), info, False)["messages"][0]["role"] == "developer"  # type: ignore[attr-defined]
    for p in (compatible, declared, openai):
        await p.aclose()


# --- what the APIs refuse: checked by the servers' strict modes --------------------------------------------
async def test_gemini_tool_parameters_are_json_schema():
    """Gemini's ``parameters`` is its own Schema type, which refuses JSON Schema's ``additionalProperties``:
    OpenAI-style tools go in ``parametersJsonSchema``."""
    strict = WIRES["gemini"].__class__(check_parameters=True)  # type: ignore[call-arg]
    scenario = Scenario(tool=("call_1", "lookup", '{"q": "png"}'))
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": SCHEMA}}]
    with WireServer(lambda request: strict.handle(request, scenario)) as server:
        p = build_provider(ProviderSpec(name="gemini", kind="gemini", enabled=True, reason="t",
                                        base_url=server.url + "/v1beta", api_key=KEY))
        response = await p.complete(ask(tools=tools), GEMINI)
        assert response.tool_calls is not None and response.tool_calls[0].function.name == "lookup"
        declaration = server.requests[-1].json["tools"][0]["functionDeclarations"][0]
        assert declaration == {"name": "lookup", "parametersJsonSchema": SCHEMA}
        await p.aclose()


@pytest.mark.parametrize(("model_id", "sent"), [("claude-sonnet-4-5-20250929", {"temperature": 0.3}),
                                                ("claude-opus-4-1-20250805", {"temperature": 0.3}),
                                                ("claude-3-5-haiku-20241022", {"temperature": 0.3, "top_p": 0.8})])
async def test_anthropic_models_that_take_one_sampler_get_temperature_alone(model_id: str, sent: dict[str, float]):
    strict = WIRES["anthropic"].__class__(check_sampling=True)  # type: ignore[call-arg]
    scenario = Scenario(text="ok")
    with WireServer(lambda request: strict.handle(request, scenario)) as server:
        p = build_provider(ProviderSpec(name="anthropic", kind="anthropic", enabled=True, reason="t",
                                        base_url=server.url, api_key=KEY))
        assert (await p.complete(ask(temperature=0.3, top_p=0.8), model("anthropic", model_id))).text == "ok"
        body = server.requests[-1].json
        assert {k: body[k] for k in ("temperature", "top_p") if k in body} == sent
        await p.aclose()


# --- histories as clients send them ------------------------------------------------------------------------
PNG = "data:image/png;base64,iVBORw0KGgo="
HISTORY = ChatRequest.model_validate({"messages": [
    {"role": "user", "content": "Show me the weather map."},
    {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                          "function": {"name": "lookup", "arguments": "{q: map"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "the map"},
                                                           {"type": "image_url", "image_url": {"url": PNG}}]}]})


def test_a_history_call_with_arguments_that_are_not_json_is_sent_whole():
    raw = {"_raw": "{q: map"}
    assert anthropic_wire.request_body(HISTORY, "c", stream=False, default_max_tokens=10)["messages"][1][
        "content"][0]["input"] == raw
    assert gemini_wire.request_body(HISTORY, "gemini-2.5-flash")["contents"][1]["parts"][0]["functionCall"][
        "args"] == raw
    assert ollama_wire.request_body(HISTORY, "llama3.2", stream=False)["messages"][1]["tool_calls"][0][
        "function"]["arguments"] == raw


def test_a_tool_results_images_reach_the_model():
    result = anthropic_wire.request_body(HISTORY, "c", stream=False, default_max_tokens=10)["messages"][2]["content"][0]
    assert result["type"] == "tool_result" and result["content"] == [
        {"type": "text", "text": "the map"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}]
    response = gemini_wire.request_body(HISTORY, "gemini-3-flash-preview")["contents"][2]["parts"][0][
        "functionResponse"]
    assert response == {"name": "lookup", "response": {"content": "the map"},
                        "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}


def test_ollama_keeps_tool_choice_none_by_sending_no_tools():
    assert "tools" not in ollama_wire.request_body(ask(tools=TOOLS, tool_choice="none"), "llama3.2", stream=False)
    assert ollama_wire.request_body(ask(tools=TOOLS, tool_choice="auto"), "llama3.2", stream=False)["tools"]

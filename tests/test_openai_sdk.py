"""The official ``openai`` SDK against the gateway, over each of the four outbound wires.

A user puts Podium in front of an OpenAI client without reading its source: every call style the
SDK has (sync, async, streaming, ``with_raw_response``, ``with_streaming_response``, ``parse``,
``models.list``/``retrieve``) must work whichever wire the model sits on. The gateway is a real
``podium serve``; each wire's upstream speaks that vendor's format (``servers.wires``) and answers
what the request asks (``servers.answers``), so a tool call, a structured answer or a stop sequence
comes back only if the gateway carried the request across the wire and the answer back intact.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from pydantic import BaseModel

from drop_in import UPSTREAM_KEY, WIRE_KINDS, Gateway, running_gateway

MAGIC = {"type": "function", "function": {
    "name": "magic_function", "description": "Apply a magic function to an input.",
    "parameters": {"type": "object", "properties": {"input": {"type": "integer"}}, "required": ["input"]}}}
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather at a location.",
    "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}
ASK_MAGIC = [{"role": "user", "content": "What is the value of magic_function(3)? Use the tool."}]
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415478da63f8cfc000000301"
    "0100c9fe92ef0000000049454e44ae426082")).decode()


class Joke(BaseModel):
    setup: str
    punchline: str


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("sdk-gateway")) as running:
        yield running


@pytest.fixture(params=WIRE_KINDS)
def wire(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="sk-any", max_retries=0, timeout=20)


def aclient(gateway: Gateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key="sk-any", max_retries=0, timeout=20)


# --- plain calls -----------------------------------------------------------------------------------
def test_sync_create_with_raw_response(gateway: Gateway, wire: str):
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=gateway.model(wire), max_completion_tokens=200,
        messages=[{"role": "developer", "content": "Answer briefly."}, {"role": "user", "content": "Hello there"}])
    assert raw.status_code == 200
    assert raw.headers["x-podium-provider"] == f"up-{wire}"  # the wire asked for, never another
    assert raw.headers["x-request-id"].startswith("req_")
    completion = raw.parse()
    assert completion.id == f"chatcmpl-{raw.headers['x-request-id']}"
    assert completion.object == "chat.completion" and completion.model == gateway.model(wire)
    [choice] = completion.choices
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert choice.message.role == "assistant" and choice.message.content == "Hello, you wrote: Hello there."
    # the upstream counted both messages' words (the developer message reached it) and 5 answer words
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 5)
    assert completion.usage.total_tokens == 9


async def test_async_create_and_stream_with_usage(gateway: Gateway, wire: str):
    async with aclient(gateway) as api:
        completion = await api.chat.completions.create(model=gateway.model(wire),
                                                       messages=[{"role": "user", "content": "Hello there"}])
        stream = await api.chat.completions.create(model=gateway.model(wire), stream=True,
                                                   stream_options={"include_usage": True},
                                                   messages=[{"role": "user", "content": "Hello there"}])
        chunks = [chunk async for chunk in stream]
        raw = await api.chat.completions.with_raw_response.create(model=gateway.model(wire),
                                                                  messages=[{"role": "user", "content": "Hello"}])
        async with api.chat.completions.with_streaming_response.create(
                model=gateway.model(wire), stream=True, messages=[{"role": "user", "content": "Hello"}]) as response:
            lines = [line async for line in response.iter_lines() if line]
    assert raw.headers["x-podium-provider"] == f"up-{wire}"
    assert raw.parse().choices[0].message.content == "Hello, you wrote: Hello."
    assert lines[-1] == "data: [DONE]" and len(lines) > 2
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == completion.choices[0].message.content == "Hello, you wrote: Hello there."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert len({c.id for c in chunks}) == 1 and chunks[0].object == "chat.completion.chunk"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"}) == \
        completion.usage.model_dump(include={"prompt_tokens", "completion_tokens", "total_tokens"})  # type: ignore[union-attr]


def test_sync_stream_without_usage(gateway: Gateway, wire: str):
    stream = client(gateway).chat.completions.create(model=gateway.model(wire), stream=True,
                                                     messages=[{"role": "user", "content": "Hello there"}])
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello, you wrote: Hello there."
    assert all(c.usage is None for c in chunks)


def test_with_streaming_response(gateway: Gateway, wire: str):
    api = client(gateway)
    with api.chat.completions.with_streaming_response.create(
            model=gateway.model(wire), stream=True, messages=[{"role": "user", "content": "Hello there"}]) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-podium-deployment"] == f"{gateway.model(wire)}@up-{wire}"
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"]) == \
        "Hello, you wrote: Hello there."
    with api.chat.completions.with_streaming_response.create(
            model=gateway.model(wire), messages=[{"role": "user", "content": "Hello there"}]) as whole:
        assert whole.parse().choices[0].message.content == "Hello, you wrote: Hello there."


def test_every_optional_field_a_client_sends(gateway: Gateway, wire: str):
    """The fields of the current API that ask nothing a wire cannot give: sent on the OpenAI wire,
    translated or dropped with a note (in the answer's ``podium.notes``) on the others — never a 400."""
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=gateway.model(wire), messages=[{"role": "user", "content": "Hello there"}],
        temperature=0.5, seed=7, presence_penalty=0.1, frequency_penalty=0.1, reasoning_effort="low",
        service_tier="auto", store=False, prompt_cache_key="conversation-1", safety_identifier="user-1",
        user="user-1", metadata={"task_type": "chat"}, verbosity="low", modalities=["text"], logprobs=False,
        max_completion_tokens=2000)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello, you wrote: Hello there."
    notes = (completion.model_extra or {})["podium"]["notes"]
    sent = gateway.upstreams[wire].requests[-1].json
    if wire == "openai":
        assert (sent["service_tier"], sent["prompt_cache_key"], sent["seed"], sent["safety_identifier"]) == \
            ("auto", "conversation-1", 7, "user-1")
        assert sent["max_tokens"] == 2000  # the field table: max_completion_tokens only for reasoning models
        assert not any("dropped" in note for note in notes)
    else:
        for field in ("service_tier", "prompt_cache_key", "safety_identifier", "verbosity"):
            assert any(f"'{field}' dropped" in note for note in notes), (field, notes)
            assert field not in json.dumps(sent)


def test_anthropic_style_cache_control_hints_are_accepted(gateway: Gateway, wire: str):
    """Clients written for several vendors (LangChain, OpenCode) mark messages and parts with Anthropic's
    ``cache_control``: accepted on every wire (a hint, not content)."""
    messages = [{"role": "system", "content": "Be brief.", "cache_control": {"type": "ephemeral"}},
                {"role": "user", "content": [{"type": "text", "text": "Hello there",
                                              "cache_control": {"type": "ephemeral", "ttl": "5m"}}]}]
    completion = client(gateway).chat.completions.create(model=gateway.model(wire), messages=messages)  # type: ignore[arg-type]
    assert completion.choices[0].message.content == "Hello, you wrote: Hello there."


def test_temperature_with_top_p(gateway: Gateway, wire: str):
    """Both samplers, as many clients send them (OpenCode, LangChain with top_p set, the SDKs' examples); the
    Anthropic upstream refuses both on the Claude models that do, as the API does, so Podium sends one."""
    completion = client(gateway).chat.completions.create(
        model=gateway.model(wire), temperature=0.2, top_p=0.9, messages=[{"role": "user", "content": "Hello there"}])
    assert completion.choices[0].message.content == "Hello, you wrote: Hello there."


def test_stop_sequence_and_max_tokens(gateway: Gateway, wire: str):
    completion = client(gateway).chat.completions.create(
        model=gateway.model(wire), stop=["you"], max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "Hello, "


def test_image_input(gateway: Gateway, wire: str):
    content = [{"type": "text", "text": "Describe this"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}}]
    completion = client(gateway).chat.completions.create(model=gateway.model(wire),
                                                         messages=[{"role": "user", "content": content}])  # type: ignore[misc,list-item]
    assert completion.choices[0].message.content == "Hello, you wrote: Describe this. I see 1 image."


# --- tools -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("choice", ["auto", "required", "named"])
def test_tool_call_round_trip(gateway: Gateway, wire: str, choice: str):
    """A tool call comes back whole (non-stream and stream alike); the SDK's message goes back as it is."""
    api = client(gateway)
    tool_choice: Any = {"type": "function", "function": {"name": "magic_function"}} if choice == "named" else choice
    if wire == "ollama" and choice != "auto":
        tool_choice = "auto"  # Ollama has no tool_choice (the field table drops it); its model picks by itself
    completion = api.chat.completions.create(model=gateway.model(wire), messages=ASK_MAGIC,  # type: ignore[arg-type]
                                             tools=[MAGIC, WEATHER], tool_choice=tool_choice)
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    [call] = message.tool_calls or []
    assert call.type == "function" and call.id
    assert (call.function.name, json.loads(call.function.arguments)) == ("magic_function", {"input": 3})

    stream = api.chat.completions.create(model=gateway.model(wire), messages=ASK_MAGIC,  # type: ignore[arg-type]
                                         tools=[MAGIC, WEATHER], tool_choice=tool_choice, stream=True)
    deltas = [d for c in stream if c.choices for d in c.choices[0].delta.tool_calls or []]
    assert deltas[0].id and deltas[0].function and deltas[0].function.name == "magic_function"
    assert {d.index for d in deltas} == {0}
    assert json.loads("".join(d.function.arguments or "" for d in deltas if d.function)) == {"input": 3}

    history = [*ASK_MAGIC, message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "5"}]
    answer = api.chat.completions.create(model=gateway.model(wire), messages=history,  # type: ignore[arg-type]
                                         tools=[MAGIC, WEATHER])
    assert answer.choices[0].message.content == "The tool answered: 5."
    assert answer.choices[0].finish_reason == "stop"


class Lookup(BaseModel):
    """Look up the weather forecast for a city."""

    city: str
    days: int


def test_strict_tool_from_a_pydantic_model(gateway: Gateway, wire: str):
    """The SDK's own strict tool (``additionalProperties: false``, every field required; on Gemini it goes in
    ``parametersJsonSchema``, since ``parameters``' own Schema type refuses ``additionalProperties``)."""
    completion = client(gateway).chat.completions.parse(
        model=gateway.model(wire), tools=[openai.pydantic_function_tool(Lookup)], tool_choice="required",
        messages=[{"role": "user", "content": "Weather for Paris over 3 days"}])
    [call] = completion.choices[0].message.tool_calls or []
    assert call.function.parsed_arguments == Lookup(city="Paris", days=3)


def test_a_history_whose_tool_arguments_are_not_json_is_never_a_500(gateway: Gateway, wire: str):
    """A client's own history may hold a tool call whose arguments a model wrote badly: answered, or
    refused with a 4xx that says why, never an internal error."""
    history = [*ASK_MAGIC, {"role": "assistant", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "magic_function", "arguments": "{input: 3"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "5"}]
    response = httpx.post(f"{gateway.url}/v1/chat/completions", timeout=20,
                          json={"model": gateway.model(wire), "messages": history, "tools": [MAGIC]})
    assert response.status_code < 500, response.text
    if response.status_code == 200:
        assert response.json()["choices"][0]["message"]["content"] == "The tool answered: 5."
    else:
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_an_assistant_refusal_part_in_the_history(gateway: Gateway):
    history = [{"role": "user", "content": "Hello"},
               {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help with that."}]},
               {"role": "user", "content": "Hello there"}]
    answer = client(gateway).chat.completions.create(model=gateway.model("openai"), messages=history)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "Hello, you wrote: Hello there."


def test_a_custom_tool_passes_on_the_openai_wire(gateway: Gateway):
    answer = client(gateway).chat.completions.create(
        model=gateway.model("openai"), messages=[{"role": "user", "content": "Hello there"}],
        tools=[{"type": "custom", "custom": {"name": "code_exec", "description": "Runs Python code."}}])
    assert answer.choices[0].message.content == "Hello, you wrote: Hello there."


def test_a_custom_tool_is_refused_by_name_on_other_wires(gateway: Gateway):
    with pytest.raises(openai.BadRequestError, match=r"tools\.custom"):
        client(gateway).chat.completions.create(
            model=gateway.model("anthropic"), messages=[{"role": "user", "content": "Hello there"}],
            tools=[{"type": "custom", "custom": {"name": "code_exec", "description": "Runs Python code."}}])


def test_tool_choice_none_is_never_a_tool_call(gateway: Gateway, wire: str):
    """``tool_choice: "none"`` is a promise to the client: text, whatever the prompt asks (Ollama, which has no
    tool_choice, gets no tools)."""
    for stream in (False, True):
        result = client(gateway).chat.completions.create(model=gateway.model(wire), messages=ASK_MAGIC,  # type: ignore[arg-type]
                                                         tools=[MAGIC], tool_choice="none", stream=stream)
        if stream:
            chunks = list(result)  # type: ignore[call-overload]
            assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            assert not result.choices[0].message.tool_calls  # type: ignore[union-attr]
            text = result.choices[0].message.content or ""  # type: ignore[union-attr]
        assert text.startswith("Hello, you wrote: What is the value of magic_function(3)?")


def test_a_history_with_parallel_tool_calls(gateway: Gateway, wire: str):
    """Two calls in one assistant turn, two tool messages after it: each wire pairs every result with its
    call (the Anthropic and Gemini upstreams refuse a list where they are not paired, as the APIs do)."""
    calls = [{"id": f"call_{i}", "type": "function", "function": {"name": "get_weather",
                                                                 "arguments": json.dumps({"location": city})}}
             for i, city in enumerate(("Paris", "Rome"))]
    history = [{"role": "user", "content": "Weather in Paris and Rome?"},
               {"role": "assistant", "content": None, "tool_calls": calls},
               {"role": "tool", "tool_call_id": "call_0", "content": "sunny"},
               {"role": "tool", "tool_call_id": "call_1", "content": "rainy"}]
    answer = client(gateway).chat.completions.create(model=gateway.model(wire), messages=history,  # type: ignore[arg-type]
                                                     tools=[WEATHER], parallel_tool_calls=True)  # type: ignore[list-item]
    assert (answer.choices[0].message.content or "").startswith("The tool answered: ")
    assert "rainy" in (answer.choices[0].message.content or "")


def test_unicode_tool_arguments(gateway: Gateway, wire: str):
    customer = {"type": "function", "function": {"name": "create_customer", "description": "Create a customer.",
                                                 "parameters": {"type": "object", "properties": {
                                                     "customer_name": {"type": "string"}}}}}
    completion = client(gateway).chat.completions.create(
        model=gateway.model(wire), tools=[customer],  # type: ignore[list-item]
        messages=[{"role": "user", "content": "Create a customer named '你好啊集团' (Hello Group)."}])
    [call] = completion.choices[0].message.tool_calls or []
    assert json.loads(call.function.arguments) == {"customer_name": "你好啊集团"}


# --- structured output ------------------------------------------------------------------------------
@pytest.mark.parametrize("alt", [False, True], ids=["structured-output", "no-structured-output"])
def test_parse_with_a_pydantic_schema(gateway: Gateway, wire: str, alt: bool):
    """On a model without structured output (catalogue capability ``json``), Anthropic's answer comes by
    a forced tool, returned as the answer's text."""
    completion = client(gateway).chat.completions.parse(
        model=gateway.model(wire, alt), response_format=Joke,
        messages=[{"role": "user", "content": "A joke about cats"}])
    joke = completion.choices[0].message.parsed
    assert joke == Joke(setup="setup about cats", punchline="punchline about cats")


@pytest.mark.parametrize("alt", [False, True], ids=["structured-output", "no-structured-output"])
def test_json_object_mode(gateway: Gateway, wire: str, alt: bool):
    completion = client(gateway).chat.completions.create(
        model=gateway.model(wire, alt), response_format={"type": "json_object"},
        messages=[{"role": "user", "content": "A joke about cats as JSON with 'setup' and 'punchline' keys."}])
    assert json.loads(completion.choices[0].message.content or "") == {
        "setup": "setup about keys", "punchline": "punchline about keys"}


@pytest.mark.parametrize("alt", [False, True], ids=["structured-output", "no-structured-output"])
async def test_structured_stream(gateway: Gateway, wire: str, alt: bool):
    async with aclient(gateway) as api, api.chat.completions.stream(
            model=gateway.model(wire, alt), response_format=Joke,
            messages=[{"role": "user", "content": "A joke about cats"}]) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.parsed == Joke(setup="setup about cats", punchline="punchline about cats")


# --- n > 1 -----------------------------------------------------------------------------------------
def test_n_choices_each_with_its_index(gateway: Gateway, wire: str):
    api = client(gateway)
    completion = api.chat.completions.create(model=gateway.model(wire), n=2,
                                             messages=[{"role": "user", "content": "Hello there"}])
    assert [c.index for c in completion.choices] == [0, 1]
    texts = [c.message.content or "" for c in completion.choices]
    assert texts[0] == "Hello, you wrote: Hello there." and texts[1].startswith("Hello, you wrote: Hello there.")
    stream = api.chat.completions.create(model=gateway.model(wire), n=2, stream=True,
                                         messages=[{"role": "user", "content": "Hello there"}])
    joined: dict[int, str] = {}
    finished: list[int] = []
    for chunk in stream:
        for choice in chunk.choices:
            joined[choice.index] = joined.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finished.append(choice.index)
    assert joined == dict(enumerate(texts))  # never spliced: each index holds its own whole answer
    assert sorted(finished) == [0, 1]


# --- models ----------------------------------------------------------------------------------------
def test_models_list_and_retrieve(gateway: Gateway):
    api = client(gateway)
    listed = {m.id: m for m in api.models.list()}
    for kind in WIRE_KINDS:
        for alt in (False, True):
            name = gateway.model(kind, alt)
            assert listed[name].owned_by == f"up-{kind}" and listed[name].object == "model"
            retrieved = api.models.retrieve(name)
            assert (retrieved.id, retrieved.owned_by) == (name, f"up-{kind}")
    raw = api.models.with_raw_response.retrieve("openai-wire")
    assert raw.status_code == 200 and raw.headers["x-request-id"].startswith("req_")
    with pytest.raises(openai.NotFoundError) as missing:
        api.models.retrieve("no-such-model")
    assert missing.value.code == "model_not_found"


def test_provider_slash_model_id_names_the_model_in_chat(gateway: Gateway, wire: str):
    model_id = {"openai": "gpt-4.1-mini", "anthropic": "claude-haiku-4-5", "gemini": "gemini-2.5-flash-lite",
                "ollama": "qwen3:4b"}[wire]
    raw = client(gateway).chat.completions.with_raw_response.create(
        model=f"up-{wire}/{model_id}", messages=[{"role": "user", "content": "Hello"}])
    assert (raw.headers["x-podium-model"], raw.headers["x-podium-provider"]) == (gateway.model(wire, alt=True),
                                                                                f"up-{wire}")


def test_models_retrieve_takes_every_name_chat_takes(gateway: Gateway):
    """provider/model_id names a model wherever a model name goes: GET /v1/models/{id} too."""
    retrieved = client(gateway).models.retrieve("up-ollama/qwen3:4b")
    assert retrieved.owned_by == "up-ollama"


# --- errors: OpenAI's error types, never a 500 ------------------------------------------------------
def test_upstream_errors_reach_the_client_as_the_sdks_exceptions(gateway: Gateway, wire: str):
    """Each vendor's own errors (its status and body, ``servers.wires``) come back as the error the SDK
    raises and retries by (429 with Retry-After, 5xx), JSON and stream alike; the upstream key never."""
    api, model = client(gateway), f"{wire}-wire-errors"

    def call(kind: str, stream: bool) -> None:
        result = api.chat.completions.create(model=model, stream=stream,
                                             messages=[{"role": "user", "content": f"[[error:{kind}]]"}])
        if stream:
            list(result)  # type: ignore[call-overload]

    def fail(kind: str, stream: bool = False) -> openai.APIStatusError:
        with pytest.raises(openai.APIStatusError) as caught:
            call(kind, stream)
        assert UPSTREAM_KEY not in caught.value.response.text
        return caught.value

    for stream in (False, True):
        limited = fail("rate_limit", stream)
        assert isinstance(limited, openai.RateLimitError) and limited.response.headers["retry-after"] == "20"
        too_long = fail("context", stream)
        assert isinstance(too_long, openai.BadRequestError) and too_long.code == "context_length_exceeded"
    assert isinstance(missing := fail("not_found"), openai.NotFoundError) and missing.code == "model_not_found"
    assert isinstance(broken := fail("server"), openai.InternalServerError) and broken.status_code == 502
    assert isinstance(busy := fail("unavailable"), openai.InternalServerError) and busy.status_code == 503
    if wire != "ollama":  # Ollama has no content filter
        filtered = fail("filtered")
        assert isinstance(filtered, openai.BadRequestError) and filtered.code == "content_filter"
    refused = fail("auth")  # Podium's own key for the upstream: the gateway's fault, not the client's
    assert refused.status_code == 502 and refused.code == "upstream_credentials_rejected"



def test_errors_are_the_sdks_own_exceptions(gateway: Gateway, wire: str):
    api = client(gateway)
    hello = [{"role": "user", "content": "Hello"}]
    with pytest.raises(openai.NotFoundError):
        api.chat.completions.create(model=f"{wire}-no-such-model", messages=hello)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError) as hot:
        api.chat.completions.create(model=gateway.model(wire), messages=hello, temperature=7)  # type: ignore[arg-type]
    assert "temperature" in hot.value.message
    with pytest.raises(openai.BadRequestError) as unknown:
        api.chat.completions.create(model=gateway.model(wire), messages=hello,  # type: ignore[arg-type]
                                    extra_body={"no_such_field": 1})
    assert unknown.value.code == "unknown_parameter" and "no_such_field" in unknown.value.message
    if wire == "openai":
        api.chat.completions.create(model=gateway.model(wire), messages=hello, logprobs=True)  # type: ignore[arg-type]
    else:  # a field the client relies on and the wire cannot give: refused by name before anything is sent
        with pytest.raises(openai.BadRequestError) as refused:
            api.chat.completions.create(model=gateway.model(wire), messages=hello, logprobs=True)  # type: ignore[arg-type]
        assert "logprobs" in refused.value.message and wire in refused.value.message

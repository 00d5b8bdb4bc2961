"""Chat Completions fields through the gateway with the official SDK: ``n > 1`` on a wire without it
(parallel calls, every choice with its index, never spliced, streamed too), dropped fields noted, refused
fields a 400 that names them, the ``developer`` role, and OpenAI-only fields accepted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import openai
import pytest

from podium.providers.scripted import Step
from test_gateway_policy import Gw, config, open_gateway

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def gw(tmp_path: Path) -> AsyncIterator[Gw]:
    gateway = await open_gateway(tmp_path, {**config(tmp_path), "gateway": {**config(tmp_path)["gateway"],
                                                                           "auth": "optional"}})
    yield gateway
    await gateway.http.aclose()


def _answers(*texts: str) -> list[Step]:
    pieces = [[w + " " for w in t.split(" ")[:-1]] + t.split(" ")[-1:] for t in texts]
    return [Step(text=t, input_tokens=5, output_tokens=3, chunks=p, chunk_latency=0.005)
            for t, p in zip(texts, pieces, strict=True)]


async def test_n_on_a_wire_without_it_is_parallel_calls_and_every_choice_keeps_its_index(gw: Gw) -> None:
    gw.canned().set_script("echo-1", _answers("first answer", "second answer", "third answer"))
    sdk = gw.sdk("none")
    response = await sdk.chat.completions.create(model="echo", messages=HI, n=3)  # type: ignore[arg-type]
    assert [c.index for c in response.choices] == [0, 1, 2]
    assert sorted(c.message.content or "" for c in response.choices) == ["first answer", "second answer",
                                                                         "third answer"]
    assert response.usage is not None and response.usage.prompt_tokens == 15 and response.usage.completion_tokens == 9
    rows = gw.rows("SELECT input_tokens, output_tokens FROM calls WHERE request_id = ?",
                   response.id.removeprefix("chatcmpl-"))
    assert rows == [(15, 9)]  # one call row, billed for all three answers


async def test_a_streamed_n_never_splices_choices(gw: Gw) -> None:
    gw.canned().set_script("echo-1", _answers("alpha beta gamma", "one two three"))
    sdk = gw.sdk("none")
    stream = await sdk.chat.completions.create(model="echo", messages=HI, n=2, stream=True,  # type: ignore[arg-type]
                                               stream_options={"include_usage": True})
    texts: dict[int, str] = {}
    finished: set[int] = set()
    usage = None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finished.add(choice.index)
    assert sorted(texts.values()) == ["alpha beta gamma", "one two three"]
    assert finished == {0, 1}
    assert usage is not None and usage.completion_tokens == 6


async def test_one_failed_choice_fails_the_request_and_cancels_the_others(gw: Gw) -> None:
    from podium import errors

    gw.canned().set_script("echo-1", [Step(text="slow", latency=5.0), Step(error=errors.ProviderError("boom"))])
    sdk = gw.sdk("none")
    started = asyncio.get_running_loop().time()
    with pytest.raises(openai.APIStatusError):
        await sdk.chat.completions.create(model="echo", messages=HI, n=2)  # type: ignore[arg-type]
    assert asyncio.get_running_loop().time() - started < 4.0  # the slow sibling was cancelled, not awaited


async def test_openai_only_fields_and_the_developer_role_are_accepted(gw: Gw) -> None:
    sdk = gw.sdk("none")
    response = await sdk.chat.completions.create(
        model="echo", messages=[{"role": "developer", "content": "be brief"}, *HI],  # type: ignore[list-item]
        max_completion_tokens=50, reasoning_effort="low", prompt_cache_key="k", service_tier="auto", store=False,
        parallel_tool_calls=True, seed=3, frequency_penalty=0.1, presence_penalty=0.1,
        metadata={"task_type": "chat"}, safety_identifier="user-hash", verbosity="low")
    assert response.choices[0].message.content


async def test_an_unknown_field_is_a_400_that_names_it(gw: Gw) -> None:
    reply = await gw.http.post("/v1/chat/completions", json={"model": "echo", "messages": HI, "temprature": 1})
    assert reply.status_code == 400 and "temprature" in reply.json()["error"]["message"]


async def test_n_with_a_strategy_is_a_400_not_n_paid_answers_thrown_away(gw: Gw) -> None:
    reply = await gw.http.post("/v1/chat/completions", json={"model": "panel", "messages": HI, "n": 2})
    assert reply.status_code == 400 and "strategy" in reply.json()["error"]["message"]


def test_custom_tool_calls_keep_their_shape_in_history_answers_and_streams() -> None:
    from podium.providers.openai import wire
    from podium.server.openai_schema import ChunkWriter, parse_request

    custom = {"id": "call_0", "type": "custom", "custom": {"name": "apply_patch", "input": "*** Begin Patch"}}
    request, _ = parse_request({"model": "m", "messages": [
        {"role": "user", "content": "fix it"}, {"role": "assistant", "content": None, "tool_calls": [custom]},
        {"role": "tool", "tool_call_id": "call_0", "content": "done"}],
        "tools": [{"type": "custom", "custom": {"name": "apply_patch"}}]}, {})
    assert wire.request_body(request, "m", stream=False)["messages"][1]["tool_calls"] == [custom]
    answer = wire.parse_response({"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": None, "tool_calls": [custom]}}]}, model="m", provider="p")
    assert answer.tool_calls is not None and answer.tool_calls[0].openai_json() == custom
    chunk = wire.parse_chunk({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, **custom}]}}]},
                             model="m", provider="p")
    assert chunk is not None
    rendered = ChunkWriter("req_1", "m").chunk(chunk)
    assert rendered is not None and rendered["choices"][0]["delta"]["tool_calls"] == [{"index": 0, **custom}]


@pytest.mark.parametrize("wire_name", ["anthropic", "gemini", "ollama"])
def test_tool_arguments_nested_past_any_limit_are_kept_as_text_not_a_500(wire_name: str) -> None:
    import importlib

    from podium.types import ChatRequest, Message

    deep = '{"a":' * 3000 + "1" + "}" * 3000
    request = ChatRequest(messages=[Message.user("hi"), Message.model_validate({
        "role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": deep}}]}),
        Message(role="tool", tool_call_id="c1", content="ok")])
    wire = importlib.import_module(f"podium.providers.{wire_name}.wire")
    args = ("m",) if wire_name != "gemini" else ()
    kwargs = {"stream": False} if wire_name != "gemini" else {}
    if wire_name == "anthropic":
        kwargs["default_max_tokens"] = 10
    body = wire.request_body(request, *args, **kwargs)
    assert deep in str(body)  # whole, under _raw


async def test_without_any_key_the_gateway_answers_401_before_reading_the_body(tmp_path: Path) -> None:
    gateway = await open_gateway(tmp_path, config(tmp_path))
    try:
        reply = await gateway.http.post("/v1/chat/completions", content=b"{not json")
        assert reply.status_code == 401 and reply.json()["error"]["code"] == "missing_api_key"
    finally:
        await gateway.http.aclose()


async def test_a_deployment_whose_wire_refuses_a_field_is_skipped_for_one_that_takes_it(tmp_path: Path) -> None:
    """A model served on two wires (say Claude directly and through an OpenAI-compatible host): a request
    for logprobs goes to the deployment whose wire has them, and the trace says why the other was skipped."""
    data = config(tmp_path)
    data["providers"]["direct"] = {"kind": "scripted", "options": {"answers": {"echo-1": "from the direct wire"}}}
    data["deployments"] = {"echo": [{"provider": "direct"}, {"provider": "canned"}]}
    data["gateway"]["auth"] = "optional"
    gateway = await open_gateway(tmp_path, data)
    try:
        direct = gateway.podium.registry.find_provider("direct")
        direct.wire_name = "anthropic"  # type: ignore[union-attr]  # its wire refuses logprobs
        for _ in range(4):  # whatever the balancing order
            reply = await gateway.http.post("/v1/chat/completions", json={"model": "echo", "messages": HI,
                                                                         "logprobs": True})
            assert reply.status_code == 200, reply.text
            assert reply.json()["choices"][0]["message"]["content"] == "Paris is the capital of France."
            assert any("echo@direct" in note and "logprobs" in note for note in reply.json()["podium"]["notes"])
        plain = await gateway.http.post("/v1/chat/completions", json={"model": "other", "messages": HI,
                                                                     "logprobs": True})
        assert plain.status_code == 200  # the other model's one wire takes it
        gateway.podium.registry.find_provider("canned").wire_name = "ollama"  # type: ignore[union-attr]
        refused = await gateway.http.post("/v1/chat/completions", json={"model": "echo", "messages": HI,
                                                                       "logprobs": True})
        assert refused.status_code == 400 and "logprobs" in refused.json()["error"]["message"]
    finally:
        await gateway.http.aclose()

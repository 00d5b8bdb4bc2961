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

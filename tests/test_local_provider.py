"""The embedded provider with the real local models (llama.cpp). Skipped without the `local` extra."""

import asyncio
from pathlib import Path

import pytest

from conftest import needs_local
from podium.catalogue import bundled_catalogue
from podium.client import Podium
from podium.config import load_settings
from podium.errors import BadRequestError
from podium.providers.local.provider import LocalProvider, completion_prompt
from podium.types import ChatRequest, Message

pytestmark = needs_local

SMOL = bundled_catalogue().get("smollm2-135m")
GEMMA = bundled_catalogue().get("gemma3-270m")


@pytest.fixture(scope="module")
def provider():
    local = LocalProvider()  # each model with its catalogue window as n_ctx
    yield local
    asyncio.run(local.aclose())


def ask(text: str, **fields) -> ChatRequest:
    """Greedy decoding with a brief-answer system prompt: the 135M model then answers plainly."""
    return ChatRequest(messages=[Message.system("You are a helpful assistant. Answer briefly."), Message.user(text)],
                       max_tokens=fields.pop("max_tokens", 24), seed=1, temperature=0, **fields)


async def test_chat_model_answers_with_real_usage(provider: LocalProvider):
    response = await provider.complete(ask("What is the capital of France?"), SMOL)
    assert "Paris" in response.text
    assert response.usage.input_tokens > 5 and 0 < response.usage.output_tokens <= 24
    assert response.provider == "local" and response.model == "smollm2-135m"


async def test_base_model_answers_a_completion_prompt_and_stops_at_the_line(provider: LocalProvider):
    response = await provider.complete(ask("What is the capital of France?"), GEMMA)
    assert "Paris" in response.text
    assert "\n" not in response.text and "Question" not in response.text
    assert response.usage.output_tokens > 0


def test_completion_prompt_shape():
    request = ChatRequest(messages=[Message.system("Be brief."), Message.user("2+2?"),
                                    Message(role="assistant", content="4"), Message.user("3+3?")])
    assert completion_prompt(request) == "Be brief.\nQuestion: 2+2?\nAnswer: 4\nQuestion: 3+3?\nAnswer:"


async def test_stream_arrives_token_by_token_with_real_counts(provider: LocalProvider):
    request = ask("Write a long story about a dragon.", max_tokens=16)
    whole = await provider.complete(request, SMOL)
    chunks = [c async for c in provider.stream(request, SMOL)]
    text_chunks = [c for c in chunks if c.text]
    assert len(text_chunks) > 3  # token by token, not one block
    final = chunks[-1]
    assert final.usage is not None and final.finish_reason == whole.finish_reason == "length"
    # the story is cut at max_tokens, so both counts must be exactly 16, and the prompt is the same prompt
    assert final.usage.output_tokens == whole.usage.output_tokens == 16
    assert final.usage.input_tokens == whole.usage.input_tokens > 10


async def test_concurrent_requests_on_one_model_are_serialized_and_all_answer(provider: LocalProvider):
    requests = [ask(q, max_tokens=8) for q in ("Capital of France?", "Capital of Italy?", "Capital of Spain?")]
    await provider.complete(requests[0], SMOL)
    loaded = provider._slots[SMOL.model_id].llama
    answers = await asyncio.gather(*(provider.complete(r, SMOL) for r in requests))
    assert all(a.usage.output_tokens > 0 for a in answers)
    assert provider._slots[SMOL.model_id].llama is loaded  # one model instance, loaded once and reused


async def test_closing_a_stream_stops_generation(provider: LocalProvider):
    stream = provider.stream(ask("Write a long story about a dragon.", max_tokens=200), SMOL)
    first = await anext(stream)
    assert first.text
    await stream.aclose()
    # the model thread is free again right away: a new request completes normally
    response = await asyncio.wait_for(provider.complete(ask("Capital of France?", max_tokens=8), SMOL), 60)
    assert response.usage.output_tokens > 0


async def test_a_cancelled_completion_stops_generating(provider: LocalProvider):
    """A non-streamed request whose caller goes away (client gone, deadline, shutdown) stops at the
    next token instead of writing on and holding the model's only thread."""
    await provider.complete(ask("Hi", max_tokens=2), SMOL)  # loaded, so the task below generates at once
    slot = provider._slots[SMOL.model_id]
    task = asyncio.create_task(provider.complete(ask("Write a very long story about a dragon, in many chapters.",
                                                     max_tokens=1500), SMOL))
    for _ in range(600):
        await asyncio.sleep(0.05)
        if slot.llama.generated >= 3:
            break
    assert slot.llama.generated >= 3, "the generation never started"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # runs on the model's thread after the cancelled generation has let go of it: what it reached
    reached = await asyncio.get_running_loop().run_in_executor(slot.executor, lambda: slot.llama.generated)
    assert reached < 60, f"the cancelled generation went on to {reached} tokens"


async def test_unsupported_features_are_refused_clearly(provider: LocalProvider):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    with pytest.raises(BadRequestError, match="does not support tools"):
        await provider.complete(ask("hi", tools=tools), SMOL)
    with pytest.raises(BadRequestError, match="images"):
        await provider.complete(ChatRequest(messages=[Message(role="user", content=[
            {"type": "image_url", "image_url": {"url": "https://x/y.png"}}])]), SMOL)


async def test_health_and_listing(provider: LocalProvider):
    health = await provider.health()
    assert health.ok and "smollm2-135m-instruct" in health.detail
    assert "smollm2-135m-instruct" in await provider.list_models()


async def test_end_to_end_through_podium_with_ledger(tmp_path: Path):
    config = tmp_path / "podium.yaml"
    config.write_text(f"ledger: {{path: {tmp_path / 'ledger.sqlite3'}}}\n")
    async with Podium(load_settings(config)) as podium:
        response = await podium.chat(ask("What is the capital of France?"))
        stream = podium.stream("What is the capital of France?", model="gemma3-270m", max_tokens=8, temperature=0)
        text = "".join([c.text async for c in stream])
    assert "Paris" in response.text and response.cost == 0.0
    assert response.trace.calls[0].usage.output_tokens == response.usage.output_tokens
    assert "Paris" in text and stream.response.usage.output_tokens > 0


async def test_a_prompt_over_the_context_window_is_context_too_long(provider: LocalProvider):
    """llama.cpp raises a bare ValueError at a stream's first part: it must be ContextTooLongError (it was a
    traceback), so Podium's context fallback (tested over scripted providers) can take the request to a model
    with a bigger window. Found by a work run whose conductor prompt outgrew SmolLM2's 8,192 tokens."""
    from podium.errors import ContextTooLongError

    long = " ".join(str(i % 10) for i in range(9000))  # ~18,000 tokens
    model = bundled_catalogue().get("smollm2-135m")
    with pytest.raises(ContextTooLongError, match="8192"):
        await provider.complete(ChatRequest(messages=[Message(role="user", content=long)], max_tokens=4), model)
    with pytest.raises(ContextTooLongError):
        async for _ in provider.stream(ChatRequest(messages=[Message(role="user", content=long)]), model):
            pass

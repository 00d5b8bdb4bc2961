"""The embedded models answer like a model, not like a model's leftover state.

With the real local models (llama.cpp): a greedy answer depends on the request only (asked again,
after other questions, streamed or not, or by a freshly loaded model; also when a long shared start
is taken from the cache), stream usage counts tokens
(not text chunks), each model is loaded with exactly its catalogue window, and without
``max_tokens`` a model writes until it stops or its context is full. Skipped without the `local` extra.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import needs_local, write_config
from podium.catalogue import ModelInfo, bundled_catalogue
from podium.client import Podium
from podium.config import load_settings
from podium.errors import BadRequestError
from podium.providers.local.provider import LocalProvider
from podium.types import ChatRequest, EmbeddingRequest, Message

pytestmark = needs_local

SMOL = bundled_catalogue().get("smollm2-135m")
GEMMA = bundled_catalogue().get("gemma3-270m")
# Prompts whose second greedy answer drifted from the first when llama-cpp-python reused the previous
# request's context (the last prompt token decoded alone): within 15-25 tokens for each of these.
DRIFTING = ("Why is the sky blue?", "Describe a sunset in detail.", "Write a long story about a dragon.")


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalProvider]:
    local = LocalProvider()
    yield local
    asyncio.run(local.aclose())


def greedy(text: str, max_tokens: int | None = 40) -> ChatRequest:
    return ChatRequest(messages=[Message.user(text)], temperature=0, max_tokens=max_tokens)


async def streamed(provider: LocalProvider, request: ChatRequest, model: ModelInfo) -> tuple[str, int, str]:
    """(text, output tokens, finish reason) of a streamed answer."""
    chunks = [c async for c in provider.stream(request, model)]
    final = chunks[-1]
    assert final.usage is not None and final.finish_reason is not None
    return "".join(c.text for c in chunks), final.usage.output_tokens, final.finish_reason


async def test_the_same_greedy_question_gets_the_same_answer_every_time(provider: LocalProvider):
    first = {q: (await provider.complete(greedy(q), SMOL)).text for q in DRIFTING}
    again_in_a_row = {q: (await provider.complete(greedy(q), SMOL)).text for q in DRIFTING}
    interleaved = {}
    for q in reversed(DRIFTING):  # other questions in between
        await provider.complete(greedy("What is 2+2?"), SMOL)
        interleaved[q] = (await provider.complete(greedy(q), SMOL)).text
    back_to_back = [(await provider.complete(greedy(DRIFTING[0]), SMOL)).text for _ in range(2)]
    assert all(len(text) > 60 for text in first.values())  # long enough to have drifted before the fix
    assert again_in_a_row == first
    assert interleaved == first
    assert back_to_back == [first[DRIFTING[0]]] * 2
    fresh = LocalProvider()  # a model loaded for this one question answers the same
    try:
        assert (await fresh.complete(greedy(DRIFTING[1]), SMOL)).text == first[DRIFTING[1]]
    finally:
        await fresh.aclose()


async def test_a_long_shared_start_is_read_once_and_answers_stay_the_same(provider: LocalProvider):
    """Whole 512-token batches of an earlier prompt are reused; the answers equal a fresh model's."""
    facts = " ".join(f"Item {i} costs {i * 3} euros and is {'red' if i % 2 else 'blue'}." for i in range(60))

    def with_facts(question: str) -> ChatRequest:
        return ChatRequest(messages=[Message.system(f"You are a helpful assistant. Facts: {facts}"),
                                     Message.user(question)], temperature=0, max_tokens=32)

    questions = ("What does item 7 cost?", "Why is the sky blue?")
    answers, reused = [], []
    for question in (*questions, *questions):
        answer = await provider.complete(with_facts(question), SMOL)
        answers.append(answer.text)
        reused.append(provider._slots[SMOL.model_id].llama.reused)
    assert answer.usage.input_tokens > 600
    assert reused[1:] == [512, 512, 512]  # after the first, the shared first batch is not decoded again
    assert answers[:2] == answers[2:]
    streamed_text = (await streamed(provider, with_facts(questions[1]), SMOL))[0]
    fresh = LocalProvider()
    try:
        fresh_answers, fresh_reused = [], []
        for question in reversed(questions):  # the other order: the second question is read whole first
            fresh_answers.append((await fresh.complete(with_facts(question), SMOL)).text)
            fresh_reused.append(fresh._slots[SMOL.model_id].llama.reused)
        assert fresh_answers == answers[1::-1] and fresh_reused == [0, 512]
    finally:
        await fresh.aclose()
    assert streamed_text == answers[1]


async def test_streamed_and_whole_answers_are_the_same(provider: LocalProvider):
    for q in DRIFTING[:2]:
        whole = await provider.complete(greedy(q), SMOL)
        text, tokens, finish = await streamed(provider, greedy(q), SMOL)
        whole_again = await provider.complete(greedy(q), SMOL)
        assert text == whole.text == whole_again.text
        assert (tokens, finish) == (whole.usage.output_tokens, whole.finish_reason)


async def test_the_base_model_answers_the_same_twice_and_streamed(provider: LocalProvider):
    questions = ("What is the capital of Italy?", "What is the largest planet?")
    first = [(await provider.complete(greedy(q), GEMMA)).text for q in questions]
    second = [(await provider.complete(greedy(q), GEMMA)).text for q in questions]
    streams = [(await streamed(provider, greedy(q), GEMMA))[0] for q in questions]
    assert first == second == streams
    assert all(first)
    assert provider._slots[GEMMA.model_id].llama.reused == 0  # sliding-window memory: always decoded whole


@pytest.mark.parametrize("question", ["Reply with three emoji.", "Write the word 'hello' in Japanese."])
async def test_stream_usage_counts_tokens_not_text_chunks(provider: LocalProvider, question: str):
    request = greedy(question, max_tokens=30)
    whole = await provider.complete(request, SMOL)
    chunks = [c async for c in provider.stream(request, SMOL)]
    text_chunks = [c for c in chunks if c.text]
    final = chunks[-1]
    assert final.usage is not None
    assert any(ord(ch) > 0x7F for ch in whole.text), whole.text  # multi-byte characters in the answer
    # a character took several tokens, so the stream had fewer text chunks than tokens
    assert len(text_chunks) < final.usage.output_tokens
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.usage.input_tokens == whole.usage.input_tokens


async def test_without_max_tokens_a_model_writes_until_its_context_is_full(provider: LocalProvider):
    assert provider._generation_args(greedy("hi", max_tokens=None), SMOL)["max_tokens"] is None
    assert provider._generation_args(greedy("hi", max_tokens=12), SMOL)["max_tokens"] == 12
    small = SMOL.model_copy(update={"context_window": 512})
    own = LocalProvider()  # loads the model with the small window of this row
    try:
        answer = await own.complete(greedy("Write a long story about a dragon.", max_tokens=None), small)
        text, tokens, finish = await streamed(own, greedy("Write a long story about a dragon.",
                                                          max_tokens=None), small)
    finally:
        await own.aclose()
    # more than the 256 tokens Podium used to impose, up to the context's end
    assert answer.usage.output_tokens > 256
    assert answer.finish_reason == "length"
    assert answer.usage.input_tokens + answer.usage.output_tokens == 512
    assert (text, tokens, finish) == (answer.text, answer.usage.output_tokens, "length")


def _local_rows(podium: Podium) -> list[ModelInfo]:
    # GGUF models only: minilm-l6 runs in numpy, not llama.cpp (its 256-token cut: tests/test_minilm.py)
    rows = [m for m in podium.settings.catalogue if m.provider == "local" and m.name != "minilm-l6"]
    assert {m.name for m in rows} >= {"smollm2-135m", "gemma3-270m", "smollm2-135m-embed"}
    return rows


async def _loaded_context(provider: LocalProvider, model: ModelInfo) -> tuple[int, int]:
    """(n_ctx the model was loaded with, the context it was trained with)."""
    if "embeddings" in model.capabilities:
        await provider.embed(EmbeddingRequest(input=["hello"]), model)
        llama = provider._slots[model.model_id + "#embed"].llama
    else:
        await asyncio.to_thread(provider.count_tokens, model, "hello")
        llama = provider._slots[model.model_id].llama
    import llama_cpp

    return llama.n_ctx(), llama_cpp.llama_model_n_ctx_train(llama.model)


@pytest.mark.parametrize("cap", [None, 2048])
async def test_every_local_model_is_loaded_with_its_catalogue_window(tmp_path: Path, cap: int | None):
    options = {} if cap is None else {"options": {"n_ctx": cap}}
    path = write_config(tmp_path, {"providers": {"local": options}, "ledger": {"enabled": False}})
    podium = Podium(load_settings(path))
    try:
        local = podium.registry.get_provider("local")
        assert isinstance(local, LocalProvider)
        for row in _local_rows(podium):
            bundled = bundled_catalogue().get(row.name)
            expected = bundled.context_window if cap is None else min(cap, bundled.context_window)
            assert row.context_window == expected
            loaded, trained = await _loaded_context(local, row)
            assert loaded == row.context_window, row.name  # the router's window is llama.cpp's window
            assert row.context_window <= trained, row.name  # and no more than the model was trained for
            if row.max_output_tokens is not None:
                assert row.max_output_tokens <= row.context_window
    finally:
        await podium.aclose()


async def test_a_prompt_over_a_local_window_is_not_routed_to_it(tmp_path: Path):
    path = write_config(tmp_path, {"providers": {"local": {"options": {"n_ctx": 512}}}, "ledger": {"enabled": False}})
    podium = Podium(load_settings(path))
    try:
        long = ChatRequest(messages=[Message.user("word " * 800)], max_tokens=16)
        with pytest.raises(BadRequestError, match=r"window 512"):
            podium.router.route(long)
        with pytest.raises(BadRequestError, match=r"window 512"):
            podium.router.route(long.model_copy(update={"model": "smollm2-135m"}))
        short = ChatRequest(messages=[Message.user("What is 2+2?")], max_tokens=16)
        assert podium.router.route(short).decision.model in {"smollm2-135m", "gemma3-270m"}
    finally:
        await podium.aclose()

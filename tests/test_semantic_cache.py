"""The semantic index in memory and in a real Redis: nearest above the threshold, anchors, expiry, bounds."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from conftest import require_redis
from podium.server.semantic_cache import (
    MemorySemanticIndex,
    Question,
    RedisSemanticIndex,
    SemanticIndex,
    anchors,
    last_user_text,
    semantic_bucket,
)
from podium.types import ChatRequest, ChatResponse, Message
from servers.wires import word_vector


@pytest.fixture(params=["memory", "redis"])
async def make_index(request: pytest.FixtureRequest) -> AsyncIterator[type]:
    made: list[RedisSemanticIndex] = []

    def factory(ttl: float = 60.0, per_bucket: int = 4) -> SemanticIndex:
        if request.param == "memory":
            return MemorySemanticIndex(ttl, per_bucket)
        index = RedisSemanticIndex("redis://127.0.0.1:6379/0", ttl, per_bucket,
                                   prefix=f"podium-test:{os.getpid()}:{id(made)}:")
        made.append(index)
        return index

    if request.param == "redis":
        require_redis()
    yield factory  # type: ignore[misc]
    for index in made:
        await index.aclose()


def q(text: str) -> Question:
    return Question(word_vector(text), anchors(text))


def answer(text: str) -> ChatResponse:
    return ChatResponse(id=f"req_{abs(hash(text))}", text=text, model="m", provider="p")


async def test_nearest_above_threshold_with_the_same_anchors(make_index):
    index = make_index()
    await index.add("b", q("What is the capital of France?"), answer("Paris"))
    await index.add("b", q("How tall is Mount Everest?"), answer("8849 m"))
    hit = await index.nearest("b", q("the capital of France is what"), 0.9)
    assert hit is not None and hit.response.text == "Paris" and hit.similarity == pytest.approx(1.0)
    assert await index.nearest("b", q("What is the capital of Spain?"), 0.8) is None  # 0.83, but Spain ≠ France
    assert await index.nearest("other bucket", q("What is the capital of France?"), 0.5) is None
    assert await index.nearest("b", q("completely different words here"), 0.5) is None


async def test_expired_entries_and_old_entries_beyond_the_bucket_size_are_gone(make_index):
    expired = make_index(ttl=-1.0)  # already expired when written
    await expired.add("b", q("What is the capital of France?"), answer("Paris"))
    assert await expired.nearest("b", q("What is the capital of France?"), 0.5) is None
    small = make_index(per_bucket=2)
    for i in range(3):
        await small.add("b", q(f"question number {i}"), answer(str(i)))
    assert await small.nearest("b", q("question number 0"), 0.99) is None  # pushed out by the newer two
    hit = await small.nearest("b", q("question number 2"), 0.99)
    assert hit is not None and hit.response.text == "2"


def test_anchors_are_names_numbers_and_quoted_text():
    assert anchors("What is the capital of France?") == {"france"}
    assert anchors("Tell me about Berlin. Then Paris.") == {"berlin", "paris"}  # not "Tell", "Then"
    assert anchors('Sort 3.5 and 10 with `numpy` in "my file"') == {"3.5", "10", "`numpy`", '"my file"'}
    assert anchors("how do i sort a list") == frozenset()


def test_the_bucket_is_everything_but_the_last_question():
    def request(*turns: str, temperature: float | None = None) -> ChatRequest:
        roles = ["user", "assistant"]
        return ChatRequest(messages=[Message(role=roles[i % 2], content=t) for i, t in enumerate(turns)],  # type: ignore[arg-type]
                           model="m", temperature=temperature)

    assert semantic_bucket(request("a?")) == semantic_bucket(request("b?"))
    assert semantic_bucket(request("x", "y", "a?")) != semantic_bucket(request("a?"))
    assert semantic_bucket(request("a?", temperature=0.1)) != semantic_bucket(request("a?"))
    assert last_user_text(request("x", "y")) is None  # the last message is the assistant's
    assert last_user_text(request("Why?")) == "Why?"

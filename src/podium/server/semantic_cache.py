"""Semantic cache: a new question that means the same as a cached one gets the cached answer.

Safe for multi-turn by construction: the *bucket* is a hash of everything but the last user
message (model, parameters, metadata and the whole earlier conversation), so only requests with an
identical history are ever compared; within a bucket the last user message is compared by cosine
similarity of its embedding and a hit needs at least ``threshold``.

Embeddings alone conflate questions that differ in one name or number: with the local SmolLM2
vectors "capital of France?" and "capital of Germany?" score 0.997, and even good embedding models
score such pairs above 0.9. So a hit also needs the same *anchors*: numbers, quoted or backticked
strings and capitalised words inside a sentence (names). A miss costs one model call; a wrong hit
gives a wrong answer, so the guard errs towards misses (``benchmarks/semantic_cache.py`` measures
both). Each bucket keeps its newest ``per_bucket`` entries. Memory for one instance; Redis (one
list per bucket, entries carry their expiry) for several.
"""

from __future__ import annotations

import hashlib
import re
import struct
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from podium.server.cache import key_fields
from podium.types import ChatRequest, ChatResponse


def last_user_text(request: ChatRequest) -> str | None:
    """The question to compare: the last message, if it is the user's and has text."""
    last = request.messages[-1] if request.messages else None
    return last.text if last is not None and last.role == "user" and last.text.strip() else None


_ANCHOR = re.compile(r"\d+(?:[.,:/]\d+)*|\"[^\"]+\"|`[^`]+`|(?<![.!?]\s)(?<!^)\b[A-Z][\w-]*")


def anchors(text: str) -> frozenset[str]:
    """Names, numbers and quoted strings: what must be identical for two questions to share an answer."""
    return frozenset(match.lower() for match in _ANCHOR.findall(text.strip()))


@dataclass(frozen=True)
class Question:
    vector: list[float]
    anchors: frozenset[str]


def semantic_bucket(request: ChatRequest, partition: str = "global") -> str:
    """Everything but the last user message, within ``partition`` (see ``cache_key``)."""
    data = key_fields(request)
    data["messages"] = data["messages"][:-1]
    return f"{partition}:" + hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class SemanticHit:
    response: ChatResponse
    similarity: float


def _unit(vector: list[float]) -> Any:
    import numpy as np

    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    return array / norm if norm > 0 else array


def _best(query: Question, candidates: list[tuple[Any, frozenset[str], bytes]],
          threshold: float) -> tuple[float, bytes] | None:
    import numpy as np

    unit = _unit(query.vector)
    usable = [(v, blob) for v, marks, blob in candidates if v.shape == unit.shape and marks == query.anchors]
    if not usable:
        return None
    scores = np.stack([v for v, _ in usable]) @ unit
    best = int(np.argmax(scores))
    return (float(scores[best]), usable[best][1]) if scores[best] >= threshold else None


class SemanticIndex(Protocol):
    async def nearest(self, bucket: str, question: Question, threshold: float) -> SemanticHit | None: ...

    async def add(self, bucket: str, question: Question, response: ChatResponse) -> None: ...


class MemorySemanticIndex:
    """Buckets in LRU order (at most ``max_buckets``), each a bounded deque of unit vectors and answers."""

    def __init__(self, ttl: float, per_bucket: int = 32, max_buckets: int = 10_000) -> None:
        self.ttl, self.per_bucket, self.max_buckets = ttl, per_bucket, max_buckets
        self._buckets: OrderedDict[str, deque[tuple[float, Any, frozenset[str], bytes]]] = OrderedDict()

    async def nearest(self, bucket: str, question: Question, threshold: float) -> SemanticHit | None:
        entries = self._buckets.get(bucket)
        if not entries:
            return None
        now = time.monotonic()
        found = _best(question, [(v, marks, blob) for expires, v, marks, blob in entries if expires > now], threshold)
        if found is None:
            return None
        self._buckets.move_to_end(bucket)
        return SemanticHit(ChatResponse.model_validate_json(found[1]), found[0])

    async def add(self, bucket: str, question: Question, response: ChatResponse) -> None:
        entries = self._buckets.get(bucket)
        if entries is None:
            entries = self._buckets[bucket] = deque(maxlen=self.per_bucket)
        entries.append((time.monotonic() + self.ttl, _unit(question.vector), question.anchors,
                        response.model_dump_json().encode()))
        self._buckets.move_to_end(bucket)
        while len(self._buckets) > self.max_buckets:
            self._buckets.popitem(last=False)


# A Redis entry: expiry (unix seconds), dimensions, anchor bytes; float32 x dimensions; anchors; the answer.
_HEADER = struct.Struct("<dII")


class RedisSemanticIndex:
    def __init__(self, url: str, ttl: float, per_bucket: int = 32, prefix: str = "podium:scache:") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self.ttl, self.per_bucket, self.prefix = ttl, per_bucket, prefix

    async def nearest(self, bucket: str, question: Question, threshold: float) -> SemanticHit | None:
        import numpy as np

        rows: list[Any] = await self._redis.lrange(self.prefix + bucket, 0, self.per_bucket - 1)
        now = time.time()
        live = []
        for row in rows:
            expires, dims, size = _HEADER.unpack_from(row)
            if expires > now:
                start = _HEADER.size + 4 * dims
                marks = frozenset(orjson.loads(row[start:start + size]))
                live.append((np.frombuffer(row, dtype="<f4", count=dims, offset=_HEADER.size), marks,
                             row[start + size:]))
        found = _best(question, live, threshold)
        return SemanticHit(ChatResponse.model_validate_json(found[1]), found[0]) if found else None

    async def add(self, bucket: str, question: Question, response: ChatResponse) -> None:
        unit = _unit(question.vector).astype("<f4")
        marks = orjson.dumps(sorted(question.anchors))
        row = (_HEADER.pack(time.time() + self.ttl, unit.shape[0], len(marks)) + unit.tobytes() + marks
               + response.model_dump_json().encode())
        key = self.prefix + bucket
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.lpush(key, row)
            pipe.ltrim(key, 0, self.per_bucket - 1)
            pipe.expire(key, max(1, int(self.ttl)))
            await pipe.execute()

    async def aclose(self) -> None:
        await self._redis.aclose()

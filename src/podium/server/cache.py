"""Response cache for the gateway: the same request gets the same answer without a model call.

The key is a hash of everything that shapes the answer — the model or strategy asked for, the
whole conversation (so multi-turn is safe: a different history is a different key), sampling
parameters, tools, response format and the routing metadata. Only whole (non-streamed) answers are
stored. ``x-podium-cache: bypass`` (or ``cache-control: no-cache``) skips the cache for one request.
Memory (LRU with TTL) for one instance, Redis for several.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from typing import Any, Protocol

import orjson

from podium.types import ChatRequest, ChatResponse

_KEY_FIELDS = {"messages", "model", "temperature", "top_p", "max_tokens", "stop", "seed", "n", "tools", "tool_choice",
               "response_format", "frequency_penalty", "presence_penalty", "parallel_tool_calls", "reasoning_effort",
               "logprobs", "top_logprobs", "extra"}


def key_fields(request: ChatRequest) -> dict[str, Any]:
    """Everything that shapes the answer, as plain JSON data."""
    data = request.model_dump(mode="json", include=_KEY_FIELDS, exclude_none=True)
    meta = request.metadata
    data["meta"] = [meta.task_type, meta.sensitivity, meta.preset, sorted(meta.tags)]
    return data


def cache_key(request: ChatRequest, partition: str = "global") -> str:
    """The cache key of ``request`` within ``partition`` (whose answers may be shared: a key, a team)."""
    digest = hashlib.sha256(orjson.dumps(key_fields(request), option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"{partition}:{digest}"


class ResponseCache(Protocol):
    async def get(self, key: str) -> ChatResponse | None: ...

    async def put(self, key: str, response: ChatResponse) -> None: ...


class MemoryCache:
    def __init__(self, ttl: float, max_entries: int) -> None:
        self.ttl, self.max_entries = ttl, max_entries
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> ChatResponse | None:
        item = self._items.get(key)
        if item is None:
            return None
        expires, blob = item
        if time.monotonic() > expires:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return ChatResponse.model_validate_json(blob)

    async def put(self, key: str, response: ChatResponse) -> None:
        self._items[key] = (time.monotonic() + self.ttl, response.model_dump_json().encode())
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)


class RedisCache:
    def __init__(self, url: str, ttl: float, prefix: str = "podium:cache:") -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self.ttl, self.prefix = ttl, prefix

    async def get(self, key: str) -> ChatResponse | None:
        blob = await self._redis.get(self.prefix + key)
        return ChatResponse.model_validate_json(blob) if blob is not None else None

    async def put(self, key: str, response: ChatResponse) -> None:
        await self._redis.set(self.prefix + key, response.model_dump_json(), ex=max(1, int(self.ttl)))

    async def aclose(self) -> None:
        await self._redis.aclose()

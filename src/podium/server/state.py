"""Shared counters for limits and budgets: in memory for one instance, in Redis for several.

Rate limits are token buckets (capacity = the per-minute limit, refilled continuously), one for
requests and one for tokens, taken together or not at all. Budgets are reservations: a request
reserves its estimated cost if that fits, and settles the difference when its real cost is known,
so two instances can never both spend the last dollar. In Redis both are single Lua scripts, so
they are atomic across every gateway instance sharing the server.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, Protocol, TypeVar
from urllib.parse import urlsplit

from podium.errors import StoreUnavailableError
from podium.policy import BudgetSlot

P = ParamSpec("P")
R = TypeVar("R")

_BUCKET_LUA = """
local now = tonumber(ARGV[1])
local levels = {}
local wait = 0
for i = 1, #KEYS do
  local cap = tonumber(ARGV[2 * i])
  local want = tonumber(ARGV[2 * i + 1])
  local state = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tokens = tonumber(state[1]) or cap
  local ts = tonumber(state[2]) or now
  levels[i] = math.min(cap, tokens + (now - ts) * cap / 60.0)
  if levels[i] < want then wait = math.max(wait, (want - levels[i]) * 60.0 / cap) end
end
if wait > 0 then return {0, tostring(wait)} end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'tokens', levels[i] - tonumber(ARGV[2 * i + 1]), 'ts', now)
  redis.call('EXPIRE', KEYS[i], 120)
end
return {1, '0'}
"""

_RESERVE_LUA = """
local amount = tonumber(ARGV[1])
for i = 1, #KEYS do
  local spent = tonumber(redis.call('GET', KEYS[i]) or '0')
  if spent + amount > tonumber(ARGV[2 * i]) then return {0, i - 1, tostring(spent)} end
end
for i = 1, #KEYS do
  redis.call('INCRBYFLOAT', KEYS[i], amount)
  local ttl = tonumber(ARGV[2 * i + 1])
  if ttl > 0 then redis.call('EXPIRE', KEYS[i], ttl) end
end
return {1, -1, '0'}
"""


class SharedState(Protocol):
    remote: bool  # operations may suspend (Redis): see podium.policy.Counters

    async def take(self, buckets: list[tuple[str, int, float]]) -> tuple[bool, float]:
        """Take ``amount`` from every ``(key, per_minute, amount)`` bucket, or none; (ok, seconds to wait)."""
        ...

    async def give_back(self, key: str, per_minute: int, amount: float) -> None: ...

    async def reserve(self, slots: list[BudgetSlot], amount: float) -> tuple[int, float]:
        """Reserve ``amount`` in every slot, or in none: (-1, 0) when done, else (the first slot that
        has no room, what it has spent)."""
        ...

    async def settle(self, key: str, delta: float) -> None: ...

    async def seed(self, key: str, amount: float, ttl: int) -> None:
        """Start a budget counter at ``amount`` unless it exists already (another instance, an earlier
        request of this process): where spending is rebuilt from the ledger."""
        ...

    async def spent(self, key: str) -> float: ...

    async def mark_open(self, key: str, seconds: float) -> None:
        """Publish an open circuit for ``seconds`` (see ``resilience.shared``)."""
        ...

    async def open_marks(self, keys: list[str]) -> list[bool]: ...

    async def aclose(self) -> None: ...


class MemoryState:
    remote = False

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._spent: dict[str, float] = {}
        self._marks: dict[str, float] = {}

    def _level(self, key: str, cap: int, now: float) -> float:
        tokens, ts = self._buckets.get(key, (float(cap), now))
        return min(float(cap), tokens + (now - ts) * cap / 60.0)

    async def take(self, buckets: list[tuple[str, int, float]]) -> tuple[bool, float]:
        now = time.monotonic()
        wait = 0.0
        for key, cap, want in buckets:
            level = self._level(key, cap, now)
            if level < want:
                wait = max(wait, (want - level) * 60.0 / cap)
        if wait > 0:
            return False, wait
        for key, cap, want in buckets:
            self._buckets[key] = (self._level(key, cap, now) - want, now)
        return True, 0.0

    async def give_back(self, key: str, per_minute: int, amount: float) -> None:
        now = time.monotonic()
        self._buckets[key] = (min(float(per_minute), self._level(key, per_minute, now) + amount), now)

    async def reserve(self, slots: list[BudgetSlot], amount: float) -> tuple[int, float]:
        for i, slot in enumerate(slots):
            spent = self._spent.get(slot.key, 0.0)
            if spent + amount > slot.limit:
                return i, spent
        for slot in slots:
            self._spent[slot.key] = self._spent.get(slot.key, 0.0) + amount
        return -1, 0.0

    async def settle(self, key: str, delta: float) -> None:
        self._spent[key] = self._spent.get(key, 0.0) + delta

    async def seed(self, key: str, amount: float, ttl: int) -> None:
        self._spent.setdefault(key, amount)

    async def spent(self, key: str) -> float:
        return self._spent.get(key, 0.0)

    async def mark_open(self, key: str, seconds: float) -> None:
        self._marks[key] = time.monotonic() + seconds

    async def open_marks(self, keys: list[str]) -> list[bool]:
        now = time.monotonic()
        return [self._marks.get(key, 0.0) > now for key in keys]

    async def aclose(self) -> None:
        return None


def _where(url: str) -> str:
    """host:port of a Redis URL, for messages (never its password)."""
    parts = urlsplit(url)
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


def _reachable(method: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """A Redis that does not answer is a 503 naming where it should be, not a 500."""

    @functools.wraps(method)
    async def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            return await method(*args, **kwargs)
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            state = args[0]
            where = state.where if isinstance(state, RedisState) else "Redis"
            raise StoreUnavailableError(f"the shared state (Redis at {where}) is not answering ({type(exc).__name__}); "
                                        "check that it runs and gateway.redis_url") from None

    return checked


class RedisState:
    remote = True

    def __init__(self, url: str, prefix: str = "podium:") -> None:
        import redis.asyncio as redis

        # bounded waits: a Redis that hangs must fail a request in seconds, not hold it for ever
        self._redis = redis.from_url(url, socket_connect_timeout=3, socket_timeout=5)
        self.where = _where(url)
        self._prefix = prefix
        self._bucket = self._redis.register_script(_BUCKET_LUA)
        self._reserve = self._redis.register_script(_RESERVE_LUA)

    @_reachable
    async def take(self, buckets: list[tuple[str, int, float]]) -> tuple[bool, float]:
        keys = [self._prefix + "rl:" + key for key, _, _ in buckets]
        args: list[float] = [time.time()]
        for _, cap, want in buckets:
            args += [cap, want]
        ok, wait = await self._bucket(keys=keys, args=args)
        return bool(int(ok)), float(wait)

    @_reachable
    async def give_back(self, key: str, per_minute: int, amount: float) -> None:
        await self._bucket(keys=[self._prefix + "rl:" + key], args=[time.time(), per_minute, -amount])

    @_reachable
    async def reserve(self, slots: list[BudgetSlot], amount: float) -> tuple[int, float]:
        args: list[float] = [amount]
        for slot in slots:
            args += [slot.limit, slot.ttl]
        _, failed, spent = await self._reserve(keys=[self._prefix + "budget:" + s.key for s in slots], args=args)
        return int(failed), float(spent)

    @_reachable
    async def settle(self, key: str, delta: float) -> None:
        await self._redis.incrbyfloat(self._prefix + "budget:" + key, delta)

    @_reachable
    async def seed(self, key: str, amount: float, ttl: int) -> None:
        await self._redis.set(self._prefix + "budget:" + key, repr(amount), nx=True, ex=ttl or None)

    @_reachable
    async def spent(self, key: str) -> float:
        value = await self._redis.get(self._prefix + "budget:" + key)
        return float(value) if value is not None else 0.0

    @_reachable
    async def mark_open(self, key: str, seconds: float) -> None:
        await self._redis.set(self._prefix + key, "open", px=max(1, int(seconds * 1000)))

    @_reachable
    async def open_marks(self, keys: list[str]) -> list[bool]:
        values = await self._redis.mget([self._prefix + key for key in keys])
        return [value is not None for value in values]

    async def aclose(self) -> None:
        await self._redis.aclose()

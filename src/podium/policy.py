"""The request policy: what one request may do. Built once at the edge, checked on every model call.

A promise checked only at the edge is routed around by the next fallback, strategy or retry
someone adds. So the gateway (or ``Podium.chat`` for library callers) builds one ``RequestPolicy``
per request, and every model call asks it, at the one place all calls pass just before a request
goes to a deployment (``Invoker``):

    permit(model)             scope, region, can it run here — may this deployment be called?  (sync, µs)
    hold(model, in, out)      the call's worst case held in the key's and team's budgets and
                              token limits before it is sent                                      (async)
    Hold.release(cost, n)     the real cost settled and unused tokens given back — on every path:
                              answer, upstream error, timeout, cancelled or disconnected client

Routing, fallbacks and strategies ask ``permit`` too, so they only choose what the choke point
would pass; its refusals are the backstop, not the common path. A policy also carries the
request's id (made once), its deadline and the strategy fan-out cap.

What a scope means: a key's ``models`` list names models and strategies. The request's own
``model`` must be one of them (or ``auto``). Calls may then go to the models listed, and to every
model a listed strategy names (recursively); a strategy that picks its models at run time (a
pipeline's workers, ``fast-vote``) opens the scope to any model, and says so in ``scope_note``.
Fallbacks, context-window and content-filter fallbacks and the emergency table stay inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from podium.catalogue import ModelInfo
from podium.errors import BadRequestError, BudgetExceededError, LimitExceededError, RegionError, ScopeError
from podium.types import ChatRequest

DEFAULT_MAX_CALLS = 32
T = TypeVar("T")


@dataclass(frozen=True)
class BudgetSlot:
    """One budget counter: ``key`` names who and which period; it may spend up to ``limit`` dollars."""

    key: str
    limit: float
    ttl: int = 0  # seconds the counter outlives its period in a shared store (0: forever, for 'total')
    label: str = ""  # who, for messages: "key 'ci'" or "team 'research' (of key 'ci')"
    period: str = "total"
    key_id: str | None = None  # whose spending it counts, in the ledger: a key's …
    team: str | None = None  # … or a team's
    since: float = 0.0  # when its period began (epoch seconds)


@dataclass(frozen=True)
class TokenLimit:
    """One tokens-per-minute bucket the caller draws from (its key's, its team's)."""

    key: str
    per_minute: int
    label: str = ""


class Counters(Protocol):
    """The shared counters holds are kept in: memory for one instance, Redis for several.

    ``remote``: an operation may be on its way when its caller is cancelled (and land all the same),
    so what it took must be given back then; in memory an operation never suspends."""

    remote: bool

    async def take(self, buckets: list[tuple[str, int, float]]) -> tuple[bool, float]: ...

    async def give_back(self, key: str, per_minute: int, amount: float) -> None: ...

    async def reserve(self, slots: list[BudgetSlot], amount: float) -> tuple[int, float]: ...

    async def settle(self, key: str, delta: float) -> None: ...


def worst_output_tokens(request: ChatRequest, model: ModelInfo, prompt_tokens: int) -> int:
    """The most output a call can bill: ``max_tokens`` (or the model's cap, or what is left of its
    window) for each of the ``n`` choices."""
    per_choice = request.max_tokens or model.max_output_tokens or max(1, model.context_window - prompt_tokens)
    return per_choice * request.n


@dataclass
class Hold:
    """What one call holds until it is settled. ``release`` is idempotent."""

    counters: Counters
    amount: float  # dollars, in every slot
    slots: tuple[BudgetSlot, ...]
    tokens: tuple[tuple[TokenLimit, int], ...]  # tokens taken from each limit
    released: bool = False

    async def release(self, cost: float, tokens_used: int) -> None:
        if self.released:
            return
        self.released = True
        for slot in self.slots:
            await self.counters.settle(slot.key, cost - self.amount)
        for limit, taken in self.tokens:
            if tokens_used < taken:
                await self.counters.give_back(limit.key, limit.per_minute, float(taken - tokens_used))


_RELEASES: set[asyncio.Task[Any]] = set()  # work that outlived a cancelled caller; kept from the GC


def in_background(work: Coroutine[Any, Any, Any]) -> None:
    task = asyncio.ensure_future(work)
    _RELEASES.add(task)
    task.add_done_callback(_RELEASES.discard)


async def release(hold: Hold | None, cost: float, tokens_used: int) -> None:
    """Release ``hold`` even when the caller is being cancelled: the release runs in a task of its own
    that a second cancellation cannot stop half-way."""
    if hold is None or hold.released:
        return
    if not hold.counters.remote:  # in memory a release never suspends: nothing can interrupt it half-way
        await hold.release(cost, tokens_used)
        return
    task = asyncio.ensure_future(hold.release(cost, tokens_used))
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        _RELEASES.add(task)
        task.add_done_callback(_RELEASES.discard)
        raise


async def _landed(work: Coroutine[Any, Any, T], undo: Callable[[T], Coroutine[Any, Any, Any] | None],
                  remote: bool) -> T:
    """Await a take or a reservation in a shared store. If the caller is cancelled while it is on its way,
    it may still land (Redis runs the script anyway): then ``undo`` gives back what it took. In memory
    nothing is on its way: awaited directly, without a task."""
    if not remote:
        return await work
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        def landed(done: asyncio.Task[T]) -> None:
            if not done.cancelled() and done.exception() is None:
                compensation = undo(done.result())
                if compensation is not None:
                    in_background(compensation)

        task.add_done_callback(landed)
        raise


@dataclass
class RequestPolicy:
    request_id: str
    key_id: str | None = None
    key_name: str | None = None
    team: str | None = None
    scope: frozenset[str] | None = None  # catalogue names calls may reach; None: any
    scope_note: str = ""
    regions: frozenset[str] | None = None  # where the request's data may go; None: anywhere
    region_reason: str = ""  # why: "confidential data", "privacy-first preset", …
    budgets: tuple[BudgetSlot, ...] = ()
    token_limits: tuple[TokenLimit, ...] = ()
    counters: Counters | None = None
    deadline: float | None = None  # time.monotonic() by which the whole request must be done
    max_calls: int = DEFAULT_MAX_CALLS
    cannot_run: Callable[[ModelInfo], str | None] = field(default=lambda _: None, repr=False)
    calls: int = 0  # logical calls made so far (a strategy's members; not retries)

    # --- may it go there? ---------------------------------------------------------------------------
    def permit(self, model: ModelInfo) -> str | None:
        """Why ``model`` (a catalogue row, or a deployment's row with that deployment's provider and
        region) may not serve this request, or None if it may."""
        if self.scope is not None and model.name not in self.scope:
            return f"'{model.name}' is outside the scope of key '{self.key_name or self.key_id}'"
        if self.regions is not None and model.region not in self.regions:
            return (f"{model.name} on {model.provider} runs in region '{model.region}'; {self.region_reason} "
                    f"may only go to {', '.join(sorted(self.regions))}")
        return self.cannot_run(model)

    def check(self, model: ModelInfo) -> None:
        """``permit`` as an exception, for the choke point."""
        if self.scope is not None and model.name not in self.scope:
            raise ScopeError(f"key '{self.key_name or self.key_id}' may not use '{model.name}'",
                             model=model.name, provider=model.provider)
        if self.regions is not None and model.region not in self.regions:
            raise RegionError(f"{model.name} on {model.provider} runs in region '{model.region}'; "
                              f"{self.region_reason} may only go to {', '.join(sorted(self.regions))}",
                              model=model.name, provider=model.provider)
        reason = self.cannot_run(model)
        if reason is not None:
            raise ScopeError(reason, model=model.name, provider=model.provider, code="model_unavailable")

    def count_call(self, what: str) -> None:
        """One more logical call; past ``max_calls`` the request is refused (a runaway fan-out)."""
        self.calls += 1
        if self.calls > self.max_calls:
            raise BadRequestError(f"{what} would be call {self.calls} of this request; the cap is {self.max_calls} "
                                  "calls per request (routing.max_calls_per_request)", code="too_many_calls")

    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - time.monotonic()

    # --- what may it cost? --------------------------------------------------------------------------
    async def hold(self, model: ModelInfo, prompt_tokens: int, output_tokens: int) -> Hold | None:
        """Hold this call's worst case (``prompt_tokens`` in, at most ``output_tokens`` out; see
        ``worst_output_tokens``) in every budget and token limit that applies, or refuse it.

        Budgets hold the worst-case cost (money must not be overspent). A token limit holds the worst
        case too, but never more than the limit's whole minute: a call that could use more than a
        minute's tokens is admitted when the bucket is full, not refused forever."""
        if self.counters is None or not (self.budgets or self.token_limits):
            return None
        tokens = prompt_tokens + output_tokens
        amount = model.estimated_cost(prompt_tokens, output_tokens)
        if not math.isfinite(amount):
            raise BadRequestError("the call's worst-case cost is not a finite number", code="invalid_request")
        counters = self.counters
        taken = tuple((limit, min(tokens, limit.per_minute)) for limit in self.token_limits)
        if taken:
            ok, wait = await _landed(counters.take([(t.key, t.per_minute, float(n)) for t, n in taken]),
                                     lambda result: self._give_back(counters, taken) if result[0] else None,
                                     counters.remote)
            if not ok:
                limits = "; ".join(f"{t.label}: {t.per_minute:,} tokens per minute" for t in self.token_limits)
                raise LimitExceededError(f"token limit reached ({limits}); {model.name} could use up to "
                                         f"{tokens:,} tokens; retry in {wait:.1f}s", retry_after=wait,
                                         model=model.name)
        if self.budgets:
            slots = self.budgets
            try:
                failed, spent = await _landed(counters.reserve(list(slots), amount),
                                              lambda result: self._unreserve(counters, slots, amount)
                                              if result[0] < 0 else None, counters.remote)
            except BaseException:
                in_background(self._give_back(counters, taken))
                raise
            if failed >= 0:
                await self._give_back(counters, taken)
                slot = slots[failed]
                raise BudgetExceededError(
                    f"{slot.label} has spent ${spent:.6f} of its ${slot.limit:.6f} {slot.period} budget; "
                    f"this call to {model.name} could cost up to ${amount:.6f}", code="budget_exceeded",
                    model=model.name)
        return Hold(counters, amount, self.budgets, taken)

    @staticmethod
    async def _unreserve(counters: Counters, slots: tuple[BudgetSlot, ...], amount: float) -> None:
        for slot in slots:
            await counters.settle(slot.key, -amount)

    @staticmethod
    async def _give_back(counters: Counters, taken: tuple[tuple[TokenLimit, int], ...]) -> None:
        with contextlib.suppress(Exception):  # best effort: the refusal is what the caller must hear
            for limit, n in taken:
                await counters.give_back(limit.key, limit.per_minute, float(n))

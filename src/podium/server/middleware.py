"""Gateway middleware: each class takes the next handler in ``__init__`` and wraps its call
(Starlette's shape), and the stack is built in one loop from the configured order.

    auth       → who is calling (virtual key, hashed at rest) and may they use this model
    guardrails → personal data, secrets, prompt injection: allow, redact, block or route to local/EU
    limits   → RPM and TPM token buckets per key (memory or Redis, atomic across instances)
    budget   → reserve the estimated cost before spending, settle the real cost after
    metrics  → Prometheus counters and histograms by model and provider

Work that must happen when the answer is complete (a stream's last chunk) is registered on the
call with ``call.after``; the app runs those hooks with the final response.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.catalogue import count_message_tokens
from podium.client import ChatStream, Podium
from podium.errors import (
    AuthenticationError,
    BudgetExceededError,
    ConfigError,
    PermissionDeniedError,
    PodiumError,
    RateLimitedError,
)
from podium.guardrails.policy import GuardrailPolicy
from podium.guardrails.policy import apply as apply_guardrails
from podium.ledger import RequestEnd, RequestStart
from podium.routing import Routed
from podium.server.cache import ResponseCache, cache_key
from podium.server.keys import KeyStore, VirtualKey
from podium.server.metrics import Metrics
from podium.server.state import SharedState
from podium.types import ChatRequest, ChatResponse, Trace, new_request_id

Outcome = ChatResponse | ChatStream
After = Callable[[ChatResponse | None, BaseException | None], Awaitable[None]]


@dataclass
class GatewayCall:
    request: ChatRequest
    include_usage: bool
    secret: str | None
    key: VirtualKey | None = None
    routed: Routed | None = None  # decided early by a middleware that needed it; the core reuses it
    bypass_cache: bool = False
    after: list[After] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Handler(Protocol):
    async def __call__(self, call: GatewayCall) -> Outcome: ...


class Core:
    """The innermost handler: Podium itself."""

    def __init__(self, podium: Podium) -> None:
        self.podium = podium

    async def __call__(self, call: GatewayCall) -> Outcome:
        if call.request.stream:
            return self.podium.stream(call.request, routed=call.routed)
        return await self.podium.chat(call.request, routed=call.routed)


class Auth:
    def __init__(self, next_handler: Handler, keys: KeyStore, required: bool) -> None:
        self.next, self.keys, self.required = next_handler, keys, required

    async def __call__(self, call: GatewayCall) -> Outcome:
        if call.secret is None:
            if self.required:
                raise AuthenticationError("You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                                          "(create one with `podium keys create`).", code="missing_api_key")
            return await self.next(call)
        key = self.keys.lookup(call.secret)
        if key is None and not self.required:
            return await self.next(call)  # auth optional (local use): an unknown key is anonymous
        if key is None:
            raise AuthenticationError(f"Incorrect API key provided: {call.secret[:7]}…", code="invalid_api_key")
        if not key.allows(call.request.model):
            raise PermissionDeniedError(f"key '{key.name}' may not use '{call.request.model or 'auto'}' (allowed: "
                                        f"{', '.join(key.models or ())})", code="model_not_allowed")
        call.key = key
        return await self.next(call)


class Guardrails:
    def __init__(self, next_handler: Handler, policy: GuardrailPolicy) -> None:
        self.next, self.policy = next_handler, policy

    async def __call__(self, call: GatewayCall) -> Outcome:
        call.request, notes = apply_guardrails(call.request, self.policy)
        call.notes += notes
        return await self.next(call)


class Cache:
    """Serve repeated requests from the cache; a hit is a ledger row with zero cost and no calls."""

    def __init__(self, next_handler: Handler, cache: ResponseCache, podium: Podium, metrics: Metrics) -> None:
        self.next, self.cache, self.podium, self.metrics = next_handler, cache, podium, metrics

    async def __call__(self, call: GatewayCall) -> Outcome:
        if call.request.stream or call.bypass_cache:
            return await self.next(call)
        key = cache_key(call.request)
        hit = await self.cache.get(key)
        if hit is not None:
            self.metrics.cache_hits.labels(hit.model).inc()
            request_id = new_request_id()
            trace = Trace(request_id=request_id, strategy="cache", notes=[f"cache hit (answer of {hit.id})"])
            if self.podium.ledger is not None:
                now = time.time()
                await self.podium.ledger.start_request(RequestStart(request_id, now, call.request.model,
                                                                    call.request.metadata.task_type, "cache"))
                await self.podium.ledger.finish_request(RequestEnd(request_id, time.time(), "ok", hit.model,
                                                                   hit.provider, 0, 0, 0.0, 0.0, 0,
                                                                   rationale="cache hit"))
            return hit.model_copy(update={"id": request_id, "cost": 0.0, "latency_ms": 0.0, "trace": trace,
                                          "created": time.time()})
        outcome = await self.next(call)

        async def store(response: ChatResponse | None, error: BaseException | None) -> None:
            if response is not None and error is None and response.finish_reason in {"stop", "length",
                                                                                      "tool_calls"}:
                await self.cache.put(key, response)

        call.after.append(store)
        return outcome


class Limits:
    def __init__(self, next_handler: Handler, state: SharedState, rpm: int | None, tpm: int | None) -> None:
        self.next, self.state, self.rpm, self.tpm = next_handler, state, rpm, tpm

    async def __call__(self, call: GatewayCall) -> Outcome:
        key = call.key
        rpm = key.rpm if key and key.rpm else self.rpm
        tpm = key.tpm if key and key.tpm else self.tpm
        if not rpm and not tpm:
            return await self.next(call)
        who = key.id if key else "anonymous"
        estimate = count_message_tokens(call.request.messages) + (call.request.max_tokens or 256)
        buckets = ([(f"{who}:rpm", rpm, 1.0)] if rpm else []) + ([(f"{who}:tpm", tpm, float(estimate))] if tpm else [])
        ok, wait = await self.state.take(buckets)
        if not ok:
            raise RateLimitedError(f"rate limit reached for key '{key.name if key else who}' ({rpm or '∞'} requests "
                                   f"and {tpm or '∞'} tokens per minute); retry in {wait:.1f}s", retry_after=wait)
        if tpm:
            async def refund(response: ChatResponse | None, error: BaseException | None) -> None:
                used = response.usage.total_tokens if response is not None else 0
                if used < estimate:
                    await self.state.give_back(f"{who}:tpm", tpm, float(estimate - used))
            call.after.append(refund)
        return await self.next(call)


def budget_period(period: str, now: float | None = None) -> str:
    stamp = time.gmtime(now if now is not None else time.time())
    return {"day": time.strftime("%Y-%m-%d", stamp), "month": time.strftime("%Y-%m", stamp)}.get(period, "total")


class Budget:
    def __init__(self, next_handler: Handler, state: SharedState, podium: Podium) -> None:
        self.next, self.state, self.podium = next_handler, state, podium

    async def __call__(self, call: GatewayCall) -> Outcome:
        key = call.key
        if key is None or key.budget is None:
            return await self.next(call)
        slot = f"{key.id}:{budget_period(key.budget_period)}"
        try:
            call.routed = self.podium.router.route(call.request)
            reserved = call.routed.decision.estimated_cost
        except PodiumError:
            reserved = 0.0  # the core will report the routing error itself
        ok, spent = await self.state.reserve(slot, reserved, key.budget)
        if not ok:
            raise BudgetExceededError(f"key '{key.name}' has spent ${spent:.6f} of its ${key.budget:.6f} "
                                      f"{key.budget_period} budget; this request could cost up to ${reserved:.6f}",
                                      code="budget_exceeded")

        async def settle(response: ChatResponse | None, error: BaseException | None) -> None:
            await self.state.settle(slot, (response.cost if response is not None else 0.0) - reserved)

        call.after.append(settle)
        return await self.next(call)


class Observe:
    def __init__(self, next_handler: Handler, metrics: Metrics) -> None:
        self.next, self.metrics = next_handler, metrics

    async def __call__(self, call: GatewayCall) -> Outcome:
        started = time.perf_counter()
        try:
            outcome = await self.next(call)
        except PodiumError as exc:
            self.metrics.failed(call.request.model, exc, time.perf_counter() - started)
            raise

        async def record(response: ChatResponse | None, error: BaseException | None) -> None:
            self.metrics.finished(response, error, time.perf_counter() - started, call.request.stream)

        call.after.append(record)
        return outcome


MIDDLEWARE = ("auth", "guardrails", "cache", "limits", "budget", "metrics")


def build_stack(order: Sequence[str], podium: Podium, *, keys: KeyStore, state: SharedState, metrics: Metrics,
                auth_required: bool, rpm: int | None, tpm: int | None,
                guardrails: GuardrailPolicy | None = None, cache: ResponseCache | None = None) -> Handler:
    factories: dict[str, Callable[[Handler], Any]] = {
        "auth": lambda nxt: Auth(nxt, keys, auth_required),
        "guardrails": lambda nxt: Guardrails(nxt, guardrails or GuardrailPolicy()),
        "cache": lambda nxt: Cache(nxt, cache, podium, metrics) if cache is not None else nxt,
        "limits": lambda nxt: Limits(nxt, state, rpm, tpm),
        "budget": lambda nxt: Budget(nxt, state, podium),
        "metrics": lambda nxt: Observe(nxt, metrics),
    }
    handler: Handler = Core(podium)
    for name in reversed(order):
        if name not in factories:
            raise ConfigError(f"unknown middleware '{name}' (one of: {', '.join(MIDDLEWARE)})",
                              key_path="gateway.middleware")
        handler = factories[name](handler)
    return handler

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
from podium.routing import Routed
from podium.server.keys import KeyStore, VirtualKey
from podium.server.metrics import Metrics
from podium.server.state import SharedState
from podium.types import ChatRequest, ChatResponse

Outcome = ChatResponse | ChatStream
After = Callable[[ChatResponse | None, BaseException | None], Awaitable[None]]


@dataclass
class GatewayCall:
    request: ChatRequest
    include_usage: bool
    secret: str | None
    key: VirtualKey | None = None
    routed: Routed | None = None  # decided early by a middleware that needed it; the core reuses it
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


MIDDLEWARE = ("auth", "guardrails", "limits", "budget", "metrics")


def build_stack(order: Sequence[str], podium: Podium, *, keys: KeyStore, state: SharedState, metrics: Metrics,
                auth_required: bool, rpm: int | None, tpm: int | None,
                guardrails: GuardrailPolicy | None = None) -> Handler:
    factories: dict[str, Callable[[Handler], Any]] = {
        "auth": lambda nxt: Auth(nxt, keys, auth_required),
        "guardrails": lambda nxt: Guardrails(nxt, guardrails or GuardrailPolicy()),
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

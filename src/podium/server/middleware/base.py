"""What every middleware shares: the call travelling through the stack and the handler shape.

A middleware takes the next handler in ``__init__`` and wraps its call (Starlette's shape). Work
that must wait for the whole answer (a stream's last chunk) is registered on the call with
``call.after``; the gateway runs those hooks on every outcome — an answer, an error raised by any
middleware or by Podium, a client that went away — with the final response or the error.

Middleware decide what the request may do and write it on the call (``key``, ``budgets``,
``token_limits``); the innermost handler turns that into the request's policy, which every model
call then obeys (``podium.policy``): nothing a middleware decides can be routed around by a
strategy or a fallback.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.client import ChatStream, Podium
from podium.policy import BudgetSlot, Counters, RequestPolicy, TokenLimit
from podium.server.keys import VirtualKey
from podium.types import ChatRequest, ChatResponse

Outcome = ChatResponse | ChatStream
After = Callable[[ChatResponse | None, BaseException | None], Awaitable[None]]


@dataclass
class GatewayCall:
    request_id: str  # made once, when the request arrived; every id the client and the ledger see
    request: ChatRequest
    include_usage: bool
    secret: str | None
    key: VirtualKey | None = None
    budgets: list[BudgetSlot] = field(default_factory=list)
    token_limits: list[TokenLimit] = field(default_factory=list)
    policy: RequestPolicy | None = None  # built by the core from all of the above
    bypass_cache: bool = False
    after: list[After] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trace_context: Any = None  # the caller's OpenTelemetry context (W3C traceparent), when tracing is on


class Handler(Protocol):
    async def __call__(self, call: GatewayCall) -> Outcome: ...


class Core:
    """The innermost handler: the request's policy, then Podium itself."""

    def __init__(self, podium: Podium, counters: Counters) -> None:
        self.podium, self.counters = podium, counters

    async def __call__(self, call: GatewayCall) -> Outcome:
        key = call.key
        call.policy = policy = self.podium.policies.build(
            call.request, request_id=call.request_id, key_id=key.id if key else None,
            key_name=key.name if key else None, team=key.team if key else None,
            models=key.models if key else None, budgets=call.budgets, token_limits=call.token_limits,
            counters=self.counters)
        if call.request.stream:
            return self.podium.stream(call.request, policy=policy, trace_context=call.trace_context)
        return await self.podium.chat(call.request, policy=policy, trace_context=call.trace_context)

"""What every middleware shares: the call travelling through the stack and the handler shape.

A middleware takes the next handler in ``__init__`` and wraps its call (Starlette's shape). Work
that must wait for the whole answer (a stream's last chunk) is registered on the call with
``call.after``; the app runs those hooks, innermost last, with the final response or error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.client import ChatStream, Podium
from podium.routing import Routed
from podium.server.keys import VirtualKey
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
    bypass_cache: bool = False
    after: list[After] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trace_context: Any = None  # the caller's OpenTelemetry context (W3C traceparent), when tracing is on


class Handler(Protocol):
    async def __call__(self, call: GatewayCall) -> Outcome: ...


class Core:
    """The innermost handler: Podium itself."""

    def __init__(self, podium: Podium) -> None:
        self.podium = podium

    async def __call__(self, call: GatewayCall) -> Outcome:
        if call.request.stream:
            return self.podium.stream(call.request, routed=call.routed, trace_context=call.trace_context)
        return await self.podium.chat(call.request, routed=call.routed, trace_context=call.trace_context)

"""One model call, checked and accounted: the choke point every call to a deployment passes.

Everything that calls a model goes through ``Invoker``, so a provider never prices or logs and
a strategy, fallback or retry never forgets to. Just before a request goes to a deployment the
request's policy (``podium.policy``) is asked: the key's scope and the data's regions must allow
this deployment, and the call's worst case is held in the key's and team's budgets and token
limits; the hold is released with the real cost on every path (answer, error, timeout,
cancellation). The ledger's buffered rows are committed first, so a request that reaches a provider
is in the ledger even if the process is killed the next moment.

Cost is computed from the usage the provider reported and the catalogue's prices; latency is wall
time around the provider call (for streams, until the last chunk), and a stream's time to first token
is wall time until its first chunk (one clock read; a call that is not streamed has none: its first
token is its whole answer, which latency already says). A call that failed before the
provider answered bills nothing; a stream cut after some output is billed by estimate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from podium import parallel_choices, request_fields
from podium.catalogue import ModelInfo, count_message_tokens, count_tokens, worst_input_tokens
from podium.errors import PodiumError
from podium.ledger import CallRow, LedgerStore
from podium.policy import Hold, RequestPolicy, release, worst_output_tokens
from podium.providers import ProviderRegistry
from podium.telemetry import Telemetry
from podium.types import CallTrace, ChatRequest, ChatResponse, StreamChunk, Usage

if TYPE_CHECKING:
    from podium.strategies.labels import Label


@dataclass
class RequestContext:
    """What one user request may do (its policy) and has spent so far, shared by every call made for it."""

    policy: RequestPolicy
    calls: list[CallTrace] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # routing and resilience decisions, in order
    labels: list[Label] = field(default_factory=list)  # a strategy's automatic labels (strategies.labels)
    retries: int = 0
    fallbacks: int = 0
    deployment: str | None = None  # the deployment that answered
    span: Any = None  # OpenTelemetry: the span calls nest under (the request's, or a running strategy's)

    @property
    def request_id(self) -> str:
        return self.policy.request_id

    @property
    def cost(self) -> float:
        return sum(c.cost for c in self.calls)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for call in self.calls:
            total = total + call.usage
        return total


class Invoker:
    def __init__(self, registry: ProviderRegistry, ledger: LedgerStore | None,
                 telemetry: Telemetry | None = None) -> None:
        self.registry = registry
        self.ledger = ledger
        self.telemetry = telemetry or Telemetry.off()

    def _span(self, ctx: RequestContext, model: ModelInfo, step: str | None, stream: bool) -> Any:
        if not self.telemetry.enabled:  # every call passes here: build no attributes for nothing
            return None
        return self.telemetry.start(f"chat {model.name}", {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": model.provider,
            "gen_ai.request.model": model.model_id, "podium.model": model.name, "podium.step": step,
            "podium.stream": stream, "podium.request_id": ctx.request_id}, parent=ctx.span)

    async def _account(self, ctx: RequestContext, model: ModelInfo, started: float, wall_start: float,
                       usage: Usage, error: BaseException | None, step: str | None,
                       estimated: bool = False, span: Any = None, first: float | None = None) -> CallTrace:
        latency_ms = (time.perf_counter() - started) * 1000
        cancelled = isinstance(error, GeneratorExit | asyncio.CancelledError)
        if error is None or cancelled:
            message = None
        else:
            message = error.message if isinstance(error, PodiumError) else f"{type(error).__name__}: {error}"
        status: Literal["ok", "error", "cancelled"] = "ok" if error is None else "cancelled" if cancelled else "error"
        call = CallTrace(model=model.name, provider=model.provider, status=status,
                         error=message, usage=usage, cost=model.cost_of(usage), latency_ms=latency_ms, step=step,
                         usage_estimated=estimated)
        ctx.calls.append(call)
        if span is not None:
            self.telemetry.end(span, error if status == "error" else None, {
                "gen_ai.usage.input_tokens": usage.input_tokens, "gen_ai.usage.output_tokens": usage.output_tokens,
                "podium.cost_usd": call.cost, "podium.status": status})
        if self.ledger is not None:
            await self.ledger.record_call(CallRow(
                request_id=ctx.request_id, started_at=wall_start, provider=model.provider, model=model.name,
                status=call.status, latency_ms=latency_ms, input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens, cached_input_tokens=usage.cached_input_tokens,
                reasoning_tokens=usage.reasoning_tokens, cost=call.cost, error=message, step=step,
                ttft_ms=None if first is None else (first - started) * 1000))
        return call

    async def _admit(self, request: ChatRequest, model: ModelInfo, ctx: RequestContext,
                     wire: str | None) -> Hold | None:
        """The policy's word on this deployment, the wire's on the request's fields (``request_fields``: a
        refused field is a 400, a dropped one a note), then the hold on the call's worst case: the most input
        any tokenizer could bill (``worst_input_tokens``) and ``max_tokens`` (or the model's most) out."""
        policy = ctx.policy
        policy.check(model)
        if wire is not None and wire != "openai":
            for note in request_fields.check(request, wire):
                if note not in ctx.notes:
                    ctx.notes.append(note)
        if policy.counters is None or not (policy.budgets or policy.token_limits):
            return None
        tokens = worst_input_tokens(request)
        return await policy.hold(model, tokens, worst_output_tokens(request, model, tokens))

    async def _settle(self, ctx: RequestContext, model: ModelInfo, started: float, wall_start: float, usage: Usage,
                      error: BaseException | None, step: str | None, span: Any, hold: Hold | None,
                      estimated: bool = False, first: float | None = None) -> CallTrace:
        try:
            return await self._account(ctx, model, started, wall_start, usage, error, step, estimated, span, first)
        finally:
            await release(hold, model.cost_of(usage), usage.total_tokens)

    async def complete(self, request: ChatRequest, model: ModelInfo, ctx: RequestContext,
                       step: str | None = None) -> ChatResponse:
        """One call to the deployment ``model`` describes (its provider, model id and region)."""
        provider = self.registry.get_provider(model.provider)
        wire: str | None = getattr(provider, "wire_name", None)
        hold = await self._admit(request, model, ctx, wire)
        if wire is not None and wire != "openai":
            request = request_fields.refusals_as_text(request)
        span = self._span(ctx, model, step, False)
        wall_start, started = time.time(), time.perf_counter()
        try:
            if self.ledger is not None:
                await self.ledger.flush(ctx.request_id)  # its rows are committed before it reaches a provider
            if request.n > 1 and not request_fields.native_n(wire):
                response = await parallel_choices.complete(provider, request, model)
            else:
                response = await provider.complete(request, model)
        except BaseException as exc:
            await self._settle(ctx, model, started, wall_start, Usage(), exc, step, span, hold)
            raise
        call = await self._settle(ctx, model, started, wall_start, response.usage, None, step, span, hold)
        return response.model_copy(update={"cost": call.cost, "latency_ms": call.latency_ms,
                                           "id": ctx.request_id})

    async def stream(self, request: ChatRequest, model: ModelInfo, ctx: RequestContext,
                     step: str | None = None) -> AsyncIterator[StreamChunk]:
        provider = self.registry.get_provider(model.provider)
        wire: str | None = getattr(provider, "wire_name", None)
        hold = await self._admit(request, model, ctx, wire)
        if wire is not None and wire != "openai":
            request = request_fields.refusals_as_text(request)
        span = self._span(ctx, model, step, True)
        wall_start, started = time.time(), time.perf_counter()
        usage: Usage | None = None
        output: list[str] = []
        chunks = 0
        first: float | None = None  # when the first chunk arrived (perf_counter): the time to first token
        error: BaseException | None = None
        iterator: AsyncIterator[StreamChunk] | None = None
        try:
            if self.ledger is not None:
                await self.ledger.flush(ctx.request_id)
            if request.n > 1 and not request_fields.native_n(wire):
                iterator = parallel_choices.stream(provider, request, model)
            else:
                iterator = provider.stream(request, model)
            async for chunk in iterator:
                if first is None:
                    first = time.perf_counter()
                chunks += 1
                output.append(chunk.text)
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                if iterator is not None:
                    await iterator.aclose()  # type: ignore[attr-defined]
            finally:
                estimated = usage is None and chunks > 0
                if usage is None:  # some servers (llama.cpp's, older vLLM) ignore stream_options.include_usage
                    usage = Usage(input_tokens=count_message_tokens(request.messages, model),
                                  output_tokens=count_tokens("".join(output), model)) if chunks else Usage()
                await self._settle(ctx, model, started, wall_start, usage, error, step, span, hold, estimated,
                                   first)

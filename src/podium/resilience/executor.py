"""ResilientCaller: one logical model call made to survive slow, limited and broken providers.

For a model it tries the model's deployments in the balancing policy's order (skipping open
circuits and deployments over their RPM/TPM), retries transient failures with backoff, bounds
each attempt and the whole request by timeouts, and, when the model cannot answer, walks the
fallback chain. Every step is written to the request's trace notes, and every attempt is an
accounted call (trace + ledger) through the ``Invoker``.

Streams fail over only until their first chunk has been handed to the caller. After that a
failure ends the stream with the error: two models' words are never spliced together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from podium import errors
from podium.catalogue import ModelInfo, count_message_tokens
from podium.invoke import Invoker, RequestContext
from podium.resilience.balancing import BalancingPolicy
from podium.resilience.deployments import Deployment
from podium.resilience.fallbacks import Fallbacks, error_kind
from podium.resilience.retry import RetryPolicy
from podium.resilience.shared import SharedDeployments
from podium.types import ChatRequest, ChatResponse, StreamChunk

T = TypeVar("T")

# Failures that say the deployment is unwell (they open its circuit); the rest are the request's fault.
_DEPLOYMENT_FAULTS = (errors.TimeoutError, errors.ProviderError, errors.RateLimitedError, errors.AuthenticationError,
                      errors.PermissionDeniedError)
# Failures another deployment of the same model may not have (a different key, host or region).
_SWITCHABLE = (errors.AuthenticationError, errors.PermissionDeniedError, errors.NotFoundError)


@dataclass
class ResilienceOptions:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    attempt_timeout: float | None = None
    deadline: float | None = None


def _transient(error: BaseException) -> bool:
    """Worth another attempt: rate limits, timeouts, unavailability, and other 5xx-like failures."""
    return isinstance(error, errors.PodiumError) and (error.retryable or type(error) is errors.ProviderError)


class ResilientCaller:
    def __init__(self, invoker: Invoker, deployments: Callable[[ModelInfo], Sequence[Deployment]],
                 policy: BalancingPolicy, fallbacks: Fallbacks, options: ResilienceOptions | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.invoker = invoker
        self.deployments = deployments
        self.policy = policy
        self.fallbacks = fallbacks
        self.options = options or ResilienceOptions()
        self.sleep = sleep
        self.clock = clock
        self.shared: SharedDeployments | None = None  # limits and circuits shared with other instances

    # --- public -----------------------------------------------------------------------------------
    async def complete(self, request: ChatRequest, model: ModelInfo, ctx: RequestContext, step: str | None = None,
                       eligible: Callable[[ModelInfo], bool] | None = None,
                       last_resort: Sequence[ModelInfo] = ()) -> ChatResponse:
        async def call(dep: Deployment) -> ChatResponse:
            return await self.invoker.complete(request, dep.model, ctx, step)

        return await self._with_fallbacks(request, model, ctx, call, eligible, last_resort)

    async def stream(self, request: ChatRequest, model: ModelInfo, ctx: RequestContext, step: str | None = None,
                     eligible: Callable[[ModelInfo], bool] | None = None,
                     last_resort: Sequence[ModelInfo] = ()) -> AsyncIterator[StreamChunk]:
        async def open_stream(dep: Deployment) -> tuple[StreamChunk | None, AsyncIterator[StreamChunk]]:
            iterator = self.invoker.stream(request, dep.model, ctx, step)
            try:
                first = await anext(iterator)
            except StopAsyncIteration:
                return None, iterator
            except BaseException:
                await iterator.aclose()  # type: ignore[attr-defined]
                raise
            return first, iterator

        first, iterator = await self._with_fallbacks(request, model, ctx, open_stream, eligible, last_resort)
        try:
            if first is not None:
                yield first  # from here on the caller holds this model's words: no more failover
            async for chunk in iterator:
                yield chunk
        finally:
            await iterator.aclose()  # type: ignore[attr-defined]

    # --- the loops --------------------------------------------------------------------------------
    async def _with_fallbacks(self, request: ChatRequest, model: ModelInfo, ctx: RequestContext,
                              call: Callable[[Deployment], Awaitable[T]],
                              eligible: Callable[[ModelInfo], bool] | None,
                              last_resort: Sequence[ModelInfo] = ()) -> T:
        ends = None if self.options.deadline is None else self.clock() + self.options.deadline
        queue: list[tuple[ModelInfo, str | None]] = [(model, None)]
        tried: list[str] = []
        last: errors.PodiumError | None = None
        while queue:
            current, reason = queue.pop(0)
            if current.name in tried:
                continue
            tried.append(current.name)
            if reason:
                ctx.notes.append(f"fallback → {current.name}: {reason}")
                ctx.fallbacks += 1
            try:
                return await self._try_model(request, current, ctx, call, ends)
            except errors.PodiumError as exc:
                last = exc
                if self._deadline_passed(ends):
                    ctx.notes.append("deadline reached: no further fallbacks")
                    break
                nxt = self.fallbacks.after(current, exc, tried, eligible)
                if not nxt and not queue and (_transient(exc) or isinstance(exc, _SWITCHABLE)):
                    nxt = [(m, "every other route failed → last resort (local model)") for m in last_resort
                           if m.name not in tried]
                if not nxt and not _transient(exc) and not isinstance(exc, _SWITCHABLE):
                    raise
                queue.extend(nxt)
        assert last is not None
        raise last

    def _deadline_passed(self, ends: float | None) -> bool:
        return ends is not None and self.clock() >= ends

    def _pick(self, deployments: Sequence[Deployment], failed: set[str], tokens: int,
              ctx: RequestContext) -> Deployment | None:
        ordered = self.policy.order(deployments)
        ordered = [d for d in ordered if d.id not in failed] + [d for d in ordered if d.id in failed]
        roomy = [d for d in ordered if d.has_capacity(tokens)]
        if len(roomy) < len(ordered):
            full = [d.id for d in ordered if d not in roomy]
            ctx.notes.append(f"over RPM/TPM, tried last: {', '.join(full)}")
        for dep in roomy + [d for d in ordered if d not in roomy]:
            if dep.breaker.allow():
                return dep
            ctx.notes.append(f"circuit open for {dep.id} (retry in {dep.breaker.retry_in():.1f}s): skipped")
        return None

    async def _try_model(self, request: ChatRequest, model: ModelInfo, ctx: RequestContext,
                         call: Callable[[Deployment], Awaitable[T]], ends: float | None) -> T:
        deployments = self.deployments(model)
        tokens = count_message_tokens(request.messages, model) + (request.max_tokens or 0)
        retry = self.options.retry
        failed: set[str] = set()
        last: errors.PodiumError | None = None
        for attempt in range(retry.max_attempts):
            dep = self._pick(deployments, failed, tokens, ctx)
            if dep is not None and self.shared is not None:
                dep = await self._admit(self.shared, dep, deployments, failed, tokens, ctx)
            if dep is None:
                raise errors.ProviderUnavailableError(
                    f"every deployment of '{model.name}' has an open circuit; not calling it",
                    provider=model.provider, model=model.name) if last is None else last
            if attempt > 0:
                ctx.retries += 1
            timeout = self.options.attempt_timeout
            if ends is not None:
                remaining = ends - self.clock()
                timeout = remaining if timeout is None else min(timeout, remaining)
            started = self.clock()
            dep.started(tokens)
            try:
                result = await self._bounded(call(dep), timeout, dep)
            except errors.PodiumError as exc:
                dep.finished(None)
                if isinstance(exc, _DEPLOYMENT_FAULTS):
                    opened = dep.breaker.opened_count
                    dep.breaker.record_failure()
                    if self.shared is not None and dep.breaker.opened_count > opened:
                        self.shared.opened(dep)
                failed.add(dep.id)
                last = exc
                kind = error_kind(exc) or type(exc).__name__
                ctx.notes.append(f"attempt {attempt + 1} on {dep.id} failed: {kind}: {exc.message[:160]}")
                if not _transient(exc) and not (isinstance(exc, _SWITCHABLE) and len(failed) < len(deployments)):
                    raise
                if attempt + 1 >= retry.max_attempts:
                    break
                delay = retry.delay(attempt, exc) if _transient(exc) else 0.0
                if ends is not None and self.clock() + delay >= ends:
                    ctx.notes.append("deadline would pass before the next attempt: giving up on this model")
                    break
                if delay:
                    await self.sleep(delay)
                continue
            except BaseException:
                dep.finished(None)
                raise
            dep.finished((self.clock() - started) * 1000)
            dep.breaker.record_success()
            ctx.deployment = dep.id
            return result
        assert last is not None
        raise last

    async def _admit(self, shared: SharedDeployments, dep: Deployment, deployments: Sequence[Deployment],
                     failed: set[str], tokens: int, ctx: RequestContext) -> Deployment:
        """The picked deployment if it is within its limits across all instances, else another that is
        (with a closed circuit); if none is, the picked one: its provider's 429 then drives the retry."""
        if not (dep.rpm or dep.tpm) or await shared.admit(dep, tokens):
            return dep
        for other in self.policy.order(deployments):
            if other.id != dep.id and other.id not in failed and other.breaker.state == "closed" and \
                    await shared.admit(other, tokens):
                ctx.notes.append(f"{dep.id} over its shared RPM/TPM: {other.id} instead")
                return other
        ctx.notes.append(f"{dep.id} over its shared RPM/TPM and no other deployment has room: calling it anyway")
        return dep

    async def _bounded(self, awaitable: Awaitable[T], limit: float | None, dep: Deployment) -> T:
        if limit is None:
            return await awaitable
        if limit <= 0:
            raise errors.TimeoutError(f"no time left for {dep.id} (deadline)", provider=dep.provider,
                                      model=dep.model.name)
        try:
            async with asyncio.timeout(limit):
                return await awaitable
        except TimeoutError:  # the builtin one, from asyncio.timeout (podium's TimeoutError is not a subclass)
            raise errors.TimeoutError(f"{dep.id} took longer than {limit:.2f}s (attempt timeout)",
                                      provider=dep.provider, model=dep.model.name) from None

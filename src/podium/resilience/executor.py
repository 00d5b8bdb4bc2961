"""ResilientCaller: one logical model call made to survive slow, limited and broken providers.

For a model it tries the model's deployments in the balancing policy's order (skipping open
circuits, deployments over their RPM/TPM and deployments the request's policy forbids, such as one
in a region its data may not go to), retries transient failures, bounds each attempt and the whole
request by its deadline, and, when the model cannot answer, walks the fallback chain — within the
request's policy: a fallback outside the key's scope or the data's regions is skipped with a note.
Every step is written to the request's trace notes, and every attempt is an accounted call (trace,
ledger, budget hold) through the ``Invoker``.

Retries wait (backoff, or the provider's ``Retry-After``, capped) only when the same deployment is
tried again; moving on to another healthy deployment happens at once. A wait longer than what is
left of the deadline moves on to the fallbacks instead.

Each attempt ends with a verdict on its deployment's circuit: a success, a failure that says the
deployment is unwell (5xx, timeouts, rate limits, a rejected upstream key), or no verdict (the
request's own fault, a policy refusal, a cancelled caller) — which still frees a half-open probe.
A stream's verdict comes when it ends, so a deployment that cuts its streams opens its circuit.
Streams fail over only until their first chunk has been handed to the caller. After that a
failure ends the stream with the error: two models' words are never spliced together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from podium import errors, request_fields
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
# An upstream that rejects our key will not accept it a moment later: open its circuit at once.
_KEY_REJECTED = (errors.AuthenticationError, errors.PermissionDeniedError)


@dataclass
class ResilienceOptions:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    attempt_timeout: float | None = None
    deadline: float | None = None


def _upstream_key_error(exc: errors.PodiumError) -> errors.ProviderError:
    """A provider's 401/403 is Podium's credentials failing, not the client's: a 502 that says so (a 401
    would send the client looking at its own key)."""
    return errors.ProviderError(f"{exc.provider or 'the provider'} refused Podium's credentials for "
                                f"{exc.model or 'the model'}: {exc.message[:300]} (check that provider's API key "
                                "in podium.yaml or its environment variable)", provider=exc.provider, model=exc.model,
                                code="upstream_credentials_rejected")


def _transient(error: BaseException) -> bool:
    """Worth another attempt: rate limits, timeouts, unavailability, and other 5xx-like failures."""
    return isinstance(error, errors.PodiumError) and not isinstance(error, errors.PolicyError) and (
        error.retryable or type(error) is errors.ProviderError)


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
                       refuse: Callable[[ModelInfo], str | None] | None = None,
                       last_resort: Sequence[ModelInfo] = ()) -> ChatResponse:
        ctx.policy.count_call(step or model.name)

        async def call(dep: Deployment) -> ChatResponse:
            return await self.invoker.complete(request, dep.model, ctx, step)

        try:
            result, _ = await self._with_fallbacks(request, model, ctx, call, refuse, last_resort, streaming=False)
        except _KEY_REJECTED as exc:
            raise _upstream_key_error(exc) from None
        return result

    async def stream(self, request: ChatRequest, model: ModelInfo, ctx: RequestContext, step: str | None = None,
                     refuse: Callable[[ModelInfo], str | None] | None = None,
                     last_resort: Sequence[ModelInfo] = ()) -> AsyncIterator[StreamChunk]:
        ctx.policy.count_call(step or model.name)

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

        started = self.clock()
        try:
            (first, iterator), dep = await self._with_fallbacks(request, model, ctx, open_stream, refuse,
                                                                last_resort, streaming=True)
        except _KEY_REJECTED as exc:
            raise _upstream_key_error(exc) from None
        error: BaseException | None = None
        try:
            if first is not None:
                yield first  # from here on the caller holds this model's words: no more failover
            async for chunk in iterator:
                yield chunk
        except BaseException as exc:
            error = exc
            raise
        finally:
            try:
                await iterator.aclose()  # type: ignore[attr-defined]
            finally:
                self._verdict(dep, error, started, ctx)

    # --- the loops --------------------------------------------------------------------------------
    async def _with_fallbacks(self, request: ChatRequest, model: ModelInfo, ctx: RequestContext,
                              call: Callable[[Deployment], Awaitable[T]],
                              refuse: Callable[[ModelInfo], str | None] | None,
                              last_resort: Sequence[ModelInfo] = (), *, streaming: bool) -> tuple[T, Deployment]:
        ends = self._ends(ctx)
        policy = ctx.policy
        queue: list[tuple[ModelInfo, str | None]] = [(model, None)]
        tried: list[str] = []
        last: errors.PodiumError | None = None
        while queue:
            current, reason = queue.pop(0)
            if current.name in tried:
                continue
            tried.append(current.name)
            if reason:
                refused = policy.permit(current) or (refuse(current) if refuse is not None else None) \
                    or self._wire_refusal(request, current)
                if refused is not None:  # a fallback never leaves the request's policy or constraints
                    ctx.notes.append(f"fallback {current.name} skipped: {refused}")
                    continue
                ctx.notes.append(f"fallback → {current.name}: {reason}")
                ctx.fallbacks += 1
            else:
                policy.check(current)
            try:
                return await self._try_model(request, current, ctx, call, ends, streaming)
            except errors.PolicyError as exc:
                if reason is None or last is None:
                    raise  # the request itself may not do this
                ctx.notes.append(f"fallback {current.name} refused: {exc.message[:200]}")
                continue  # a fallback the budget cannot hold: the next one may fit
            except errors.PodiumError as exc:
                last = exc
                if self._deadline_passed(ends):
                    ctx.notes.append("deadline reached: no further fallbacks")
                    break
                nxt = self.fallbacks.after(current, exc, tried)
                if not nxt and not queue and (_transient(exc) or isinstance(exc, _SWITCHABLE)):
                    nxt = [(m, "every other route failed → last resort (local model)") for m in last_resort
                           if m.name not in tried]
                if not nxt and not queue and not _transient(exc) and not isinstance(exc, _SWITCHABLE):
                    raise
                queue.extend(nxt)
        assert last is not None
        raise last

    def _ends(self, ctx: RequestContext) -> float | None:
        """The request's deadline on this caller's clock: the policy's, else the configured one."""
        remaining = ctx.policy.remaining()
        if remaining is None and self.options.deadline is not None:
            remaining = self.options.deadline
        return None if remaining is None else self.clock() + remaining

    def _deadline_passed(self, ends: float | None) -> bool:
        return ends is not None and self.clock() >= ends

    def _wire_refusal(self, request: ChatRequest, model: ModelInfo) -> str | None:
        """Why the wire of ``model``'s provider cannot take this request (a field it refuses), or None."""
        provider = self.invoker.registry.find_provider(model.provider)
        wire: str | None = getattr(provider, "wire_name", None)
        if wire is None or wire == "openai":
            return None
        try:
            request_fields.check(request, wire)
        except errors.BadRequestError as exc:
            return exc.message
        return None

    def _permitted(self, deployments: Sequence[Deployment], ctx: RequestContext,
                   request: ChatRequest) -> list[Deployment]:
        """The deployments the request's policy allows (a deployment has its own region) and whose wire can
        take the request's fields; if none can, the first one's refusal is raised."""
        policy = ctx.policy
        # with one deployment the invoker's own field check says the same: asked only where there is a choice
        choice = len(deployments) > 1
        why = {d.id: policy.permit(d.model) or (self._wire_refusal(request, d.model) if choice else None)
               for d in deployments}
        allowed = [d for d in deployments if why[d.id] is None]
        if not allowed:
            policy.check(deployments[0].model)  # raises: say why the first one is refused
            raise errors.BadRequestError(str(why[deployments[0].id]), code="unsupported_parameter")
        if len(allowed) < len(deployments):
            skipped = [f"{d.id} ({why[d.id]})" for d in deployments if d not in allowed]
            ctx.notes.append(f"deployments skipped by policy: {'; '.join(skipped)}")
        return allowed

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

    def _another_ready(self, deployments: Sequence[Deployment], failed: set[str], current: Deployment) -> bool:
        """Whether a deployment other than ``current`` could be tried now (no need to wait)."""
        return any(d is not current and d.id not in failed and d.breaker.state != "open" for d in deployments)

    async def _try_model(self, request: ChatRequest, model: ModelInfo, ctx: RequestContext,
                         call: Callable[[Deployment], Awaitable[T]], ends: float | None,
                         streaming: bool) -> tuple[T, Deployment]:
        every = self.deployments(model)
        deployments = self._permitted(every, ctx, request)
        limited = any(d.tpm for d in deployments)  # tokens matter only to a deployment with a TPM limit
        tokens = count_message_tokens(request.messages, model) + (request.max_tokens or 0) if limited else 0
        retry = self.options.retry
        failed: set[str] = set()
        last: errors.PodiumError | None = None
        for attempt in range(retry.max_attempts):
            dep = self._pick(deployments, failed, tokens, ctx)
            if dep is not None and self.shared is not None:
                dep = await self._admit(self.shared, dep, deployments, failed, tokens, ctx)
            if dep is None:
                which = "every deployment" if len(deployments) == len(every) else \
                    f"every deployment this request may use ({len(deployments)} of {len(every)})"
                raise errors.ProviderUnavailableError(
                    f"{which} of '{model.name}' has an open circuit; not calling it",
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
                self._verdict(dep, exc, started, ctx)
                if isinstance(exc, errors.PolicyError):
                    raise
                failed.add(dep.id)
                last = exc
                kind = error_kind(exc) or type(exc).__name__
                ctx.notes.append(f"attempt {attempt + 1} on {dep.id} failed: {kind}: {exc.message[:160]}")
                if not _transient(exc) and not (isinstance(exc, _SWITCHABLE) and len(failed) < len(deployments)):
                    raise
                if attempt + 1 >= retry.max_attempts:
                    break
                if self._another_ready(deployments, failed, dep):
                    continue  # another deployment can answer now: no backoff
                delay = retry.delay(attempt, exc) if _transient(exc) else 0.0
                if ends is not None and self.clock() + delay >= ends:
                    ctx.notes.append(f"a {delay:.1f}s wait would pass the deadline: giving up on this model")
                    break
                if delay:
                    await self.sleep(delay)
                continue
            except BaseException as exc:
                self._verdict(dep, exc, started, ctx)
                raise
            if not streaming:  # a stream's verdict waits for its end
                self._verdict(dep, None, started, ctx)
            ctx.deployment = dep.id
            return result, dep
        assert last is not None
        raise last

    def _verdict(self, dep: Deployment, error: BaseException | None, started: float, ctx: RequestContext) -> None:
        """What this attempt says about ``dep``: healthy, unwell (its circuit counts it), or nothing (the
        request's fault, a refusal, a cancelled caller), which still frees a half-open probe slot."""
        if error is None:
            dep.finished((self.clock() - started) * 1000)
            dep.breaker.record_success()
            return
        dep.finished(None)
        if not isinstance(error, _DEPLOYMENT_FAULTS):
            dep.breaker.release()
            return
        opened = dep.breaker.opened_count
        if isinstance(error, _KEY_REJECTED):
            dep.breaker.trip()
            ctx.notes.append(f"{dep.id} rejected its upstream key: circuit opened")
        else:
            dep.breaker.record_failure()
        if self.shared is not None and dep.breaker.opened_count > opened:
            self.shared.opened(dep)

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
                dep.breaker.release()  # a half-open probe slot picked for dep is not used
                return other
        ctx.notes.append(f"{dep.id} over its shared RPM/TPM and no other deployment has room: calling it anyway")
        return dep

    async def _bounded(self, awaitable: Awaitable[T], limit: float | None, dep: Deployment) -> T:
        if limit is None:
            return await awaitable
        if limit <= 0:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never started: no "was never awaited" warning
            raise errors.TimeoutError(f"no time left for {dep.id} (deadline)", provider=dep.provider,
                                      model=dep.model.name)
        try:
            async with asyncio.timeout(limit):
                return await awaitable
        except TimeoutError:  # the builtin one, from asyncio.timeout (podium's TimeoutError is not a subclass)
            raise errors.TimeoutError(f"{dep.id} took longer than {limit:.2f}s (attempt timeout)",
                                      provider=dep.provider, model=dep.model.name) from None

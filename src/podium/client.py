"""Podium: the wiring. Config → catalogue → providers → router → invoker (+ ledger).

The CLI, the gateway and user code all go through this class, so a request behaves the same
whichever door it came in by. It holds no request state of its own; one instance serves many
concurrent requests.

    async with Podium.from_config() as podium:
        response = await podium.chat("What is the capital of France?")
        print(response.text, response.cost, response.trace)

Per request: a policy is built (or handed in by the gateway: the key's scope, budgets and limits),
the router picks a model within it (with a rationale), the resilient caller gets an answer out of
that model's deployments or its fallbacks, the invoker checks the policy and accounts every
attempt, and the ledger keeps the request row under the policy's request id. ``SyncPodium`` offers
the same for code that is not async.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from pydantic import ValidationError

from podium.catalogue import ModelInfo
from podium.config import Settings, load_settings
from podium.embeddings import Embeddings
from podium.errors import BadRequestError, PodiumError
from podium.experiments.assignment import Experiments
from podium.experiments.shadow import ShadowTrials
from podium.invoke import Invoker, RequestContext
from podium.ledger import LedgerStore, RequestEnd, RequestStart, SQLiteLedger
from podium.orchestrate import StrategyRunner
from podium.policy import RequestPolicy
from podium.policy_builder import PolicyBuilder
from podium.providers import Provider, ProviderRegistry
from podium.resilience.health import DeploymentHealth, HealthProber
from podium.routing import Routed, estimate_cost
from podium.secrets_env import remember as remember_secrets
from podium.strategies.base import Observer
from podium.telemetry import Telemetry
from podium.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    Message,
    StreamChunk,
    Trace,
    describe_validation_error,
)
from podium.wiring import DeploymentTable, build_caller, build_providers, build_router

if TYPE_CHECKING:
    from podium.learned_runtime import LearnedRuntime

_UNSET: Any = object()


class Podium:
    def __init__(self, settings: Settings, *, providers: Iterable[Provider] | None = None,
                 ledger: LedgerStore | None = _UNSET, clock: Callable[[], float] = time.monotonic,
                 tracer_provider: Any = None) -> None:
        """``tracer_provider``: an OpenTelemetry provider for Podium's spans (default: per ``telemetry``)."""
        self.settings = settings
        t = settings.telemetry
        self.telemetry = Telemetry.from_settings(t.enabled or tracer_provider is not None, t.otlp_endpoint,
                                                 t.service_name, tracer_provider)
        self.registry = ProviderRegistry(settings.catalogue,
                                         build_providers(settings) if providers is None else providers)
        # the keys it calls models with never reach what Podium starts (a check, an agent, a vendor's CLI, git)
        remember_secrets(spec.api_key for spec in settings.providers.values())
        if ledger is _UNSET:
            if settings.ledger_dsn:
                from podium.ledger.postgres import PostgresLedger

                ledger = PostgresLedger(settings.ledger_dsn)
            else:
                ledger = SQLiteLedger(settings.ledger_path) if settings.ledger_path else None
        self.ledger: LedgerStore | None = ledger
        self.invoker = Invoker(self.registry, self.ledger, self.telemetry)
        self.deployments = DeploymentTable(settings, clock)
        self.caller = build_caller(settings, self.registry, self.invoker, self.deployments)
        self.strategies = StrategyRunner(settings, self.registry, self.caller, self.telemetry)
        self.router = build_router(settings, self.registry, self.strategies.is_strategy)
        # prompts are embedded (off the event loop) only for a learned router or ledger.store_embeddings
        self.store_embeddings = settings.store_embeddings and self.ledger is not None
        self.learned: LearnedRuntime | None = None
        if settings.learned is not None or self.store_embeddings:
            from podium.learned_runtime import LearnedRuntime

            self.learned = LearnedRuntime(settings.learned)
        self.policies = PolicyBuilder(settings, self.registry)
        self.experiments = Experiments(settings.experiments, self.router, settings.catalogue, settings.strategies)
        self.shadows = ShadowTrials(settings.shadow, settings.catalogue, self.caller, self.ledger)
        self.embeddings = Embeddings(settings, self.registry, self.ledger)
        self.prober = HealthProber(self.registry, self.deployments,
                                   settings.resilience.health_probe_interval or 30.0)

    @classmethod
    def from_config(cls, path: str | Path | None = None, **kwargs: Any) -> Podium:
        return cls(load_settings(path), **kwargs)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def health(self, *, probe: bool = True) -> dict[str, Any]:
        """Providers' health (probed now unless ``probe=False``) and every deployment's circuit."""
        providers = await self.prober.probe_once() if probe else self.prober.last
        return {"providers": providers,
                "deployments": [DeploymentHealth.of(d) for d in self.deployments.all()]}

    def start_health_probes(self) -> None:
        """Probe in the background every ``resilience.health_probe_interval`` seconds (if set)."""
        if self.settings.resilience.health_probe_interval is not None:
            self.prober.start()

    async def aclose(self) -> None:
        await self.shadows.aclose()  # first: what it cancels is recorded before the ledger closes
        await self.prober.stop()
        await self.registry.aclose()
        if self.ledger is not None:
            await self.ledger.aclose()
        if self.learned is not None:
            self.learned.close()
        self.telemetry.shutdown()

    # --- requests ---------------------------------------------------------------------------------
    def prepare(self, request: ChatRequest | str, fields: dict[str, Any] | None = None) -> ChatRequest:
        """The request as Podium will send it: validated, with the configured defaults filled in.

        Idempotent, so a caller that must route or price the request first (the gateway's budget
        check) prepares it once and the answer path sees the same request."""
        fields = fields or {}
        try:
            if isinstance(request, str):
                request = ChatRequest(messages=[Message.user(request)], **fields)
            elif fields:
                request = ChatRequest.model_validate({**request.model_dump(exclude_unset=True), **fields})
        except ValidationError as exc:
            raise BadRequestError(describe_validation_error(exc)) from None
        defaults = self.settings.defaults
        update: dict[str, Any] = {}
        if request.max_tokens is None and defaults.max_tokens is not None:
            update["max_tokens"] = defaults.max_tokens
        if request.temperature is None and defaults.temperature is not None:
            update["temperature"] = defaults.temperature
        return request.model_copy(update=update) if update else request

    async def route(self, request: ChatRequest, policy: RequestPolicy | None = None) -> Routed:
        """The route for ``request`` under ``policy``. With a learned router (or ``ledger.store_embeddings``)
        the prompt is embedded first, off the event loop, and the embedding rides on the route."""
        learned = self.learned
        if learned is None:
            return self.router.route(request, policy=policy)
        wants = self.router.wants_prediction(request)
        if not (wants or self.store_embeddings):
            return self.router.route(request, policy=policy)
        prediction = await learned.predict(request)
        routed = self.router.route(request, policy=policy, prediction=prediction if wants else None)
        return replace(routed, prediction=prediction)

    async def learn(self, request_id: str, score: float | None, label: str | None) -> bool:
        """Feedback on an earlier request, for an online learned router (see ``learn_from_feedback``)."""
        return (await self.learn_from_feedback(request_id, score, label))[0]

    async def learn_from_feedback(self, request_id: str, score: float | None,
                                  label: str | None) -> tuple[bool, str | None]:
        """Feedback on an earlier request, for an online learned router: its ``update`` with the request's
        embedding (remembered, or from the ledger) and the model that answered. (False, why) when there is
        nothing to learn: no online router, a score outside 0..1, no embedding for that request, or the
        request already taught the router (a request teaches it at most once: the first usable feedback)."""
        learned = self.learned
        if learned is None or not learned.online:
            return False, "no online learned router"
        from podium.learned_runtime import reward_of

        reward = reward_of(score, label)
        if reward is None:
            return False, "not a reward: a score in 0..1 or a good/bad label"
        if learned.taught(request_id):
            return False, "this request already taught the router"
        found = learned.recall(request_id)
        if found is None and self.store_embeddings and self.ledger is not None:
            row = await self.ledger.request_embedding(request_id)
            if row is not None:
                import numpy as np

                found = (np.frombuffer(row[1], dtype="<f4").copy(), row[0])
        if found is None:
            return False, "no stored embedding for this request"
        if learned.taught(request_id):  # another feedback on it taught the router while the ledger was read
            return False, "this request already taught the router"
        learned.mark_taught(request_id)  # before the await: concurrent replays see it at once
        if not await learned.learn(found[0], found[1], reward):
            return False, "the model that answered is not one of the router's"
        return True, None

    async def _start(self, request: ChatRequest, policy: RequestPolicy | None, routed: Routed | None = None,
                     trace_context: Any = None) -> _Call:
        policy = policy or self.policies.build(request)
        routed = routed or self.experiments.route(request, policy) or await self.route(request, policy)
        ctx = RequestContext(policy)
        strategy = "single" if routed.model is not None else routed.decision.model.split(":", 1)[0]
        if self.telemetry.enabled:
            meta = request.metadata
            ctx.span = self.telemetry.start("podium.request", {
                "podium.request_id": ctx.request_id, "podium.requested_model": request.model or "auto",
                "podium.strategy": strategy, "podium.task_type": meta.task_type, "podium.sensitivity":
                meta.sensitivity, "podium.rationale": routed.decision.rationale, "podium.stream": request.stream},
                context=trace_context)
        if self.ledger is not None:
            meta = request.metadata
            await self.ledger.start_request(RequestStart(
                request_id=ctx.request_id, started_at=time.time(), requested_model=request.model,
                task_type=meta.task_type, strategy=strategy, user=meta.user, tags=tuple(meta.tags),
                key_id=policy.key_id, team=policy.team, experiment=routed.decision.experiment,
                arm=routed.decision.arm))
        trace = Trace(request_id=ctx.request_id, strategy=strategy, decision=routed.decision)
        if policy.scope_note:
            ctx.notes.append(f"scope: {policy.scope_note}")
        return _Call(routed, ctx, trace, time.perf_counter(), self._last_resort(routed))

    def _last_resort(self, routed: Routed) -> list[ModelInfo]:
        """The preset's emergency exit: the local default model, if it is on and allowed."""
        if routed.preset is None or not routed.preset.local_last_resort:
            return []
        local = self.settings.catalogue.find(self.settings.default_model)
        if local is None or not local.local or local.provider not in self.registry.list_providers():
            return []
        return [local] if routed.model is not None and local.name != routed.model.name else []

    def _refusal(self, call: _Call, request: ChatRequest) -> Callable[[ModelInfo], str | None]:
        """Why a fallback target may not serve this request (the route's constraints), or None."""
        constraints = call.routed.constraints
        return lambda m: constraints.violation(m, estimate_cost(request, m))

    async def _finish(self, call: _Call, error: BaseException | None, served: str | None = None) -> None:
        """Close the request's trace and ledger rows. ``served`` is the model whose answer a strategy
        returned: the stored embedding and online feedback credit it, not whichever member (a
        verifier, the slowest voter) happened to finish last."""
        ctx, trace = call.ctx, call.trace
        trace.calls = list(ctx.calls)
        trace.notes = list(ctx.notes)
        trace.deployment, trace.retries, trace.fallbacks = ctx.deployment, ctx.retries, ctx.fallbacks
        if ctx.span is not None:
            answered = ctx.calls[-1] if ctx.calls else None
            self.telemetry.end(ctx.span, error, {
                "gen_ai.response.model": answered.model if answered else None, "podium.cost_usd": ctx.cost,
                "gen_ai.usage.input_tokens": ctx.usage.input_tokens, "podium.calls": len(ctx.calls),
                "gen_ai.usage.output_tokens": ctx.usage.output_tokens, "podium.retries": ctx.retries,
                "podium.fallbacks": ctx.fallbacks})
        prediction = call.routed.prediction
        answered = ctx.calls[-1] if ctx.calls and error is None else None
        credited = answered.model if answered is not None else None
        if served is not None and answered is not None and any(c.model == served for c in ctx.calls):
            credited = served
        if prediction is not None and credited is not None and self.learned is not None:
            self.learned.remember(ctx.request_id, prediction.embedding, credited)
        if self.ledger is None:
            return
        usage, decision = ctx.usage, trace.decision
        if prediction is not None and credited is not None and self.store_embeddings:
            vector = prediction.embedding.astype("<f4", copy=False)
            await self.ledger.record_embedding(ctx.request_id, credited, vector.tobytes(), int(vector.size))
            for label in ctx.labels:  # a strategy's automatic labels: only beside an embedding can they teach
                await self.ledger.record_label(ctx.request_id, label.model, label.source, label.score)
        cancelled = isinstance(error, asyncio.CancelledError | GeneratorExit)
        message = None if error is None else error.message if isinstance(error, PodiumError) else \
            "cancelled: the client went away or the request was stopped" if cancelled else \
            f"{type(error).__name__}: {error}"
        await self.ledger.finish_request(RequestEnd(
            request_id=ctx.request_id, finished_at=time.time(),
            status="ok" if error is None else "cancelled" if cancelled else "error",
            model=answered.model if answered else (decision.model if decision else None),
            provider=answered.provider if answered else (decision.provider if decision else None),
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost=ctx.cost,
            latency_ms=(time.perf_counter() - call.started) * 1000, calls=len(ctx.calls), error=message,
            rationale=decision.rationale if decision else None, retries=ctx.retries, fallbacks=ctx.fallbacks,
            deployment=ctx.deployment, notes="\n".join(ctx.notes) or None))

    async def chat(self, request: ChatRequest | str, *, observer: Observer | None = None,
                   routed: Routed | None = None, trace_context: Any = None, policy: RequestPolicy | None = None,
                   **fields: Any) -> ChatResponse:
        """Answer one request. ``fields`` are ChatRequest fields (model, max_tokens, metadata…);
        ``model`` may name a strategy (``consensus:a,b,c`` or one from the config). ``policy`` is what
        the request may do (the gateway builds it from the caller's key; default: the request's own
        regions, the deadline and the fan-out cap, under a new request id). ``routed`` is a route
        already decided for this very request under that policy; ``trace_context`` an OpenTelemetry
        context the request span becomes a child of."""
        request = self.prepare(request, fields)
        call = await self._start(request, policy, routed, trace_context)
        try:
            if call.routed.model is None:
                # the strategy the request named, or the one a routing rule chose for it
                response = await self.strategies.run(call.routed.decision.model, request, call.ctx,
                                                     call.routed.constraints, observer, self._refusal(call, request))
                response = response.model_copy(update={"id": call.ctx.request_id, "usage": call.ctx.usage,
                                                       "cost": call.ctx.cost})
            else:
                response = await self.caller.complete(request, call.routed.model, call.ctx,
                                                      refuse=self._refusal(call, request),
                                                      last_resort=call.last_resort)
        except BaseException as exc:
            await self._finish(call, exc)
            raise
        await self._finish(call, None, served=response.served_by if call.routed.model is None else None)
        response = response.model_copy(update={"trace": call.trace,
                                               "latency_ms": (time.perf_counter() - call.started) * 1000})
        if self.shadows:  # after the answer is complete; queued, never awaited
            self.shadows.offer(request, response, call.ctx.policy)
        return response

    async def embed(self, texts: str | list[str], *, model: str | None = None,
                    dimensions: int | None = None) -> EmbeddingResponse:
        """Vectors for ``texts`` (one per text, in order) from ``model`` or ``routing.embedding_model``."""
        try:
            request = EmbeddingRequest(input=[texts] if isinstance(texts, str) else texts, model=model,
                                       dimensions=dimensions)
        except ValidationError as exc:
            raise BadRequestError(describe_validation_error(exc)) from None
        return await self.embeddings.embed(request)

    def stream(self, request: ChatRequest | str, *, routed: Routed | None = None, trace_context: Any = None,
               policy: RequestPolicy | None = None, **fields: Any) -> ChatStream:
        """Chunks as they arrive; afterwards ``.response`` holds the whole answer with its trace."""
        return ChatStream(self, self.prepare(request, {**fields, "stream": True}), routed, trace_context, policy)


@dataclass
class _Call:
    """One request in flight: its route, its accounting context and trace."""

    routed: Routed
    ctx: RequestContext
    trace: Trace
    started: float
    last_resort: list[ModelInfo]


class ChatStream:
    """An answer arriving in pieces. Iterate it once; then read ``response``."""

    def __init__(self, podium: Podium, request: ChatRequest, routed: Routed | None = None,
                 trace_context: Any = None, policy: RequestPolicy | None = None) -> None:
        self._podium = podium
        self._request = request
        self._routed = routed
        self._trace_context = trace_context
        self.policy = policy or podium.policies.build(request)
        self.response: ChatResponse | None = None
        self._call: _Call | None = None

    @property
    def request_id(self) -> str:
        """The id the stream's chunks, its ledger rows and its response carry."""
        return self.policy.request_id

    @property
    def experiment(self) -> str | None:
        """``experiment/arm`` when an A/B experiment serves the stream (known once its first chunk is out)."""
        trace = self._call.trace if self._call is not None else self.response.trace if self.response else None
        decision = trace.decision if trace is not None else None
        return f"{decision.experiment}/{decision.arm}" if decision is not None and decision.experiment else None

    @property
    def context(self) -> RequestContext | None:
        """What the request has done so far (after the first chunk: the deployment that answers)."""
        return self._call.ctx if self._call is not None else None

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self._run()

    async def _run(self) -> AsyncIterator[StreamChunk]:
        podium, request = self._podium, self._request
        routed = self._routed or podium.experiments.route(request, self.policy) or \
            await podium.route(request, self.policy)
        if routed.model is None:  # a strategy, named by the request or chosen by a routing rule
            # A strategy's answer exists only once its calls are done: it arrives as one chunk.
            self.response = await podium.chat(request.model_copy(update={"stream": False}), routed=routed,
                                              trace_context=self._trace_context, policy=self.policy)
            yield StreamChunk(text=self.response.text, model=self.response.model, provider="podium")
            yield StreamChunk(finish_reason=self.response.finish_reason, usage=self.response.usage,
                              model=self.response.model, provider="podium")
            return
        call = self._call = await podium._start(request, self.policy, routed, self._trace_context)
        assert call.routed.model is not None
        texts: dict[int, list[str]] = {0: []}  # per choice: n > 1 answers are never spliced
        finishes: dict[int, FinishReason] = {}
        error: BaseException | None = None
        chunks = podium.caller.stream(request, call.routed.model, call.ctx, refuse=podium._refusal(call, request),
                                      last_resort=call.last_resort)
        try:
            async for chunk in chunks:
                texts.setdefault(chunk.index, []).append(chunk.text)
                if chunk.finish_reason:
                    finishes[chunk.index] = chunk.finish_reason
                yield chunk
        except BaseException as exc:
            error = exc
            raise
        finally:
            # Closed here, not left to the garbage collector: an abandoned stream's call is accounted
            # (as cancelled) before the request's finish row, which counts it.
            await chunks.aclose()  # type: ignore[attr-defined]
            await podium._finish(call, error)
            answered = call.ctx.calls[-1] if call.ctx.calls else None
            more = [Choice(index=i, text="".join(texts[i]), finish_reason=finishes.get(i, "stop"))
                    for i in sorted(texts) if i]
            self.response = ChatResponse(
                id=call.ctx.request_id, text="".join(texts[0]), model=answered.model, provider=answered.provider,
                usage=call.ctx.usage, cost=call.ctx.cost, latency_ms=(time.perf_counter() - call.started) * 1000,
                finish_reason=finishes.get(0, "stop") if error is None else "error", trace=call.trace,
                more_choices=more,
            ) if answered is not None else None
            if error is None and self.response is not None and podium.shadows:
                podium.shadows.offer(request, self.response, self.policy)  # the stream is complete


class SyncPodium:
    """The same API without async, for scripts and notebooks. Owns a private event loop."""

    def __init__(self, podium: Podium) -> None:
        self._runner = asyncio.Runner()
        self.podium = podium

    @classmethod
    def from_config(cls, path: str | Path | None = None, **kwargs: Any) -> SyncPodium:
        return cls(Podium.from_config(path, **kwargs))

    def chat(self, request: ChatRequest | str, **fields: Any) -> ChatResponse:
        return self._runner.run(self.podium.chat(request, **fields))

    def stream(self, request: ChatRequest | str, **fields: Any) -> Iterator[StreamChunk]:
        iterator = aiter(self.podium.stream(request, **fields))

        async def step() -> StreamChunk:
            return await anext(iterator)

        async def close() -> None:
            await iterator.aclose()  # type: ignore[attr-defined]

        try:
            while True:
                try:
                    yield self._runner.run(step())
                except StopAsyncIteration:
                    return
        finally:
            self._runner.run(close())

    def close(self) -> None:
        self._runner.run(self.podium.aclose())
        self._runner.close()

    def __enter__(self) -> SyncPodium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

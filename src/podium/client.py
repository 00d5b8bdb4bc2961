"""Podium: the wiring. Config → catalogue → providers → router → invoker (+ ledger).

The CLI, the gateway and user code all go through this class, so a request behaves the same
whichever door it came in by. It holds no request state of its own; one instance serves many
concurrent requests.

    async with Podium.from_config() as podium:
        response = await podium.chat("What is the capital of France?")
        print(response.text, response.cost, response.trace)

``SyncPodium`` offers the same for code that is not async.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from pydantic import ValidationError

from podium.config import Settings, load_settings
from podium.errors import BadRequestError, PodiumError
from podium.invoke import Invoker, RequestContext
from podium.ledger import LedgerStore, RequestEnd, RequestStart, SQLiteLedger
from podium.providers import Provider, ProviderRegistry
from podium.routing import RuleRouter
from podium.types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    StreamChunk,
    Trace,
    describe_validation_error,
    new_request_id,
)

_UNSET: Any = object()


def _build_providers(settings: Settings) -> list[Provider]:
    from podium.providers.plugins import build_provider, provider_factory

    built = []
    for spec in settings.providers.values():
        # A known host whose adapter is not installed yet is skipped rather than fatal, unless the
        # user's config names it explicitly (then build_provider reports the missing adapter).
        if spec.enabled and (spec.configured or provider_factory(spec.kind) is not None):
            built.append(build_provider(spec))
    return built


class Podium:
    def __init__(self, settings: Settings, *, providers: Iterable[Provider] | None = None,
                 ledger: LedgerStore | None = _UNSET) -> None:
        self.settings = settings
        self.registry = ProviderRegistry(settings.catalogue,
                                         _build_providers(settings) if providers is None else providers)
        if ledger is _UNSET:
            ledger = SQLiteLedger(settings.ledger_path) if settings.ledger_path else None
        self.ledger: LedgerStore | None = ledger
        self.invoker = Invoker(self.registry, self.ledger)
        rules = {rule.task_type: rule.model for rule in settings.routing.rules}
        enabled = self.registry.list_providers()
        disabled = {name: spec.reason for name, spec in settings.providers.items() if name not in enabled}
        self.router = RuleRouter(settings.catalogue, settings.default_model, rules, enabled, disabled)

    @classmethod
    def from_config(cls, path: str | Path | None = None, **kwargs: Any) -> Podium:
        return cls(load_settings(path), **kwargs)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.registry.aclose()
        if self.ledger is not None:
            await self.ledger.aclose()

    # --- requests ---------------------------------------------------------------------------------
    def _prepare(self, request: ChatRequest | str, fields: dict[str, Any]) -> ChatRequest:
        try:
            if isinstance(request, str):
                request = ChatRequest(messages=[Message.user(request)], **fields)
            elif fields:
                request = ChatRequest.model_validate({**request.model_dump(exclude_unset=True), **fields})
        except ValidationError as exc:
            raise BadRequestError(describe_validation_error(exc)) from None
        defaults = self.settings.defaults
        update: dict[str, Any] = {}
        if request.max_tokens is None:
            update["max_tokens"] = defaults.max_tokens
        if request.temperature is None and defaults.temperature is not None:
            update["temperature"] = defaults.temperature
        return request.model_copy(update=update) if update else request

    async def _start(self, request: ChatRequest) -> tuple[RequestContext, Trace]:
        decision = self.router.decide(request)
        ctx = RequestContext(new_request_id())
        if self.ledger is not None:
            meta = request.metadata
            await self.ledger.start_request(RequestStart(
                request_id=ctx.request_id, started_at=time.time(), requested_model=request.model,
                task_type=meta.task_type, user=meta.user, tags=tuple(meta.tags)))
        return ctx, Trace(request_id=ctx.request_id, decision=decision)

    async def _finish(self, ctx: RequestContext, trace: Trace, started: float, error: BaseException | None) -> None:
        trace.calls = list(ctx.calls)
        if self.ledger is None:
            return
        usage, decision = ctx.usage, trace.decision
        message = None if error is None else (error.message if isinstance(error, PodiumError) else repr(error))
        await self.ledger.finish_request(RequestEnd(
            request_id=ctx.request_id, finished_at=time.time(), status="ok" if error is None else "error",
            model=decision.model if decision else None, provider=decision.provider if decision else None,
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, cost=ctx.cost,
            latency_ms=(time.perf_counter() - started) * 1000, calls=len(ctx.calls), error=message,
            rationale=decision.rationale if decision else None))

    async def chat(self, request: ChatRequest | str, **fields: Any) -> ChatResponse:
        """Answer one request. ``fields`` are ChatRequest fields (model, max_tokens, metadata…)."""
        request = self._prepare(request, fields)
        started = time.perf_counter()
        ctx, trace = await self._start(request)
        assert trace.decision is not None
        model = self.settings.catalogue.get(trace.decision.model)
        try:
            response = await self.invoker.complete(request, model, ctx)
        except BaseException as exc:
            await self._finish(ctx, trace, started, exc)
            raise
        await self._finish(ctx, trace, started, None)
        return response.model_copy(update={"trace": trace, "latency_ms": (time.perf_counter() - started) * 1000})

    def stream(self, request: ChatRequest | str, **fields: Any) -> ChatStream:
        """Chunks as they arrive; afterwards ``.response`` holds the whole answer with its trace."""
        return ChatStream(self, self._prepare(request, {**fields, "stream": True}))


class ChatStream:
    """An answer arriving in pieces. Iterate it once; then read ``response``."""

    def __init__(self, podium: Podium, request: ChatRequest) -> None:
        self._podium = podium
        self._request = request
        self.response: ChatResponse | None = None

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self._run()

    async def _run(self) -> AsyncIterator[StreamChunk]:
        podium, request = self._podium, self._request
        started = time.perf_counter()
        ctx, trace = await podium._start(request)
        assert trace.decision is not None
        model = podium.settings.catalogue.get(trace.decision.model)
        text: list[str] = []
        finish: FinishReason = "stop"
        error: BaseException | None = None
        try:
            async for chunk in podium.invoker.stream(request, model, ctx):
                text.append(chunk.text)
                finish = chunk.finish_reason or finish
                yield chunk
        except BaseException as exc:
            error = exc
            raise
        finally:
            await podium._finish(ctx, trace, started, error)
            call = ctx.calls[-1] if ctx.calls else None
            self.response = ChatResponse(
                id=ctx.request_id, text="".join(text), model=model.name, provider=model.provider,
                usage=ctx.usage, cost=ctx.cost, latency_ms=(time.perf_counter() - started) * 1000,
                finish_reason=finish if error is None else "error", trace=trace,
            ) if call is not None else None


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

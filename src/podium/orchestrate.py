"""Running a strategy for a request: the bridge between pure strategies and the live stack.

Each model call a strategy makes goes through the resilient caller (retries, fallbacks, the
ledger, and at the invoker the request's policy: scope, regions, budget holds, the fan-out cap),
after three checks done here so a wrong spec fails early and clearly: the name exists and its
provider is on, the model meets the request's constraints (a confidential request's consensus never
asks a US model), and the call's estimated cost fits what is left of the strategy's own budget.
A name that is itself a strategy runs nested, its steps labelled under the parent's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from podium.catalogue import ModelInfo, unknown_model_message
from podium.config import Settings
from podium.errors import BadRequestError, BudgetExceededError, NotFoundError, ScopeError
from podium.invoke import RequestContext
from podium.providers import ProviderRegistry
from podium.resilience.executor import ResilientCaller
from podium.routing import Constraints, estimate_cost
from podium.strategies.base import NullObserver, Observer, StrategyContext
from podium.strategies.names import is_strategy, reach
from podium.telemetry import Telemetry
from podium.types import ChatRequest, ChatResponse

if TYPE_CHECKING:
    from podium.strategies.semantic import AnswerEmbedder
    from podium.strategies.spec import StrategyEnv

TIERS = ("fast", "standard", "advanced")


def answer_embedder() -> AnswerEmbedder:
    """Free-text answers compared by all-MiniLM-L6-v2 (in-process, no data leaves the machine): loaded on
    first use and run in a worker thread (``strategies.semantic``); when it is not installed the strategies
    compare words and their trace says why."""
    from podium.providers.local import minilm
    from podium.strategies.semantic import AnswerEmbedder

    def encode(texts: list[str]) -> list[list[float]]:
        vectors, _ = minilm.load().embed(texts)
        return [[float(x) for x in row] for row in vectors]

    return AnswerEmbedder(encode, missing=lambda: minilm.missing())


class StrategyRunner:
    def __init__(self, settings: Settings, registry: ProviderRegistry, caller: ResilientCaller,
                 telemetry: Telemetry | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.caller = caller
        self.telemetry = telemetry or Telemetry.off()

    def is_strategy(self, name: str | None) -> bool:
        return is_strategy(name, self.settings.strategies) and (name not in self.settings.catalogue)

    def _model(self, name: str, constraints: Constraints) -> ModelInfo:
        model = self.settings.catalogue.find(name)
        if model is None:  # the strategy spec is wrong: the request's fault, not a member's failure
            raise BadRequestError(f"in the strategy: {unknown_model_message(name, self.settings.catalogue.names())}",
                                  model=name, code="model_not_found")
        if "chat" not in model.capabilities:
            raise BadRequestError(f"model '{name}' in the strategy is not a chat model", model=name,
                                  code="model_not_chat")
        if model.provider not in self.registry.list_providers():
            raise NotFoundError(f"model '{name}' in the strategy needs provider '{model.provider}', which is not "
                                f"enabled ({self.settings.providers[model.provider].reason})", model=name)
        if constraints.scope is not None and model.name not in constraints.scope:
            raise ScopeError(f"model '{name}' in the strategy is outside the key's scope", model=name)
        unavailable = self.registry.cannot_run(model)
        if unavailable is not None:
            raise NotFoundError(f"model '{name}' in the strategy cannot run here: {unavailable}", model=name,
                                code="model_unavailable")
        violation = constraints.violation(model, 0.0)
        if violation is not None:
            raise BadRequestError(f"model '{name}' in the strategy cannot serve this request: {violation}",
                                  model=name, code="route_constraint")
        return model

    def _check_scope(self, name: str, ctx: RequestContext) -> None:
        """A strategy that names a model outside the key's scope is refused before any member is asked."""
        scope = ctx.policy.scope
        if scope is None:
            return
        catalogue = self.settings.catalogue
        reached = reach(name, self.settings.strategies, lambda n: m.name if (m := catalogue.find(n)) else None)
        outside = sorted(reached - scope) if reached is not None else []
        if outside:
            raise ScopeError(f"strategy '{name[:200]}' calls {', '.join(outside[:5])}, outside the scope of key "
                             f"'{ctx.policy.key_name or ctx.policy.key_id}'", model=name[:200])

    def env(self, constraints: Constraints) -> StrategyEnv:
        from podium.strategies.spec import StrategyEnv

        eligible = [m for m in self.registry.list_models(capability="chat")
                    if constraints.violation(m, 0.0) is None and self.registry.cannot_run(m) is None]

        def pick(tier: str, avoid_provider: str | None) -> str:
            rank = TIERS.index(tier)
            for level in sorted(range(3), key=lambda t: (abs(t - rank), -t)):
                pool = [m for m in eligible if m.tier == TIERS[level]]
                preferred = [m for m in pool if m.provider != avoid_provider] or (pool if avoid_provider is None
                                                                                 else [])
                if preferred:
                    return min(preferred, key=lambda m: (m.blended_price, m.prompt_format != "chat")).name
            if eligible:  # no other provider exists (e.g. only local models): same provider, said in the trace
                return min(eligible, key=lambda m: (abs(TIERS.index(m.tier) - rank), m.blended_price)).name
            raise BadRequestError("no enabled chat model satisfies this request's constraints", code="no_route")

        def fast_models(k: int) -> list[str]:
            fast = sorted((m for m in eligible if m.tier == "fast"),
                          key=lambda m: (m.blended_price, m.prompt_format != "chat"))
            names = [m.name for m in fast if m.prompt_format == "chat"] or [m.name for m in fast]
            if not names:
                raise BadRequestError("fast-vote needs at least one enabled fast chat model", code="no_route")
            return [names[i % len(names)] for i in range(k)]

        return StrategyEnv(pick=pick, provider_of=lambda name: self.settings.catalogue.get(name).provider,
                           fast_models=fast_models, embedder=answer_embedder(),
                           max_calls=self.settings.routing.max_calls_per_request)

    async def run(self, name: str, request: ChatRequest, ctx: RequestContext, constraints: Constraints,
                  observer: Observer | None, refuse: Callable[[ModelInfo], str | None]) -> ChatResponse:
        from podium.strategies.spec import budget_of, build  # loaded on the first strategy request

        self._check_scope(name, ctx)
        if request.n > 1:  # a strategy makes one answer: n of them would be paid for and n-1 thrown away
            raise BadRequestError(f"n={request.n} cannot be used with the strategy '{name[:100]}', which makes one "
                                  "answer; send n requests, or use the vote strategy to sample several models",
                                  code="unsupported_parameter")
        env = self.env(constraints)
        strategy = build(name, self.settings.strategies, env)

        async def call(model_name: str, req: ChatRequest, step: str, sctx: StrategyContext) -> ChatResponse:
            if self.is_strategy(model_name):
                nested = build(model_name, self.settings.strategies, env)
                sctx.note(step, f"nested strategy {model_name}")
                return await nested.run(req, sctx.child(f"{step.rsplit('/', 1)[-1]}:{model_name}"))
            model = self._model(model_name, constraints)
            remaining = sctx.remaining()
            if remaining is not None:
                cost = estimate_cost(req, model)
                if cost > remaining:
                    raise BudgetExceededError(f"{step} on {model_name} would cost up to ${cost:.6f}; "
                                              f"${max(remaining, 0):.6f} of the budget is left", model=model_name)
            return await self.caller.complete(req, model, ctx, step=step, refuse=refuse)

        request_cap = constraints.max_cost
        sctx = StrategyContext(call, lambda: ctx.cost, budget_of(name, self.settings.strategies, request_cap),
                               observer or NullObserver(),
                               notes=ctx.notes,  # strategy decisions share the trace notes with resilience's
                               labels=ctx.labels)  # written with the prompt's embedding (client._finish)
        span, request_span = self.telemetry.start(f"strategy {name}", {"podium.strategy": name,
                                                                       "podium.request_id": ctx.request_id},
                                                  parent=ctx.span), ctx.span
        ctx.span = span or request_span  # the strategy's calls nest under it
        error: BaseException | None = None
        try:
            return await strategy.run(request, sctx)
        except BaseException as exc:
            error = exc
            raise
        finally:
            ctx.span = request_span
            self.telemetry.end(span, error, {"podium.calls": len(ctx.calls), "podium.cost_usd": ctx.cost})

"""The router: which model serves a request, and why.

Order of decision, each step explained in the ``RouteDecision.rationale``:
1. an explicit ``model`` is honoured, but must still satisfy the constraints (a confidential
   request naming a US model is refused with 403, not silently sent; so is a model outside the
   key's scope);
2. a routing rule for the request's task type: a model, or a strategy (named in ``strategies:`` or
   inline, ``vote:a,b``), which then runs as if the request had named it;
3. ``routing.default`` when the config names one (and no preset is in force);
4. with ``routing.router: learned``, the learned router: the caller hands in its ``Prediction``
   for the prompt (embedded and predicted off the event loop, ``podium.learned_runtime``), and the
   cheapest model of the router file that may serve the request and clears the knob's bar wins
   (``routing.learned_route``); if none of the file's models may serve it, the tiers below decide
   and the rationale says so;
5. otherwise tiers: the estimator rates complexity and risk, the tier follows the seeds
   (high risk or large → advanced, medium → standard, small → fast), the preset may shift it,
   and the cheapest enabled model of that tier meeting every constraint wins; if the tier has
   none, neighbouring tiers are tried (lower first when the budget is the problem).

Pure logic: no I/O, microseconds per decision.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from podium.catalogue import TIER_RANK, Catalogue, ModelInfo, count_message_tokens
from podium.errors import BadRequestError, NotFoundError, RegionError, ScopeError
from podium.policy import RequestPolicy
from podium.routing.complexity import ComplexityEstimator, Estimate, HeuristicEstimator, Risk
from podium.routing.constraints import DEFAULT_REGIONS, Constraints, constraints_for, estimate_cost, regions_for
from podium.routing.presets import Preset, preset_for
from podium.types import ChatRequest, RouteDecision

if TYPE_CHECKING:  # numpy and the learners load only when a learned router is configured
    from podium.routing.learned_route import LearnedSetup, Prediction

TIERS = ("fast", "standard", "advanced")


def tier_for(estimate: Estimate, shift: int = 0) -> str:
    if estimate.risk == "high" or estimate.complexity == "large":
        level = 2
    elif estimate.risk == "medium" or estimate.complexity == "medium":
        level = 1
    else:
        level = 0
    return TIERS[max(0, min(2, level + shift))]


@dataclass(frozen=True)
class Routed:
    decision: RouteDecision
    model: ModelInfo | None  # None when a strategy serves the request (``decision.model`` names it)
    constraints: Constraints
    preset: Preset | None
    prediction: Prediction | None = None  # the prompt's embedding (and the learner's chances), when computed


class Router:
    def __init__(self, catalogue: Catalogue, enabled_providers: Collection[str], *,
                 rules: Mapping[str, str] | None = None, default_model: str | None = None,
                 preset: str | None = None, max_cost: float | None = None,
                 regions_by_sensitivity: Mapping[str, frozenset[str] | None] = DEFAULT_REGIONS,
                 disabled_reasons: Mapping[str, str] | None = None,
                 estimator: ComplexityEstimator | None = None,
                 is_strategy: Callable[[str], bool] | None = None,
                 cannot_run: Callable[[ModelInfo], str | None] | None = None,
                 learned: LearnedSetup | None = None) -> None:
        """``cannot_run`` says why a model cannot run on this machine (runtime or weights missing);
        such models are never routed to. ``learned``: the learned router (``routing.router: learned``)."""
        self.catalogue = catalogue
        self.enabled = frozenset(enabled_providers)
        self.rules = dict(rules or {})
        self.default_model = default_model
        self.preset = preset
        self.max_cost = max_cost
        self.regions_by_sensitivity = regions_by_sensitivity
        self.disabled_reasons = dict(disabled_reasons or {})
        self.estimator = estimator or HeuristicEstimator()
        self.is_strategy = is_strategy or (lambda _: False)
        self.cannot_run = cannot_run or (lambda _: None)
        self.learned = learned
        # a superseded model still answers when named, but is never chosen for the caller
        enabled_chat = [m for m in catalogue if "chat" in m.capabilities and m.provider in self.enabled
                        and not m.superseded_by]
        self._unrunnable = [(m, reason) for m in enabled_chat if (reason := self.cannot_run(m)) is not None]
        self._chat_models = [m for m in enabled_chat if all(m is not u for u, _ in self._unrunnable)]
        # the fields the tiered loop reads, unpacked once (attribute access is most of that loop's cost)
        self._rows = [(m, TIER_RANK[m.tier] - 1, m.input_price, m.output_price, m.max_output_tokens or 256, m.region,
                       m.capabilities, m.context_window, m.provider, m.local, m.prompt_format != "chat")
                      for m in self._chat_models]

    # --- public -----------------------------------------------------------------------------------
    def wants_prediction(self, request: ChatRequest) -> bool:
        """Whether ``route`` would ask the learned router about this request: one is configured and the
        request names no model, matches no rule and no default applies. The caller embeds the prompt
        only then, so requests the learner never decides pay nothing for it."""
        if self.learned is None or request.model:
            return False
        task = request.metadata.task_type
        if task and task in self.rules:
            return False
        return not (self.default_model and preset_for(request.metadata.preset, self.preset) is None)

    def route(self, request: ChatRequest, *, policy: RequestPolicy | None = None,
              exclude_providers: frozenset[str] = frozenset(), prediction: Prediction | None = None) -> Routed:
        """The route for ``request``; with a ``policy``, within its scope and regions (else the regions
        its sensitivity and preset allow, decided the same way). ``prediction``: the learned router's
        for this prompt (see ``wants_prediction``); without one, the tiers decide."""
        preset = preset_for(request.metadata.preset, self.preset)
        prompt_tokens = count_message_tokens(request.messages)
        constraints = self._constraints(request, preset, policy, exclude_providers, prompt_tokens)
        task = request.metadata.task_type
        if request.model and self.is_strategy(request.model):
            rationale = "; ".join([f"strategy '{request.model}' requested", *constraints.reasons])
            return Routed(RouteDecision(model=request.model, provider="podium", rationale=rationale,
                                        estimated_cost=0.0, confidence=1.0), None, constraints, preset)
        fixed: tuple[str, str, float, bool] | None = None
        if request.model:
            fixed = (request.model, "requested explicitly", 1.0, True)
        elif task and task in self.rules:
            target = self.rules[task]
            if self.is_strategy(target):
                rationale = "; ".join([f"rule: task type '{task}' → strategy '{target}'", *constraints.reasons])
                return Routed(RouteDecision(model=target, provider="podium", rationale=rationale,
                                            estimated_cost=0.0, confidence=0.9), None, constraints, preset)
            fixed = (target, f"rule: task type '{task}'", 0.9, False)
        elif self.default_model and preset is None:
            fixed = (self.default_model, "default model (routing.default)", 0.6, False)
        if fixed is not None:
            routed = self._fixed(request, *fixed[:3], constraints, preset, strict=fixed[3], prompt_tokens=prompt_tokens)
            if routed is not None:
                return routed
        if prediction is not None and self.learned is not None:
            return self._learned(request, self.learned, prediction, constraints, preset, prompt_tokens)
        return self._tiered(request, constraints, preset, prompt_tokens=prompt_tokens)

    def decide(self, request: ChatRequest) -> RouteDecision:
        return self.route(request).decision

    def choose_planner(self, risk: Risk, area: str, complexity: str, *, preset: str | None = None) -> RouteDecision:
        """The seeds' API: a route for planning work of the given risk, area and size, under the same
        constraints ``route`` applies (a preset's regions included)."""
        request = ChatRequest.from_prompt(f"plan: {area}", metadata={"preset": preset, "tags": [f"area:{area}"]})
        estimate = Estimate(complexity if complexity in {"small", "medium", "large"} else "medium",  # type: ignore[arg-type]
                            risk, (f"area {area}",))
        chosen = preset_for(preset, self.preset)
        constraints = self._constraints(request, chosen, None, frozenset(), count_message_tokens(request.messages))
        return self._tiered(request, constraints, chosen, estimate=estimate, capability="planning").decision

    def review_route(self, request: ChatRequest, author_provider: str) -> Routed:
        """A reviewer for work written on ``author_provider``: same rules, any other provider."""
        return self.route(request.model_copy(update={"model": None}),
                          exclude_providers=frozenset({author_provider}))

    # --- internals --------------------------------------------------------------------------------
    def _constraints(self, request: ChatRequest, preset: Preset | None, policy: RequestPolicy | None,
                     exclude_providers: frozenset[str], prompt_tokens: int) -> Constraints:
        caps = [c for c in (self.max_cost, preset.max_cost if preset else None) if c is not None]
        if policy is not None:
            regions, why, scope = policy.regions, policy.region_reason, policy.scope
        else:
            regions, why = regions_for(request.metadata.sensitivity, preset.name if preset else None,
                                       preset.regions if preset else None, self.regions_by_sensitivity)
            scope = None
        return constraints_for(request, max_cost=min(caps) if caps else None, regions=regions, region_reason=why,
                               exclude_providers=exclude_providers, prompt_tokens=prompt_tokens, scope=scope)

    def _fixed(self, request: ChatRequest, name: str, why: str, confidence: float, constraints: Constraints,
               preset: Preset | None, *, strict: bool, prompt_tokens: int | None = None) -> Routed | None:
        model = self.catalogue.get(name)
        if "chat" not in model.capabilities:
            uses = ", ".join(sorted(model.capabilities))
            raise BadRequestError(f"'{model.name}' is not a chat model (it is for {uses}); send embedding requests "
                                  "to /v1/embeddings", model=model.name, code="model_not_chat")
        if model.provider not in self.enabled:
            reason = self.disabled_reasons.get(model.provider, "set its key or enable it in podium.yaml")
            raise NotFoundError(f"model '{model.name}' needs provider '{model.provider}', which is not enabled "
                                f"({reason})", model=model.name, provider=model.provider,
                                code="provider_not_enabled")
        unavailable = self.cannot_run(model)
        if unavailable is not None:
            if strict:
                raise NotFoundError(f"model '{model.name}' cannot run here: {unavailable}", model=model.name,
                                    provider=model.provider, code="model_unavailable")
            return None
        cost = estimate_cost(request, model, prompt_tokens)
        violation = constraints.violation(model, cost)
        if violation is not None:
            if strict and constraints.scope is not None and model.name not in constraints.scope:
                raise ScopeError(f"'{model.name}' is outside the key's scope", model=model.name)
            if strict and constraints.regions is not None and model.region not in constraints.regions:
                raise RegionError(f"model '{model.name}' cannot serve this request: {violation} "
                                  f"({'; '.join(constraints.reasons)})", model=model.name, provider=model.provider)
            if strict:
                raise BadRequestError(f"model '{model.name}' cannot serve this request: {violation} "
                                      f"({'; '.join(constraints.reasons) or 'constraints'})", model=model.name,
                                      code="route_constraint")
            return None  # a rule that cannot serve this request falls through to the tiers
        rationale = why + (f"; {'; '.join(constraints.reasons)}" if constraints.reasons else "")
        return Routed(RouteDecision(model=model.name, provider=model.provider, rationale=rationale,
                                    estimated_cost=cost, confidence=confidence), model, constraints, preset)

    def _learned(self, request: ChatRequest, setup: LearnedSetup, prediction: Prediction,
                 constraints: Constraints, preset: Preset | None, prompt_tokens: int) -> Routed:
        """The learned router's choice among the file's models this request may use; the tiers when none may."""
        runnable = {m.name: m for m in self._chat_models}
        eligible: list[tuple[ModelInfo, float]] = []
        refused: list[str] = []
        for name in prediction.chances:
            model = runnable.get(name)
            if model is None:
                refused.append(f"{name}: not enabled or cannot run here")
                continue
            cost = estimate_cost(request, model, prompt_tokens)
            violation = constraints.violation(model, cost)
            if violation is not None:
                refused.append(f"{name}: {violation}")
                continue
            eligible.append((model, cost))
        if not eligible:
            routed = self._tiered(request, constraints, preset, prompt_tokens=prompt_tokens)
            why = (f"learned router ({setup.label()}): no model of the file may serve this request "
                   f"({'; '.join(refused[:6])}), so the tiers decide; ")
            return replace(routed, decision=routed.decision.model_copy(
                update={"rationale": why + routed.decision.rationale}))
        from podium.routing.learned_route import choose

        chosen = choose(setup, prediction, eligible, request.metadata.router_knob)
        rationale = "; ".join([chosen.rationale, *constraints.reasons])
        decision = RouteDecision(model=chosen.model.name, provider=chosen.model.provider, rationale=rationale,
                                 estimated_cost=chosen.cost, confidence=chosen.confidence)
        return Routed(decision, chosen.model, constraints, preset)

    def _tiered(self, request: ChatRequest, constraints: Constraints, preset: Preset | None,
                estimate: Estimate | None = None, capability: str = "chat", prompt_tokens: int | None = None) -> Routed:
        estimate = estimate or self.estimator.estimate(request)
        if prompt_tokens is None:
            prompt_tokens = count_message_tokens(request.messages)
        target = tier_for(estimate, preset.tier_shift if preset else 0)
        prefer_local = bool(preset and preset.prefer_local)
        output = request.max_tokens
        # One pass, best per tier kept on the fly: this loop is the router's hot path (see
        # benchmarks/routing_decision.py), so it checks the constraints inline, cheapest test first.
        best: list[tuple[tuple[bool, float, bool, int], ModelInfo, float] | None] = [None, None, None]
        regions, needs, min_context = constraints.regions, constraints.capabilities, constraints.min_context
        excluded, max_cost, scope = constraints.exclude_providers, constraints.max_cost, constraints.scope
        over_budget = False
        constrained = regions is not None or needs or excluded or capability != "chat" or scope is not None
        for model, level, price_in, price_out, max_out, region, caps, window, provider, local, not_chat in self._rows:
            if window < min_context:
                continue
            if constrained and ((regions is not None and region not in regions) or provider in excluded
                                or (needs and not needs <= caps) or (capability != "chat" and capability not in caps)
                                or (scope is not None and model.name not in scope)):
                continue
            cost = (prompt_tokens * price_in + (output or max_out) * price_out) / 1_000_000
            if max_cost is not None and cost > max_cost:
                over_budget = True
                continue
            current = best[level]
            if current is not None and cost > current[0][1]:
                continue  # cheaper one already found: skip building the tie-break key
            key = (not (prefer_local and local), cost, not_chat, -window)
            if current is None or key < current[0]:
                best[level] = (key, model, cost)
        rank = TIER_RANK[target] - 1
        for level in sorted(range(3), key=lambda t: (abs(t - rank), t if over_budget else -t)):
            found = best[level]
            if found is None:
                continue
            _, model, cost = found
            tier = TIERS[level]
            moved = "" if tier == target else f"; no eligible {target} model, took {tier}"
            parts = [estimate.describe(), f"tier {target}" + (f" ({preset.name} preset)" if preset else ""),
                     *constraints.reasons]
            rationale = "; ".join(parts) + moved + f"; cheapest eligible {tier} model"
            decision = RouteDecision(model=model.name, provider=model.provider, rationale=rationale,
                                     estimated_cost=cost, confidence=0.85 if tier == target else 0.6)
            return Routed(decision, model, constraints, preset)
        lacks = f"lacks {capability}"
        rejected = [f"{m.name}: {constraints.violation(m, estimate_cost(request, m, prompt_tokens)) or lacks}"
                    for m in self._chat_models[:6]]
        rejected += [f"{m.name} cannot run here: {reason}" for m, reason in self._unrunnable[:3]]
        detail = "; ".join(rejected) or "no chat models are enabled"
        limits = "; ".join(constraints.reasons) or "no constraints"
        raise BadRequestError(f"no enabled model satisfies this request ({limits}): {detail}", code="no_route")

"""The first router: an explicit model, else a rule for the task type, else the default.

Pure logic over the catalogue and the set of enabled providers; no I/O. Every decision says why
it was made and what it is expected to cost, so the trace and the ledger can show it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from podium.catalogue import Catalogue, ModelInfo, count_message_tokens
from podium.errors import NotFoundError
from podium.types import ChatRequest, RouteDecision


class RuleRouter:
    def __init__(self, catalogue: Catalogue, default_model: str, rules: Mapping[str, str],
                 enabled_providers: Collection[str], disabled_reasons: Mapping[str, str] | None = None) -> None:
        self.catalogue = catalogue
        self.default_model = default_model
        self.rules = dict(rules)
        self.enabled_providers = enabled_providers
        self.disabled_reasons = dict(disabled_reasons or {})

    def decide(self, request: ChatRequest) -> RouteDecision:
        task = request.metadata.task_type
        if request.model:
            name, why, confidence = request.model, "requested explicitly", 1.0
        elif task and task in self.rules:
            name, why, confidence = self.rules[task], f"rule: task type '{task}'", 0.9
        else:
            name, why, confidence = self.default_model, "default model (routing.default)", 0.6
        model = self.catalogue.get(name)
        if model.provider not in self.enabled_providers:
            why = self.disabled_reasons.get(model.provider, "set its key or enable it in podium.yaml")
            raise NotFoundError(f"model '{model.name}' needs provider '{model.provider}', which is not enabled "
                                f"({why})", model=model.name,
                                provider=model.provider, code="provider_not_enabled")
        return RouteDecision(model=model.name, provider=model.provider, rationale=why,
                             estimated_cost=estimate_cost(request, model), confidence=confidence)


def estimate_cost(request: ChatRequest, model: ModelInfo) -> float:
    """Upper estimate: the whole prompt plus ``max_tokens`` of output."""
    output = request.max_tokens or model.max_output_tokens or 256
    return model.estimated_cost(count_message_tokens(request.messages, model), output)

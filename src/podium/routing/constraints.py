"""Hard limits a route must respect. A model that breaks one is never chosen, whatever its tier.

- cost: estimated cost of the request (whole prompt + max_tokens) ≤ ``max_cost``;
- data policy: the request's sensitivity decides where its data may go. By default public →
  anywhere, internal → anywhere but ``cn``, confidential → ``eu``, ``ch`` or ``local`` only (the
  seeds' privacy routing; GDPR-minded users can tighten ``internal`` in the config);
- capabilities the request needs: ``tools`` when it carries tools, ``vision`` when it carries
  images, plus any listed explicitly;
- context: the prompt plus ``max_tokens`` must fit the window;
- providers to avoid (cross-provider review: a reviewer must not share the author's provider).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from podium.catalogue import ModelInfo, count_message_tokens
from podium.types import ChatRequest, ImagePart

DEFAULT_REGIONS: dict[str, frozenset[str] | None] = {
    "public": None,
    "internal": frozenset({"eu", "us", "ch", "global", "local"}),
    "confidential": frozenset({"eu", "ch", "local"}),
}


@dataclass(frozen=True)
class Constraints:
    max_cost: float | None = None
    regions: frozenset[str] | None = None
    capabilities: frozenset[str] = frozenset()
    min_context: int = 0
    exclude_providers: frozenset[str] = frozenset()
    reasons: tuple[str, ...] = field(default_factory=tuple)

    def violation(self, model: ModelInfo, estimated_cost: float) -> str | None:
        """Why ``model`` may not serve the request, or None if it may."""
        if self.regions is not None and model.region not in self.regions:
            return f"region {model.region} not in {sorted(self.regions)}"
        missing = self.capabilities - model.capabilities
        if missing:
            return f"lacks {', '.join(sorted(missing))}"
        if model.context_window < self.min_context:
            return f"window {model.context_window:,} < {self.min_context:,} tokens needed"
        if model.provider in self.exclude_providers:
            return f"provider {model.provider} excluded"
        if self.max_cost is not None and estimated_cost > self.max_cost:
            return f"estimated ${estimated_cost:.4f} > max ${self.max_cost:.4f}"
        return None


def estimate_cost(request: ChatRequest, model: ModelInfo, prompt_tokens: int | None = None) -> float:
    """Upper estimate: the whole prompt plus ``max_tokens`` of output.

    ``prompt_tokens`` lets a caller that prices many models count the prompt once.
    """
    output = request.max_tokens or model.max_output_tokens or 256
    tokens = count_message_tokens(request.messages, model) if prompt_tokens is None else prompt_tokens
    return model.estimated_cost(tokens, output)


def constraints_for(request: ChatRequest, *, max_cost: float | None = None,
                    regions_by_sensitivity: Mapping[str, frozenset[str] | None] = DEFAULT_REGIONS,
                    regions: frozenset[str] | None = None, capabilities: frozenset[str] = frozenset(),
                    exclude_providers: frozenset[str] = frozenset(), prompt_tokens: int | None = None) -> Constraints:
    reasons = []
    sensitivity = request.metadata.sensitivity
    allowed = regions_by_sensitivity.get(sensitivity)
    if regions is not None:
        allowed = regions if allowed is None else allowed & regions
    if allowed is not None:
        reasons.append(f"{sensitivity} data → regions {', '.join(sorted(allowed))}")
    needs = set(capabilities)
    if request.tools:
        needs.add("tools")
    if any(isinstance(p, ImagePart) for m in request.messages if isinstance(m.content, list) for p in m.content):
        needs.add("vision")
    if needs:
        reasons.append(f"needs {', '.join(sorted(needs))}")
    if max_cost is not None:
        reasons.append(f"max ${max_cost:g} per request")
    tokens = count_message_tokens(request.messages) if prompt_tokens is None else prompt_tokens
    min_context = tokens + (request.max_tokens or 0)
    return Constraints(max_cost=max_cost, regions=allowed, capabilities=frozenset(needs), min_context=min_context,
                       exclude_providers=exclude_providers, reasons=tuple(reasons))

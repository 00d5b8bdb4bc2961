"""Hard limits a route must respect. A model that breaks one is never chosen, whatever its tier.

- cost: estimated cost of the request (whole prompt + max_tokens) ≤ ``max_cost``;
- data policy: the request's sensitivity decides where its data may go. By default public →
  anywhere, internal → anywhere but ``cn``, confidential → ``eu``, ``ch`` or ``local`` only (the
  seeds' privacy routing; GDPR-minded users can tighten ``internal`` in the config);
- capabilities the request needs: ``tools`` when it carries tools, ``vision`` when it carries
  images, plus any listed explicitly;
- context: the prompt plus ``max_tokens`` must fit the window;
- providers to avoid (cross-provider review: a reviewer must not share the author's provider);
- scope: the models the caller's key may reach (``podium.policy``).

Where the data may go is decided once per request (``regions_for``) and carried by the request's
policy, so the router, the strategies and the choke point all apply the same regions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from podium.catalogue import ModelInfo, count_message_tokens
from podium.types import ChatRequest, ImagePart

DEFAULT_REGIONS: dict[str, frozenset[str] | None] = {
    "public": None,
    "internal": frozenset({"eu", "us", "ch", "global", "local"}),
    "confidential": frozenset({"eu", "ch", "local"}),
}


def sensitivity_regions(overrides: Mapping[Any, Sequence[str] | None] | None) -> dict[str, frozenset[str] | None]:
    """The regions per sensitivity: the defaults, with the config's ``routing.regions_by_sensitivity``."""
    regions = dict(DEFAULT_REGIONS)
    for sensitivity, allowed in (overrides or {}).items():
        regions[sensitivity] = frozenset(allowed) if allowed is not None else None
    return regions


@dataclass(frozen=True)
class Constraints:
    max_cost: float | None = None
    regions: frozenset[str] | None = None
    capabilities: frozenset[str] = frozenset()
    min_context: int = 0
    exclude_providers: frozenset[str] = frozenset()
    reasons: tuple[str, ...] = field(default_factory=tuple)
    scope: frozenset[str] | None = None

    def violation(self, model: ModelInfo, estimated_cost: float) -> str | None:
        """Why ``model`` may not serve the request, or None if it may."""
        if self.scope is not None and model.name not in self.scope:
            return "outside the key's scope"
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


def regions_for(sensitivity: str, preset_name: str | None, preset_regions: frozenset[str] | None,
                regions_by_sensitivity: Mapping[str, frozenset[str] | None] = DEFAULT_REGIONS,
                ) -> tuple[frozenset[str] | None, str]:
    """Where a request's data may go, and why: its sensitivity's regions, narrowed by the preset's."""
    allowed = regions_by_sensitivity.get(sensitivity)
    why = [f"{sensitivity} data"] if allowed is not None else []
    if preset_regions is not None:
        allowed = preset_regions if allowed is None else allowed & preset_regions
        why.append(f"the {preset_name} preset")
    return allowed, " under ".join(why)


def constraints_for(request: ChatRequest, *, max_cost: float | None = None,
                    regions: frozenset[str] | None = None, region_reason: str = "",
                    capabilities: frozenset[str] = frozenset(), exclude_providers: frozenset[str] = frozenset(),
                    prompt_tokens: int | None = None, scope: frozenset[str] | None = None) -> Constraints:
    """``regions`` as ``regions_for`` decided them (with its reason); the rest from the request."""
    reasons = []
    if regions is not None:
        reasons.append(f"{region_reason or 'policy'} → regions {', '.join(sorted(regions))}")
    if scope is not None:
        reasons.append("within the key's scope")
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
    return Constraints(max_cost=max_cost, regions=regions, capabilities=frozenset(needs), min_context=min_context,
                       exclude_providers=exclude_providers, reasons=tuple(reasons), scope=scope)

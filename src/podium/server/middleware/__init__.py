"""Gateway middleware, built in one loop from ``gateway.middleware`` (outermost first).

    auth       → who is calling (virtual key, hashed at rest) and may they use this model
    guardrails → personal data, secrets, prompt injection: allow, redact, block or route to local/EU
    cache      → exact and semantic answer cache (memory or Redis)
    limits     → RPM and TPM token buckets per key and team (memory or Redis, atomic across instances)
    budget     → reserve the estimated cost per key and team before spending, settle the real cost after
    metrics    → Prometheus counters and histograms by model and provider
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from podium.client import Podium
from podium.errors import ConfigError
from podium.guardrails.policy import GuardrailPolicy
from podium.server.cache import ResponseCache
from podium.server.keys import KeyStore
from podium.server.metrics import Metrics
from podium.server.middleware.auth import Auth, identify
from podium.server.middleware.base import Core, GatewayCall, Handler, Outcome
from podium.server.middleware.caching import Cache, Semantic
from podium.server.middleware.guard import Guardrails
from podium.server.middleware.observe import Observe
from podium.server.middleware.quota import Budget, Limits, Quota, budget_period

__all__ = ["MIDDLEWARE", "GatewayCall", "Handler", "Outcome", "Parts", "Quota", "Semantic", "budget_period",
           "build_stack", "identify"]

MIDDLEWARE = ("auth", "guardrails", "cache", "limits", "budget", "metrics")


@dataclass
class Parts:
    """What the middleware are made of; built once by the app."""

    keys: KeyStore
    quota: Quota
    metrics: Metrics
    auth_required: bool
    guardrails: GuardrailPolicy
    cache: ResponseCache | None = None
    semantic: Semantic | None = None


def build_stack(order: Sequence[str], podium: Podium, parts: Parts) -> Handler:
    def route(call: GatewayCall) -> float:
        call.routed = podium.router.route(call.request)
        return call.routed.decision.estimated_cost

    factories: dict[str, Callable[[Handler], Any]] = {
        "auth": lambda nxt: Auth(nxt, parts.keys, parts.auth_required),
        "guardrails": lambda nxt: Guardrails(nxt, parts.guardrails),
        "cache": lambda nxt: Cache(nxt, parts.cache, podium, parts.metrics, parts.semantic)
        if parts.cache is not None else nxt,
        "limits": lambda nxt: Limits(nxt, parts.quota),
        "budget": lambda nxt: Budget(nxt, parts.quota, route),
        "metrics": lambda nxt: Observe(nxt, parts.metrics),
    }
    handler: Handler = Core(podium)
    for name in reversed(order):
        if name not in factories:
            raise ConfigError(f"unknown middleware '{name}' (one of: {', '.join(MIDDLEWARE)})",
                              key_path="gateway.middleware")
        handler = factories[name](handler)
    return handler

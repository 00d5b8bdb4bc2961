"""Gateway middleware, built in one loop from ``gateway.middleware`` (outermost first).

    auth       → who is calling (virtual key, hashed at rest) and may they ask for this model
    guardrails → personal data, secrets, prompt injection: allow, redact, block or route to local/EU
    cache      → exact and semantic answer cache (memory or Redis), kept apart per key by default
    limits     → one request from the RPM buckets per key and team; TPM into the request's policy
    budget     → the key's and team's budgets into the request's policy (held per model call)
    metrics    → Prometheus counters and histograms (recorded by the gateway for every outcome,
                 refusals included, wherever ``metrics`` stands in the list)

The innermost handler (``Core``) builds the request's policy from what the middleware decided, so
every model call the request makes — strategy members, retries, fallbacks — is held to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from podium.client import Podium
from podium.errors import ConfigError
from podium.guardrails.policy import GuardrailPolicy
from podium.policy import RequestPolicy
from podium.server.cache import ResponseCache
from podium.server.keys import Keys
from podium.server.metrics import Metrics
from podium.server.middleware.auth import Auth, identify
from podium.server.middleware.base import Core, GatewayCall, Handler, Outcome
from podium.server.middleware.caching import Cache, Semantic
from podium.server.middleware.guard import Guardrails
from podium.server.middleware.quota import Budget, Limits, Quota, budget_period
from podium.server.state import SharedState

__all__ = ["MIDDLEWARE", "GatewayCall", "Handler", "Outcome", "Parts", "Quota", "Semantic", "budget_period",
           "build_stack", "identify"]

MIDDLEWARE = ("auth", "guardrails", "cache", "limits", "budget", "metrics")


@dataclass
class Parts:
    """What the middleware are made of; built once by the app."""

    keys: Keys
    quota: Quota
    state: SharedState
    metrics: Metrics
    auth_required: bool
    guardrails: GuardrailPolicy
    cache: ResponseCache | None = None
    semantic: Semantic | None = None
    cache_share: str = "key"


def build_stack(order: Sequence[str], podium: Podium, parts: Parts) -> Handler:
    async def lookup_policy(call: GatewayCall) -> RequestPolicy:
        """The policy the semantic cache's embedding runs under: the request's regions, the key's budgets
        and limits, the request's id; no scope (the cache's embedding model is the gateway's choice)."""
        key = call.key
        return podium.policies.build(
            call.request, request_id=call.request_id, key_id=key.id if key else None,
            key_name=key.name if key else None, team=key.team if key else None,
            budgets=await parts.quota.seeded_slots(key) if "budget" in order else (),
            token_limits=parts.quota.token_limits(key) if "limits" in order else (), counters=parts.state)

    factories: dict[str, Callable[[Handler], Any]] = {
        "auth": lambda nxt: Auth(nxt, parts.keys, parts.auth_required, podium.policies.allows),
        "guardrails": lambda nxt: Guardrails(nxt, parts.guardrails),
        "cache": lambda nxt: Cache(nxt, parts.cache, podium, parts.metrics, parts.semantic, parts.cache_share,
                                   lookup_policy) if parts.cache is not None else nxt,
        "limits": lambda nxt: Limits(nxt, parts.quota),
        "budget": lambda nxt: Budget(nxt, parts.quota),
        "metrics": lambda nxt: nxt,  # recorded by the gateway itself, for every outcome
    }
    handler: Handler = Core(podium, parts.state)
    for name in reversed(order):
        if name not in factories:
            raise ConfigError(f"unknown middleware '{name}' (one of: {', '.join(MIDDLEWARE)})",
                              key_path="gateway.middleware")
        handler = factories[name](handler)
    return handler

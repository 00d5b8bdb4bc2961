"""The dashboard inside ``podium serve``: its ledger, its keys and what only the running gateway knows.

Who may look: the admin key, or a virtual key whose scope lists ``dashboard`` (``podium keys create
ops --models dashboard``; a key may hold models and the dashboard scope together). The scope is a
name no model or strategy can take, so such a key spends nothing unless its scope also names models.
Live figures the ledger does not hold come from the gateway itself: circuit states, and requests
refused before they reached the ledger (guardrail blocks, rate limits, budgets, bad keys) since the
process started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from podium.dashboard.api import SCOPE, Dashboard, bearer
from podium.dashboard.reader import LedgerReader, open_reader
from podium.errors import AuthenticationError, PermissionDeniedError

if TYPE_CHECKING:
    from podium.server.app import Gateway


class GatewayLive:
    """``api.Live`` and ``api.KeySource`` over a running gateway."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def circuits(self) -> list[dict[str, Any]]:
        return [{"id": d.id, "model": d.model.name, "provider": d.provider, "state": d.breaker.state,
                 "in_flight": d.in_flight, "latency_ewma_ms": d.latency_ewma_ms}
                for d in self.gateway.podium.deployments.all()]

    def refusals(self) -> dict[str, float]:
        counts: dict[str, float] = {}
        for metric in self.gateway.metrics.refused.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["reason"]] = counts.get(sample.labels["reason"], 0.0) + sample.value
        return counts

    async def keys(self) -> list[dict[str, Any]]:
        """Each key's public fields: never the key, its hash or its prefix."""
        found = await self.gateway.keys.list()
        return [{"id": k.id, "name": k.name, "budget": k.budget, "budget_period": k.budget_period, "rpm": k.rpm,
                 "tpm": k.tpm, "team": k.team, "revoked": k.revoked_at is not None} for k in found]

    def teams(self) -> dict[str, dict[str, Any]]:
        return {name: team.model_dump() for name, team in self.gateway.podium.settings.gateway.teams.items()}


def authorizer(gateway: Gateway) -> Any:
    async def authorize(request: Request) -> str:
        secret = bearer(request)
        if not secret:
            raise AuthenticationError("the dashboard needs the admin key or a key with the 'dashboard' scope "
                                      "(Authorization: Bearer …)", code="missing_api_key")
        if gateway._is_admin(secret):
            return "admin"
        key = await gateway.keys.lookup(secret)
        if key is None:
            raise AuthenticationError("unknown or revoked key", code="invalid_api_key")
        if key.models is None or SCOPE not in key.models:
            raise PermissionDeniedError(f"key {key.id} has no '{SCOPE}' scope", code="missing_scope")
        return f"{key.name} ({key.id})"

    return authorize


def gateway_dashboard(gateway: Gateway) -> Dashboard:
    settings = gateway.podium.settings
    reader: LedgerReader | None = None
    if settings.ledger_dsn or settings.ledger_path is not None:
        reader = open_reader(path=settings.ledger_path, dsn=settings.ledger_dsn)
    from podium.server.app import endpoint  # every gateway route's request id and log line (never the key)

    live = GatewayLive(gateway)
    return Dashboard(reader, settings.catalogue.find(settings.routing.baseline_model), authorizer(gateway), live,
                     live, mode="gateway", refresh_seconds=settings.dashboard.refresh_seconds, around=endpoint)

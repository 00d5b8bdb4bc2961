"""ProviderRegistry: the providers that are on, and questions about the models they serve.

This is the seeds' ``ProviderRegistry`` API: register, list providers, query models by
capability / tier / cost / provider / region / context, the cheapest or best model for a need,
and a concurrent availability check. It answers from the catalogue; only ``check_availability``
touches the network.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from podium.catalogue import Catalogue, ModelInfo
from podium.errors import NotFoundError
from podium.providers.base import Health, Provider


class ProviderRegistry:
    def __init__(self, catalogue: Catalogue, providers: Iterable[Provider] = ()) -> None:
        self.catalogue = catalogue
        self._providers: dict[str, Provider] = {}
        for provider in providers:
            self.register(provider)

    def register(self, provider: Provider) -> None:
        self._providers[provider.name] = provider

    def find_provider(self, name: str) -> Provider | None:
        return self._providers.get(name)

    def unregister(self, name: str) -> None:
        self._providers.pop(name, None)

    def get_provider(self, name: str) -> Provider:
        try:
            return self._providers[name]
        except KeyError:
            on = ", ".join(sorted(self._providers)) or "none"
            raise NotFoundError(f"provider '{name}' is not enabled (enabled: {on}); "
                                "set its key or enable it in podium.yaml", provider=name) from None

    def list_providers(self) -> list[str]:
        return sorted(self._providers)

    def cannot_run(self, model: ModelInfo) -> str | None:
        """Why ``model`` cannot be served here (its provider is off, or has no runtime or weights for it
        on this machine), or None. A provider says so with an optional ``unavailable(model)`` method."""
        provider = self._providers.get(model.provider)
        if provider is None:
            return f"its provider '{model.provider}' is not enabled"
        check = getattr(provider, "unavailable", None)
        return check(model) if check is not None else None

    def list_models(
        self,
        capability: str | None = None,
        tier: str | None = None,
        max_cost: float | None = None,
        provider: str | None = None,
        region: str | Iterable[str] | None = None,
        min_context: int | None = None,
        *,
        local: bool | None = None,
        include_unavailable: bool = False,
    ) -> list[ModelInfo]:
        """Catalogue rows matching every given filter, served by a registered provider.

        ``max_cost`` bounds the blended price (3 parts input to 1 part output) in USD per million
        tokens; ``region`` takes one region or several.
        """
        regions = {region} if isinstance(region, str) else set(region) if region is not None else None
        return [
            m for m in self.catalogue
            if (include_unavailable or m.provider in self._providers)
            and (capability is None or m.has(capability))
            and (tier is None or m.tier == tier)
            and (max_cost is None or m.blended_price <= max_cost)
            and (provider is None or m.provider == provider)
            and (regions is None or m.region in regions)
            and (min_context is None or m.context_window >= min_context)
            and (local is None or m.local == local)
        ]

    def find_cheapest_model(self, capability: str | None = None, **filters: Any) -> ModelInfo | None:
        """Lowest blended price; among equals the higher tier, then the larger context."""
        candidates = self.list_models(capability, **filters)
        return min(candidates, key=lambda m: (m.blended_price, -m.tier_rank, -m.context_window), default=None)

    def find_best_model(
        self, capability: str | None = None, *, prefer_local: bool = False, **filters: Any
    ) -> ModelInfo | None:
        """Highest tier; among equals the cheaper. ``prefer_local`` puts local models first."""
        candidates = self.list_models(capability, **filters)
        if prefer_local and any(m.local for m in candidates):
            candidates = [m for m in candidates if m.local]
        return min(candidates, key=lambda m: (-m.tier_rank, m.blended_price, -m.context_window), default=None)

    async def check_availability(self, timeout: float = 10.0) -> dict[str, Health]:  # noqa: ASYNC109
        """Every provider's health, checked concurrently; a hung provider costs ``timeout``, once."""

        async def one(provider: Provider) -> Health:
            start = time.perf_counter()
            try:
                return await asyncio.wait_for(provider.health(), timeout)
            except TimeoutError:
                return Health(False, f"no answer within {timeout:g}s", (time.perf_counter() - start) * 1000)
            except Exception as exc:  # a broken health check is an unhealthy provider, not a crash
                return Health(False, f"{type(exc).__name__}: {exc}", (time.perf_counter() - start) * 1000)

        names = list(self._providers)
        results = await asyncio.gather(*(one(self._providers[n]) for n in names))
        return dict(zip(names, results, strict=True))

    def summary(self) -> dict[str, Any]:
        models = self.list_models()
        return {
            "providers": self.list_providers(),
            "total_models": len(models),
            "models_per_provider": dict(Counter(m.provider for m in models)),
            "models_per_tier": dict(Counter(m.tier for m in models)),
            "models_per_region": dict(Counter(m.region for m in models)),
            "local_models": sum(m.local for m in models),
            "cheapest": (c.name if (c := self.find_cheapest_model()) else None),
            "best": (b.name if (b := self.find_best_model()) else None),
        }

    async def aclose(self) -> None:
        await asyncio.gather(*(p.aclose() for p in self._providers.values()), return_exceptions=True)

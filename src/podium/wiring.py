"""From settings to live parts: providers, deployments, balancing, fallbacks, router.

Kept apart from ``client`` so the request path reads as a story and the construction as a list.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from podium.catalogue import ModelInfo
from podium.config import Settings
from podium.config.schema import DeploymentConfig
from podium.invoke import Invoker
from podium.providers import Provider, ProviderRegistry
from podium.resilience.balancing import make_policy
from podium.resilience.breaker import CircuitBreaker
from podium.resilience.deployments import Deployment
from podium.resilience.executor import ResilienceOptions, ResilientCaller
from podium.resilience.fallbacks import EmergencyRule, FallbackRule, Fallbacks
from podium.resilience.retry import RetryPolicy
from podium.routing import Router
from podium.routing.constraints import sensitivity_regions


def build_providers(settings: Settings) -> list[Provider]:
    from podium.providers.plugins import build_provider, provider_factory

    built = []
    for spec in settings.providers.values():
        # A known host without an installed adapter is skipped unless the config names it (then the
        # missing adapter is reported).
        if spec.enabled and (spec.configured or provider_factory(spec.kind) is not None):
            built.append(build_provider(spec))
    return built


class DeploymentTable:
    """Deployments per model name, created on first use; the catalogue row's own provider by default."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self._table: dict[str, list[Deployment]] = {}

    def _breaker(self) -> CircuitBreaker:
        b = self.settings.resilience.breaker
        return CircuitBreaker(failures=b.failures, cooldown=b.cooldown, probes=b.probes, clock=self.clock)

    def __call__(self, model: ModelInfo) -> Sequence[Deployment]:
        found = self._table.get(model.name)
        if found is not None:
            return found
        configured = self.settings.deployments.get(model.name)
        if not configured:
            found = [Deployment(f"{model.name}@{model.provider}", model, breaker=self._breaker(), clock=self.clock)]
        else:
            found = []
            for i, dep in enumerate(configured):
                row = model.model_copy(update={"provider": dep.provider, "model_id": dep.model_id or model.model_id,
                                               "region": self._region(model, dep)})
                ident = f"{model.name}@{dep.provider}" + (f"#{i}" if sum(d.provider == dep.provider
                                                                         for d in configured) > 1 else "")
                found.append(Deployment(ident, row, weight=dep.weight, rpm=dep.rpm, tpm=dep.tpm,
                                        breaker=self._breaker(), clock=self.clock))
        self._table[model.name] = found
        return found

    def _region(self, model: ModelInfo, dep: DeploymentConfig) -> str:
        """Where a deployment processes data: its own ``region``, else its provider's (when that is not the
        model's own provider), else the model's. Data goes where the deployment runs."""
        if dep.region is not None:
            return dep.region
        spec = self.settings.providers.get(dep.provider)
        if dep.provider != model.provider and spec is not None and spec.region is not None:
            return spec.region
        return model.region

    def all(self) -> list[Deployment]:
        return [d for deps in self._table.values() for d in deps]


def build_router(settings: Settings, registry: ProviderRegistry,
                 is_strategy: Callable[[str], bool] | None = None) -> Router:
    enabled = registry.list_providers()
    disabled = {name: spec.reason for name, spec in settings.providers.items() if name not in enabled}
    routing = settings.routing
    return Router(settings.catalogue, enabled, rules={r.task_type: r.model for r in routing.rules},
                  default_model=routing.default, preset=routing.preset, max_cost=routing.max_cost_per_request,
                  regions_by_sensitivity=sensitivity_regions(routing.regions_by_sensitivity),
                  disabled_reasons=disabled, is_strategy=is_strategy, cannot_run=registry.cannot_run,
                  learned=settings.learned)


def build_caller(settings: Settings, registry: ProviderRegistry, invoker: Invoker,
                 table: DeploymentTable) -> ResilientCaller:
    r = settings.resilience
    fallbacks = Fallbacks(
        settings.catalogue, registry.list_providers(),
        rules=[FallbackRule(f.model, tuple(f.to), frozenset(f.on)) for f in r.fallbacks],
        emergency=[EmergencyRule(e.provider, tuple(e.to)) for e in r.emergency],
        context_fallback=r.context_fallback, filter_fallback=r.filter_fallback)
    options = ResilienceOptions(RetryPolicy(r.retries.max_attempts, r.retries.base_delay, r.retries.max_delay,
                                            r.retries.max_retry_after),
                                attempt_timeout=r.attempt_timeout, deadline=r.deadline)
    return ResilientCaller(invoker, table, make_policy(r.balancing), fallbacks, options)

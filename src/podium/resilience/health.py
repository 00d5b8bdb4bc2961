"""Health: what the breakers know, and optional background probes that keep them current.

A probe calls every provider's ``health()`` (a model listing, never a paid generation) on an
interval. A provider that fails its probe has its deployments' circuits tripped open, so the next
request skips it without paying a timeout; one that passes closes circuits that were open, so a
recovered provider is used again before the cooldown would have let a request probe it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from podium.providers import Health, ProviderRegistry
from podium.resilience.deployments import Deployment


@dataclass(frozen=True)
class DeploymentHealth:
    id: str
    provider: str
    state: str
    in_flight: int
    latency_ewma_ms: float | None
    retry_in: float
    circuit_opened: int

    @classmethod
    def of(cls, dep: Deployment) -> DeploymentHealth:
        return cls(dep.id, dep.provider, dep.breaker.state, dep.in_flight, dep.latency_ewma_ms,
                   round(dep.breaker.retry_in(), 2), dep.breaker.opened_count)


def apply_probe(results: dict[str, Health], deployments: list[Deployment]) -> None:
    for dep in deployments:
        health = results.get(dep.provider)
        if health is None:
            continue
        if not health.ok:
            dep.breaker.trip()
        elif dep.breaker.state != "closed":
            dep.breaker.record_success()


class HealthProber:
    def __init__(self, registry: ProviderRegistry, deployments: Any, interval: float, timeout: float = 5.0) -> None:
        self.registry = registry
        self.deployments = deployments  # a DeploymentTable: ``all()`` lists the deployments in use
        self.interval = interval
        self.timeout = timeout
        self.last: dict[str, Health] = {}
        self._task: asyncio.Task[None] | None = None

    async def probe_once(self) -> dict[str, Health]:
        self.last = await self.registry.check_availability(timeout=self.timeout)
        apply_probe(self.last, self.deployments.all())
        return self.last

    async def _loop(self) -> None:
        while True:
            await self.probe_once()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="podium-health-probes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

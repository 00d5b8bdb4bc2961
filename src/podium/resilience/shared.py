"""Deployment limits and circuit state shared by every gateway instance (through Redis).

Two things a single process cannot know alone:

- a deployment's RPM/TPM is the provider's limit for *all* instances together. With a shared
  store, a deployment that has limits is admitted by the same atomic token buckets the gateway
  uses for keys; the in-process count still applies first. Deployments without limits pay nothing.
- a circuit opened by one instance should keep the others from calling a dead deployment too.
  An instance that opens a circuit publishes it (a key that lives for the cooldown); every
  instance reads the published circuits in the background every ``interval`` seconds and opens its
  own breaker for them. So the request path never waits on Redis for breaker state; another
  instance learns of an open circuit within ``interval`` (or sooner, by failing itself).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Protocol

from podium.resilience.deployments import Deployment


class DeploymentStore(Protocol):
    async def take(self, buckets: list[tuple[str, int, float]]) -> tuple[bool, float]: ...

    async def mark_open(self, key: str, seconds: float) -> None: ...

    async def open_marks(self, keys: list[str]) -> list[bool]: ...


class SharedDeployments:
    def __init__(self, store: DeploymentStore, deployments: Callable[[], Sequence[Deployment]],
                 interval: float = 0.5) -> None:
        self.store, self.deployments, self.interval = store, deployments, interval
        self._task: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def admit(self, dep: Deployment, tokens: int) -> bool:
        """One more request of ``tokens`` on ``dep`` within its limits across every instance."""
        buckets = ([(f"dep:{dep.id}:rpm", dep.rpm, 1.0)] if dep.rpm else []) + \
            ([(f"dep:{dep.id}:tpm", dep.tpm, float(tokens))] if dep.tpm else [])
        if not buckets:
            return True
        ok, _ = await self.store.take(buckets)
        return ok

    def opened(self, dep: Deployment) -> None:
        """Called when this instance opened ``dep``'s circuit: tell the others (without waiting)."""
        task = asyncio.ensure_future(self.store.mark_open(f"breaker:{dep.id}", dep.breaker.cooldown))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def flush(self) -> None:
        """Wait for this instance's publications to reach the store."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def sync_once(self) -> list[str]:
        """Open local circuits that another instance opened; returns their ids."""
        deps = [d for d in self.deployments() if d.breaker.state == "closed"]
        if not deps:
            return []
        marks = await self.store.open_marks([f"breaker:{d.id}" for d in deps])
        tripped = []
        for dep, is_open in zip(deps, marks, strict=True):
            if is_open:
                dep.breaker.trip()
                tripped.append(dep.id)
        return tripped

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a Redis hiccup must not end the loop
                await self.sync_once()
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

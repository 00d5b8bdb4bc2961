"""Deployments: one model name served by one or more (provider, model id) pairs with their own limits.

Every catalogue model has an implicit deployment on its own provider. ``deployments:`` in the
config adds more (another region, another key, another host serving the same weights), each with
a weight for balancing and optional RPM/TPM limits. A deployment tracks what balancing needs:
requests in flight, a moving average of latency, the last minute's requests and tokens, and its
circuit breaker.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from podium.catalogue import ModelInfo
from podium.resilience.breaker import CircuitBreaker

WINDOW = 60.0  # seconds over which RPM and TPM are counted


@dataclass
class Deployment:
    id: str
    model: ModelInfo  # the catalogue row with this deployment's provider and model id
    weight: float = 1.0
    rpm: int | None = None
    tpm: int | None = None
    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    in_flight: int = 0
    latency_ewma_ms: float | None = None
    _events: deque[tuple[float, int]] = field(default_factory=deque, repr=False)

    @property
    def provider(self) -> str:
        return self.model.provider

    def _trim(self) -> None:
        horizon = self.clock() - WINDOW
        while self._events and self._events[0][0] < horizon:
            self._events.popleft()

    def has_capacity(self, tokens: int = 0) -> bool:
        """Whether one more request of ``tokens`` fits this minute's RPM and TPM."""
        if self.rpm is None and self.tpm is None:
            return True
        self._trim()
        if self.rpm is not None and len(self._events) + 1 > self.rpm:
            return False
        return self.tpm is None or sum(t for _, t in self._events) + tokens <= self.tpm

    def started(self, tokens: int) -> None:
        self.in_flight += 1
        if self.rpm is not None or self.tpm is not None:
            self._events.append((self.clock(), tokens))

    def finished(self, latency_ms: float | None) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        if latency_ms is not None:
            alpha = 0.3
            self.latency_ewma_ms = latency_ms if self.latency_ewma_ms is None else (
                alpha * latency_ms + (1 - alpha) * self.latency_ewma_ms)

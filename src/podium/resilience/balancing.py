"""Balancing policies: the order in which a model's deployments are tried.

A policy only orders; skipping open breakers and full deployments is the caller's job, so every
policy behaves the same under failure. Policies are looked up by name (``resilience.balancing``)
and new ones can be registered with ``register_policy``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Protocol

from podium.errors import ConfigError
from podium.resilience.deployments import Deployment


class BalancingPolicy(Protocol):
    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]: ...


class WeightedRandom:
    """Weighted shuffle (Efraimidis-Spirakis): the first pick follows the weights, the rest too."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        keyed = [(self.rng.random() ** (1.0 / max(d.weight, 1e-9)), d) for d in deployments]
        return [d for _, d in sorted(keyed, key=lambda kd: kd[0], reverse=True)]


class RoundRobin:
    """Smooth weighted round robin (nginx's algorithm): weights honoured, picks evenly spread."""

    def __init__(self) -> None:
        self.current: dict[str, float] = {}

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        total = sum(d.weight for d in deployments)
        for d in deployments:
            self.current[d.id] = self.current.get(d.id, 0.0) + d.weight
        first = max(deployments, key=lambda d: self.current[d.id])
        self.current[first.id] -= total
        return [first, *(d for d in deployments if d is not first)]


class LeastLatency:
    """Lowest moving-average latency first; deployments never measured go first, to get measured."""

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        return sorted(deployments, key=lambda d: -1.0 if d.latency_ewma_ms is None else d.latency_ewma_ms)


class LeastBusy:
    """Fewest requests in flight first; ties by weight."""

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        return sorted(deployments, key=lambda d: (d.in_flight, -d.weight))


class LowestCost:
    """Cheapest deployment first (prices can differ per host for the same weights)."""

    def order(self, deployments: Sequence[Deployment]) -> list[Deployment]:
        return sorted(deployments, key=lambda d: (d.model.blended_price, -d.weight))


_POLICIES: dict[str, Callable[[], BalancingPolicy]] = {
    "weighted": WeightedRandom, "round_robin": RoundRobin, "least_latency": LeastLatency,
    "least_busy": LeastBusy, "lowest_cost": LowestCost,
}


def register_policy(name: str, factory: Callable[[], BalancingPolicy]) -> None:
    _POLICIES[name] = factory


def make_policy(name: str) -> BalancingPolicy:
    try:
        return _POLICIES[name]()
    except KeyError:
        raise ConfigError(f"unknown balancing policy '{name}' (one of: {', '.join(sorted(_POLICIES))})",
                          key_path="resilience.balancing") from None


__all__ = ["BalancingPolicy", "LeastBusy", "LeastLatency", "LowestCost", "RoundRobin", "WeightedRandom",
           "make_policy", "register_policy"]

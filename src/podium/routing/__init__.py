"""Routing: which model or strategy serves a request, and why. Pure logic, no I/O."""

from podium.routing.complexity import ComplexityEstimator, Estimate, HeuristicEstimator
from podium.routing.constraints import Constraints, constraints_for, estimate_cost, regions_for
from podium.routing.presets import PRESETS, Preset, get_preset, preset_for
from podium.routing.router import Routed, Router, tier_for

__all__ = [
    "PRESETS",
    "ComplexityEstimator",
    "Constraints",
    "Estimate",
    "HeuristicEstimator",
    "Preset",
    "Routed",
    "Router",
    "constraints_for",
    "estimate_cost",
    "get_preset",
    "preset_for",
    "regions_for",
    "tier_for",
]

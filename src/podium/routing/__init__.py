"""Routing: which model or strategy serves a request, and why. Pure logic, no I/O."""

from podium.routing.rules import RuleRouter, estimate_cost

__all__ = ["RuleRouter", "estimate_cost"]

"""Orchestration strategies: one request answered by several model calls. Pure logic over an injected caller.

Imported lazily (PEP 562): ``from podium.strategies import Consensus`` works, but the request path
that only asks "is this a strategy?" does not pay for importing them all.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {"Budget": "base", "NullObserver": "base", "Observer": "base", "Strategy": "base", "StrategyContext": "base",
          "Cascade": "cascade", "Debate": "debate", "Mixture": "debate", "Pipeline": "pipeline",
          "parse_plan": "pipeline", "Consensus": "simple", "Single": "simple", "Vote": "simple"}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'podium.strategies' has no attribute '{name}'")
    return getattr(importlib.import_module(f"podium.strategies.{_WHERE[name]}"), name)

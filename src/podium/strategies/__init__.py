"""Orchestration strategies: one request answered by several model calls. Pure logic over an injected caller."""

from podium.strategies.base import Budget, NullObserver, Observer, Strategy, StrategyContext
from podium.strategies.cascade import Cascade
from podium.strategies.debate import Debate, Mixture
from podium.strategies.pipeline import Pipeline, parse_plan
from podium.strategies.simple import Consensus, Single, Vote

__all__ = [
    "Budget",
    "Cascade",
    "Consensus",
    "Debate",
    "Mixture",
    "NullObserver",
    "Observer",
    "Pipeline",
    "Single",
    "Strategy",
    "StrategyContext",
    "Vote",
    "parse_plan",
]

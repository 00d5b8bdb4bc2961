"""Strategies by name: ``consensus:a,b,c`` in a request's ``model``, or a named strategy in the config.

    single:m                 one model (the same as model=m)
    cascade:a,b,c            cheap → expensive; stops at the first confident answer
    vote:a,b,c  vote:a*5     k answers, normalised, majority (self-consistency with ``*k``)
    consensus:a,b,c          parallel; agreement score; the most central answer
    debate:a,b               two rounds of reading each other; the most central answer
    mixture:a,b,c            a and b propose, c aggregates (the last name is the aggregator)
    pipeline  pipeline:m     conductor (m, or the best planner) → workers → cross-provider review
    fast-vote                the seeds' "fast models agree 3x": vote over three fast models

Any name inside a strategy may itself be a strategy (named in the config), so they nest.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from podium.config.schema import StrategyConfig
from podium.errors import BadRequestError
from podium.policy import DEFAULT_MAX_CALLS
from podium.strategies.base import Budget, Strategy
from podium.strategies.cascade import Acceptance, Cascade
from podium.strategies.debate import Debate, Mixture
from podium.strategies.names import KINDS, inline_members, is_strategy, referenced_names
from podium.strategies.pipeline import Picker, Pipeline
from podium.strategies.semantic import AnswerEmbedder
from podium.strategies.simple import Consensus, Single, Vote

__all__ = ["KINDS", "StrategyEnv", "budget_of", "build", "is_strategy", "referenced_names"]


@dataclass
class StrategyEnv:
    """What building a strategy needs from outside: model choice by tier, providers, embeddings."""

    pick: Picker
    provider_of: Callable[[str], str]
    fast_models: Callable[[int], list[str]]
    embedder: AnswerEmbedder | None = None  # free-text answers compared by meaning (semantic.py), else by words
    max_calls: int = DEFAULT_MAX_CALLS  # the fan-out cap: an inline strategy asking for more is refused up front


def _names(spec: str, kind: str, max_calls: int) -> list[str]:
    names = [model for model, times in inline_members(spec, max_calls) for _ in range(times)]
    if not names and kind not in {"pipeline", "fast-vote"}:
        raise BadRequestError(f"strategy '{spec}' names no models; write e.g. {kind}:model-a,model-b")
    return names


def _judge(env: StrategyEnv) -> Callable[[], str]:
    """A panel's default judge when no two answers agree: the best advanced-tier model (chosen when needed)."""
    return lambda: env.pick("advanced", None)


def budget_of(name: str, named: Mapping[str, StrategyConfig], request_cap: float | None) -> Budget:
    config = named.get(name)
    caps = [c for c in (config.budget if config else None, request_cap) if c is not None]
    return Budget(min(caps) if caps else None, config.on_budget_exhausted if config else "best")


def build(name: str, named: Mapping[str, StrategyConfig], env: StrategyEnv) -> Strategy:
    if name in named:
        return _from_config(name, named[name], env)
    kind = name.split(":", 1)[0]
    models = _names(name, kind, env.max_calls)
    label = name
    if kind == "single":
        return Single(models[0], name=label)
    if kind == "cascade":
        return Cascade(models, embedder=env.embedder, name=label)
    if kind == "vote":
        return Vote(models, embedder=env.embedder, name=label)
    if kind == "fast-vote":
        return Vote(env.fast_models(3), embedder=env.embedder, name=label)
    if kind == "consensus":
        return Consensus(models, embedder=env.embedder, judge=_judge(env), name=label)
    if kind == "debate":
        return Debate(models, embedder=env.embedder, judge=_judge(env), name=label)
    if kind == "mixture":
        if len(models) < 2:
            raise BadRequestError(f"'{name}': a mixture needs proposers and an aggregator (the last name)")
        return Mixture([models[:-1]], models[-1], name=label)
    if kind == "pipeline":
        return Pipeline(models[0] if models else env.pick("advanced", None), env.pick, env.provider_of, name=label)
    raise BadRequestError(f"unknown strategy '{name}' (one of: {', '.join(sorted(KINDS))})")


def _learned_acceptance(c: StrategyConfig) -> Acceptance:
    """The calibrated acceptance file named by ``accept: learned`` (checked and made absolute at config
    load), read once per file and threshold rather than on every request."""
    if c.acceptance_file is None:  # the config check refuses this; a StrategyConfig built in code may not
        raise BadRequestError("accept: learned needs acceptance_file")
    return _acceptance(c.acceptance_file, c.threshold if "threshold" in c.model_fields_set else None)


@functools.lru_cache(maxsize=32)
def _acceptance(path: str, threshold: float | None) -> Acceptance:
    from podium.strategies.acceptance import load_acceptance

    return load_acceptance(path, threshold)


def _from_config(name: str, c: StrategyConfig, env: StrategyEnv) -> Strategy:
    if c.type == "single":
        return Single(c.models[0], name=name)
    if c.type == "cascade":
        accept: Acceptance = _learned_acceptance(c) if c.accept == "learned" else c.accept
        return Cascade(c.models, accept=accept, threshold=c.threshold, verifier=c.verifier, embedder=env.embedder,
                       name=name)
    if c.type == "vote":
        return Vote(c.models or env.fast_models(3), timeout=c.timeout, embedder=env.embedder, name=name)
    if c.type == "consensus":
        return Consensus(c.models, timeout=c.timeout, synthesizer=c.synthesizer, embedder=env.embedder,
                         judge=_judge(env), name=name)
    if c.type == "debate":
        return Debate(c.models, rounds=c.rounds, threshold=c.threshold, synthesizer=c.synthesizer,
                      embedder=env.embedder, judge=_judge(env), name=name)
    if c.type == "mixture":
        aggregator = c.aggregator or c.models[-1]
        proposers = c.models if c.aggregator else c.models[:-1]
        return Mixture([proposers] * c.layers, aggregator, name=name)
    return Pipeline(c.conductor or env.pick("advanced", None), env.pick, env.provider_of,
                    max_subtasks=c.max_subtasks, max_revisions=c.max_revisions, review=c.review, name=name)

"""Experiments and shadow trials checked when the config loads, after the schema's own checks.

The schema says what keys exist and the ranges of numbers (``sample`` in 0..1); this step checks
what the schema cannot: names that must resolve (an arm's model or strategy, a shadow's candidate
and judge), weights that must be positive, a split that names exactly the arms. A wrong experiment
must stop the config from loading with a ``ConfigError`` naming its key path, never send traffic
to an arm that cannot exist.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from podium.catalogue import Catalogue
from podium.config.schema import ExperimentConfig, ShadowConfig, StrategyConfig
from podium.errors import ConfigError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
EXPERIMENT_PREFIX = "experiment:"


def _name(name: str, what: str, key_path: str) -> None:
    if not NAME.match(name):
        raise ConfigError(f"{what} name '{name[:80]}' must be 1 to 64 letters, digits, '_', '.' or '-', starting "
                          "with a letter or digit (it goes into the x-podium-experiment header)", key_path=key_path)


def _chat_model(name: str, catalogue: Catalogue, key_path: str) -> None:
    if name not in catalogue:
        raise ConfigError(catalogue.missing(name), key_path=key_path)
    model = catalogue.get(name)
    if "chat" not in model.capabilities:
        raise ConfigError(f"'{name}' is not a chat model", key_path=key_path)


def _strategy(name: str, catalogue: Catalogue, named: Mapping[str, StrategyConfig], key_path: str) -> None:
    from podium.strategies.names import KINDS

    if name in named:
        return
    if ":" not in name or name.split(":", 1)[0] not in KINDS:
        raise ConfigError(f"'{name[:80]}' is not a strategy: name one under strategies ("
                          f"{', '.join(sorted(named)) or 'none defined'}) or write one inline, e.g. vote:a,b",
                          key_path=key_path)
    from podium.config.resolve import check_inline_members

    check_inline_members(name, key_path, catalogue, named)


def check_experiment(name: str, exp: ExperimentConfig, catalogue: Catalogue,
                     named: Mapping[str, StrategyConfig]) -> None:
    where = f"experiments.{name}"
    _name(name, "an experiment's", where)
    if len(exp.arms) < 2:
        raise ConfigError("an experiment needs at least two arms (a control and a candidate)", key_path=f"{where}.arms")
    for arm, weight in exp.split.items():
        if not (math.isfinite(weight) and weight > 0):
            raise ConfigError(f"the weight of arm '{arm}' must be a positive number (got {weight!r}); remove the arm "
                              "to send it nothing", key_path=f"{where}.split.{arm}")
    if set(exp.split) != set(exp.arms):
        missing = sorted(set(exp.arms) - set(exp.split))
        extra = sorted(set(exp.split) - set(exp.arms))
        detail = "; ".join([*(f"arm '{a}' has no weight" for a in missing),
                            *(f"'{a}' is not one of the arms" for a in extra)])
        raise ConfigError(f"split and arms must name the same arms: {detail}", key_path=f"{where}.split")
    if exp.control not in exp.arms:
        raise ConfigError(f"the control arm '{exp.control}' is not one of the arms ({', '.join(exp.arms)}); "
                          "name one with control: ARM", key_path=f"{where}.control")
    for arm, spec in exp.arms.items():
        path = f"{where}.arms.{arm}"
        _name(arm, "an arm's", path)
        given = [k for k in ("model", "strategy", "preset") if getattr(spec, k) is not None]
        if len(given) != 1:
            raise ConfigError(f"an arm needs exactly one of model, strategy or preset (got "
                              f"{', '.join(given) or 'none'})", key_path=path)
        if spec.model is not None:
            if spec.model in named:
                raise ConfigError(f"'{spec.model}' is a strategy: write it as strategy: {spec.model}",
                                  key_path=f"{path}.model")
            _chat_model(spec.model, catalogue, f"{path}.model")
        elif spec.strategy is not None:
            _strategy(spec.strategy, catalogue, named, f"{path}.strategy")
        elif spec.preset is not None:
            from podium.routing.presets import PRESETS

            if spec.preset not in PRESETS:
                raise ConfigError(f"unknown preset '{spec.preset[:80]}' (one of: {', '.join(sorted(PRESETS))})",
                                  key_path=f"{path}.preset")


def check_shadow(name: str, trial: ShadowConfig, catalogue: Catalogue) -> None:
    where = f"shadow.{name}"
    _name(name, "a shadow trial's", where)
    _chat_model(trial.candidate, catalogue, f"{where}.candidate")
    if trial.compare != "answers":
        kind, _, judge = trial.compare.partition(":")
        if kind != "judge" or not judge:
            raise ConfigError(f"compare must be 'answers' or 'judge:MODEL' (got '{trial.compare[:80]}')",
                              key_path=f"{where}.compare")
        _chat_model(judge, catalogue, f"{where}.compare")


def check_all(experiments: Mapping[str, ExperimentConfig], shadow: Mapping[str, ShadowConfig], catalogue: Catalogue,
              named: Mapping[str, StrategyConfig]) -> None:
    for name, exp in experiments.items():
        check_experiment(name, exp, catalogue, named)
    for name, trial in shadow.items():
        check_shadow(name, trial, catalogue)

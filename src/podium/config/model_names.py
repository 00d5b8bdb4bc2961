"""Model names in podium.yaml, spelled any way a client may spell them, turned into catalogue names.

A config may name a model by its vendor id (``claude-opus-4-5-20251101``) or as ``provider/model_id``
wherever it names a model (routing, fallbacks, the emergency table, deployments, strategies, the
embedding and semantic-cache models). Several of those places are later compared by name, not looked
up (a deployment list is found by the model's catalogue name, a fallback rule matches the failed
model's name), so they are rewritten here, once, to catalogue names; the checks that follow then see
one spelling. A name that resolves to no single row is left as written, so those checks report it
(unknown, or ambiguous with its candidates) at its key path.
"""

from __future__ import annotations

from collections.abc import Callable

from podium.catalogue import Catalogue
from podium.config.schema import DeploymentConfig, PodiumConfig, StrategyConfig
from podium.errors import ConfigError


def canonical_names(config: PodiumConfig, catalogue: Catalogue) -> PodiumConfig:
    """``config`` with every model name it uses replaced by the catalogue name it resolves to."""
    named = config.strategies

    def name(value: str) -> str:
        if value in named:  # a strategy's name is never read as a model's
            return value
        model = catalogue.find(value)
        return model.name if model is not None else value

    def maybe(value: str | None) -> str | None:
        return None if value is None else name(value)

    routing = config.routing.model_copy(update={
        "default": maybe(config.routing.default),
        "baseline_model": name(config.routing.baseline_model),
        "embedding_model": maybe(config.routing.embedding_model),
        "rules": [rule.model_copy(update={"model": name(rule.model)}) for rule in config.routing.rules],
    })
    resilience = config.resilience.model_copy(update={
        "fallbacks": [rule.model_copy(update={"model": rule.model if rule.model == "*" else name(rule.model),
                                              "to": [name(target) for target in rule.to]})
                      for rule in config.resilience.fallbacks],
        "emergency": [rule.model_copy(update={"to": [name(target) for target in rule.to]})
                      for rule in config.resilience.emergency],
    })
    cache = config.gateway.cache.model_copy(update={"semantic_model": maybe(config.gateway.cache.semantic_model)})
    return config.model_copy(update={
        "routing": routing,
        "resilience": resilience,
        "gateway": config.gateway.model_copy(update={"cache": cache}),
        "deployments": _deployments(config, name),
        "strategies": {key: _strategy(strategy, name) for key, strategy in named.items()},
    })


def _deployments(config: PodiumConfig, name: Callable[[str], str]) -> dict[str, list[DeploymentConfig]]:
    """Deployment lists keyed by catalogue name; two keys that name one model are an error, not a merge."""
    found: dict[str, list[DeploymentConfig]] = {}
    written: dict[str, str] = {}
    for key, deployments in config.deployments.items():
        canonical = name(key)
        if canonical in found:
            raise ConfigError(f"'{written[canonical]}' and '{key}' both name model '{canonical}'; list its "
                              "deployments under one of them", key_path=f"deployments.{key}")
        found[canonical], written[canonical] = deployments, key
    return found


def _strategy(strategy: StrategyConfig, name: Callable[[str], str]) -> StrategyConfig:
    """A named strategy with its members, verifier, synthesizer, aggregator and conductor as catalogue names
    (names of other strategies and inline strategies are kept as written)."""
    update: dict[str, object] = {"models": [name(member) for member in strategy.models]}
    for key in ("verifier", "synthesizer", "aggregator", "conductor"):
        value = getattr(strategy, key)
        if value:
            update[key] = name(value)
    return strategy.model_copy(update=update)

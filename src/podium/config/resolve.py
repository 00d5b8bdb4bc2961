"""Second step after validation: turn names into things and check that they exist.

Providers come from three places, merged in this order: the known hosts (``providers/hosts.toml``),
the environment (keys and base URLs under the vendors' own variable names) and podium.yaml.
A provider is on when the config says so, or, if the config is silent, when its key is set (or it
needs no key and has been pointed somewhere). The embedded ``local`` provider is always on.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podium.catalogue import Catalogue, bundled_catalogue, unknown_model_message
from podium.config.model_names import canonical_names
from podium.config.schema import (
    DashboardConfig,
    DefaultsConfig,
    DeploymentConfig,
    ExperimentConfig,
    GatewayConfig,
    PodiumConfig,
    ProviderConfig,
    ResilienceConfig,
    RoutingConfig,
    ShadowConfig,
    StrategyConfig,
    TelemetryConfig,
    WorkConfig,
)
from podium.errors import ConfigError, PodiumError

if TYPE_CHECKING:
    from podium.routing.learned_route import LearnedSetup

DEFAULT_MODEL = "smollm2-135m"
DEFAULT_EMBEDDING_MODEL = "minilm-l6"


@dataclass(frozen=True)
class HostRow:
    """A known provider: the data behind ``providers/hosts.toml``."""

    name: str
    kind: str
    base_url: str | None = None
    key_env: str | None = None
    base_url_env: str | None = None
    region: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    preferred_key_env: str | None = None  # read before key_env, as the vendor's SDK does (GOOGLE_API_KEY)
    host_env: str | None = None  # a variable naming only the host (GOOGLE_GEMINI_BASE_URL) ...
    api_path: str = ""  # ... to which this is added, as the vendor's SDK adds its API version


@lru_cache(maxsize=1)
def known_hosts() -> dict[str, HostRow]:
    text = resources.files("podium.providers").joinpath("hosts.toml").read_text(encoding="utf-8")
    return {name: HostRow(name=name, **row) for name, row in tomllib.loads(text).items()}


@dataclass(frozen=True)
class ProviderSpec:
    """Everything needed to build one provider. ``api_key`` stays out of repr and logs."""

    name: str
    kind: str
    enabled: bool
    reason: str
    configured: bool = False
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    key_env: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 60.0
    connect_timeout: float = 5.0
    total_timeout: float | None = None
    region: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    source: Path | None
    providers: dict[str, ProviderSpec]
    catalogue: Catalogue
    routing: RoutingConfig
    default_model: str
    ledger_path: Path | None
    defaults: DefaultsConfig
    deployments: dict[str, list[DeploymentConfig]] = field(default_factory=dict)
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    strategies: dict[str, StrategyConfig] = field(default_factory=dict)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    ledger_dsn: str | None = None
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    telemetry: TelemetryConfig = field(default_factory=TelemetryConfig)
    experiments: dict[str, ExperimentConfig] = field(default_factory=dict)  # A/B splits (podium.experiments)
    shadow: dict[str, ShadowConfig] = field(default_factory=dict)  # shadow trials (podium.experiments.shadow)
    learned: LearnedSetup | None = None  # routing.router: learned, its file loaded and checked
    store_embeddings: bool = False  # ledger.store_embeddings (with the ledger on)
    dashboard: DashboardConfig = field(default_factory=DashboardConfig)  # /dashboard in podium serve
    work: WorkConfig = field(default_factory=WorkConfig)  # podium work (podium.work)


def _provider_spec(name: str, cfg: ProviderConfig | None, env: Mapping[str, str]) -> ProviderSpec:
    host = known_hosts().get(name)
    kind = (cfg.kind if cfg else None) or (host.kind if host else None)
    if kind is None:
        raise ConfigError(f"provider '{name}' is not a known host, so it needs a 'kind' "
                          f"(the wire protocol, e.g. openai, anthropic, gemini, ollama, local)",
                          key_path=f"providers.{name}.kind")
    key_env = (cfg.api_key_env if cfg else None) or (host.key_env if host else None)
    if not (cfg and cfg.api_key_env) and host and host.preferred_key_env and env.get(host.preferred_key_env):
        key_env = host.preferred_key_env
    api_key = cfg.api_key.get_secret_value() if cfg and cfg.api_key else None
    api_key = api_key or (env.get(key_env) if key_env else None) or None
    base_url_env = host.base_url_env if host else None
    env_base_url = env.get(base_url_env) if base_url_env else None
    if not env_base_url and host and host.host_env and env.get(host.host_env):
        env_base_url = env[host.host_env].rstrip("/") + host.api_path
    base_url = (cfg.base_url if cfg else None) or env_base_url or (host.base_url if host else None)
    if kind == "local":
        enabled, reason = (cfg.enabled is not False) if cfg else True, "embedded"
    elif cfg is not None and cfg.enabled is not None:
        enabled, reason = cfg.enabled, "enabled in config" if cfg.enabled else "disabled in config"
    elif api_key:
        enabled, reason = True, f"key from {key_env}" if key_env and not (cfg and cfg.api_key) else "key in config"
    elif key_env:
        enabled, reason = False, f"no key: set {key_env}"
    elif env_base_url or cfg is not None:
        enabled, reason = True, "no key needed"
    else:
        enabled, reason = False, f"not configured: set {base_url_env} or add it to podium.yaml"
    headers = {**(host.headers if host else {}), **(cfg.headers if cfg else {})}
    return ProviderSpec(
        name=name, kind=kind, enabled=enabled, reason=reason, configured=cfg is not None, base_url=base_url,
        api_key=api_key,
        key_env=key_env, headers=headers, timeout=cfg.timeout if cfg else 60.0,
        connect_timeout=cfg.connect_timeout if cfg else 5.0, total_timeout=cfg.total_timeout if cfg else None,
        region=(cfg.region if cfg else None) or (host.region if host else None),
        options=dict(cfg.options) if cfg else {},
    )


def _ledger_path(config: PodiumConfig, env: Mapping[str, str]) -> Path | None:
    if not config.ledger.enabled:
        return None
    if config.ledger.path:
        return Path(config.ledger.path).expanduser()
    if env.get("PODIUM_LEDGER"):
        return Path(env["PODIUM_LEDGER"]).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("podium")) / "ledger.sqlite3"


def resolve(config: PodiumConfig, source: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    names = [*known_hosts(), *(n for n in config.providers if n not in known_hosts())]
    providers = {name: _provider_spec(name, config.providers.get(name), env) for name in names}

    overrides = {name: row.model_dump(exclude_none=True) for name, row in config.models.items()}
    for name, row in overrides.items():
        provider = row.get("provider")
        if provider is not None and provider not in providers:
            raise ConfigError(f"model '{name}' refers to provider '{provider}', which is not defined; "
                              f"add it under providers: or use one of: {', '.join(sorted(providers))}",
                              key_path=f"models.{name}.provider")
    catalogue = _cap_local_windows(bundled_catalogue().merged(overrides), providers)
    config = canonical_names(config, catalogue)  # vendor ids and provider/model_id → catalogue names

    def check_model(name: str, key_path: str) -> None:
        if name not in catalogue:
            raise ConfigError(catalogue.missing(name), key_path=key_path)

    default_model = config.routing.default or DEFAULT_MODEL
    check_model(default_model, "routing.default")
    check_model(config.routing.baseline_model, "routing.baseline_model")
    embedding_model = config.routing.embedding_model or DEFAULT_EMBEDDING_MODEL
    # the semantic cache without semantic_model embeds with routing.embedding_model: by default the local
    # all-MiniLM-L6-v2 (offline, free; benchmarks/semantic_cache.py measures its right and wrong hits)
    for embedder, key_path in ((embedding_model, "routing.embedding_model"),
                               (config.gateway.cache.semantic_model, "gateway.cache.semantic_model")):
        if embedder is None:
            continue
        check_model(embedder, key_path)
        if "embeddings" not in catalogue.get(embedder).capabilities:
            raise ConfigError(f"'{embedder}' is not an embedding model (its capabilities lack 'embeddings')",
                              key_path=key_path)
    for i, rule in enumerate(config.routing.rules):
        _check_target(rule.model, f"routing.rules[{i}].model", catalogue, config.strategies)
    if config.routing.preset is not None:
        from podium.routing.presets import get_preset

        get_preset(config.routing.preset)
    _check_resilience(config, providers, check_model)
    _check_strategies(config, catalogue, source.parent if source is not None else None)
    from podium.experiments.checks import check_all

    check_all(config.experiments, config.shadow, catalogue, config.strategies)
    learned = _learned_router(config, catalogue, providers, source)
    if config.ledger.store_embeddings and not config.ledger.enabled:
        raise ConfigError("ledger.store_embeddings keeps embeddings in the ledger, which is off: set ledger.enabled: "
                          "true or remove store_embeddings", key_path="ledger.store_embeddings")

    return Settings(source=source, providers=providers, catalogue=catalogue, routing=config.routing,
                    default_model=default_model, ledger_path=_ledger_path(config, env),
                    defaults=config.defaults, deployments=config.deployments, resilience=config.resilience,
                    strategies=config.strategies, gateway=config.gateway,
                    experiments=config.experiments, shadow=config.shadow,
                    ledger_dsn=config.ledger.postgres_dsn if config.ledger.enabled else None,
                    embedding_model=embedding_model, telemetry=config.telemetry, learned=learned,
                    store_embeddings=config.ledger.store_embeddings and config.ledger.enabled,
                    dashboard=config.dashboard, work=config.work)


def _learned_router(config: PodiumConfig, catalogue: Catalogue, providers: Mapping[str, ProviderSpec],
                    source: Path | None) -> LearnedSetup | None:
    """``routing.router: learned``: its file loaded and checked now (numpy and the learners are imported
    only then), so a bad file stops the config from loading rather than a request from routing."""
    routing = config.routing
    if routing.router != "learned":
        if routing.learned is not None:
            raise ConfigError("routing.learned is set but routing.router is heuristic: set routing.router: learned "
                              "to use it, or remove routing.learned", key_path="routing.learned")
        return None
    from podium.routing.learned_load import load_learned

    return load_learned(routing.learned, catalogue, providers, source.parent if source is not None else None)


def _with_acceptance(name: str, strategy: StrategyConfig, folder: Path | None) -> StrategyConfig:
    """``accept: learned`` needs ``acceptance_file`` (and the reverse); the file must load."""
    from podium.strategies.acceptance import load_acceptance

    key_path = f"strategies.{name}.acceptance_file"
    if strategy.type != "cascade":
        raise ConfigError(f"accept: learned is for cascades; '{name}' is a {strategy.type}", key_path=key_path)
    if strategy.accept != "learned" or strategy.acceptance_file is None:
        raise ConfigError("accept: learned and acceptance_file go together: name the file written by podium eval "
                          "DATASET --cascade --target 0.95, or use another accept kind", key_path=key_path)
    path = Path(strategy.acceptance_file).expanduser()
    if not path.is_absolute() and folder is not None:
        path = folder / path
    threshold = strategy.threshold if "threshold" in strategy.model_fields_set else None
    try:
        load_acceptance(path, threshold)
    except ConfigError as exc:
        raise ConfigError(exc.message, key_path=key_path) from None
    return strategy.model_copy(update={"acceptance_file": str(path.resolve())})


def _cap_local_windows(catalogue: Catalogue, providers: Mapping[str, ProviderSpec]) -> Catalogue:
    """``providers.<local>.options.n_ctx`` caps the windows of that provider's catalogue rows.

    The local provider loads each model with its row's ``context_window`` as llama.cpp's ``n_ctx``, and
    the router sends a model only prompts that fit that window: one number for both, so no local model
    is routed a prompt it cannot hold (``n_ctx`` is there to spend less memory on a smaller context)."""
    caps: dict[str, int] = {}
    for spec in providers.values():
        if spec.kind != "local" or "n_ctx" not in spec.options:
            continue
        n_ctx = spec.options["n_ctx"]
        if isinstance(n_ctx, bool) or not isinstance(n_ctx, int) or n_ctx < 1:
            raise ConfigError(f"must be a whole number of tokens, 1 or more (got {n_ctx!r})",
                              key_path=f"providers.{spec.name}.options.n_ctx")
        caps[spec.name] = n_ctx
    changes: dict[str, dict[str, Any]] = {}
    for model in catalogue:
        cap = caps.get(model.provider)
        if cap is None or model.context_window <= cap:
            continue
        changes[model.name] = {"context_window": cap}
        if model.max_output_tokens is not None and model.max_output_tokens > cap:
            changes[model.name]["max_output_tokens"] = cap
    return catalogue.merged(changes, source="providers") if changes else catalogue


def _check_target(name: str, key_path: str, catalogue: Catalogue, named: Mapping[str, StrategyConfig]) -> None:
    """A name that may be a model or a strategy (a routing rule's): a catalogue model, a strategy under
    ``strategies:``, or an inline strategy (``vote:a,b*2``) whose members are models or named strategies."""
    from podium.strategies.names import KINDS

    if name in catalogue or name in named:
        return
    kind = name.split(":", 1)[0]
    if kind not in KINDS:
        raise ConfigError(unknown_model_message(name, [*catalogue.names(), *named]) + " (a rule may also name "
                          f"a strategy: one under strategies, or inline: {', '.join(sorted(KINDS))}, e.g. vote:a,b)",
                          key_path=key_path)
    check_inline_members(name, key_path, catalogue, named)


def check_inline_members(name: str, key_path: str, catalogue: Catalogue, named: Mapping[str, StrategyConfig]) -> None:
    """Each member of an inline strategy (``vote:a,b*2``) is a catalogue model or a named strategy."""
    from podium.strategies.names import inline_members

    try:
        members = inline_members(name)
    except PodiumError as exc:
        raise ConfigError(exc.message, key_path=key_path) from None
    for member, _ in members:
        if member not in catalogue and member not in named:
            raise ConfigError(f"in '{name}': " + unknown_model_message(member, [*catalogue.names(), *named]),
                              key_path=key_path)


def _check_strategies(config: PodiumConfig, catalogue: Catalogue, folder: Path | None) -> None:
    """Every name a strategy uses is a model or a strategy, and no strategy contains itself; a learned
    acceptance file is read now (and its path made absolute), so a bad file stops the config loading."""
    from podium.strategies.spec import KINDS, referenced_names

    named = config.strategies
    for name, strategy in list(named.items()):
        if strategy.type == "cascade" and strategy.accept == "verifier" and not strategy.verifier:
            raise ConfigError("accept: verifier needs a verifier model to ask (verifier: <model>); without one "
                              "every answer would be accepted unchecked. Name one, or use accept: confidence or "
                              "agreement", key_path=f"strategies.{name}.verifier")
        if strategy.accept == "learned" or strategy.acceptance_file is not None:
            named[name] = _with_acceptance(name, strategy, folder)
        for key, ref in referenced_names(strategy):
            if ref not in catalogue and ref not in named and ref.split(":", 1)[0] not in KINDS:
                raise ConfigError(unknown_model_message(ref, [*catalogue.names(), *named]),
                                  key_path=f"strategies.{name}.{key}")

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ConfigError(f"strategy '{name}' contains itself: {' → '.join((*path, name))}",
                              key_path=f"strategies.{path[0]}")
        for _, ref in referenced_names(named[name]):
            if ref in named:
                visit(ref, (*path, name))

    for name in named:
        visit(name, ())


def _check_resilience(config: PodiumConfig, providers: Mapping[str, ProviderSpec],
                      check_model: Callable[[str, str], None]) -> None:
    def check_provider(name: str, key_path: str) -> None:
        if name not in providers:
            raise ConfigError(f"provider '{name}' is not defined (defined: {', '.join(sorted(providers))})",
                              key_path=key_path)

    for model, deployments in config.deployments.items():
        check_model(model, f"deployments.{model}")
        for i, dep in enumerate(deployments):
            check_provider(dep.provider, f"deployments.{model}[{i}].provider")
    for i, rule in enumerate(config.resilience.fallbacks):
        if rule.model != "*":
            check_model(rule.model, f"resilience.fallbacks[{i}].model")
        for j, target in enumerate(rule.to):
            check_model(target, f"resilience.fallbacks[{i}].to[{j}]")
    for i, emergency in enumerate(config.resilience.emergency):
        if emergency.provider != "*":
            check_provider(emergency.provider, f"resilience.emergency[{i}].provider")
        for j, target in enumerate(emergency.to):
            check_model(target, f"resilience.emergency[{i}].to[{j}]")
    from podium.resilience.balancing import make_policy

    make_policy(config.resilience.balancing)

"""The shape of podium.yaml. Unknown keys are errors: a typo must never be silently ignored.

This module only says what is allowed; ``resolve`` then checks that names refer to things that
exist (a model's provider, a rule's model), the way TensorZero separates parsing from resolution.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from podium.catalogue.model_info import PromptFormat, Region, Tier


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProviderConfig(_Strict):
    """One provider entry. ``kind`` names the wire protocol; for known hosts it is implied."""

    kind: str | None = None
    enabled: bool | None = Field(default=None, description="None: on when its key is set (or it needs none)")
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    base_url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: float = Field(default=60.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    total_timeout: float | None = Field(default=None, gt=0, description="Cap on a whole call, stream included")
    region: Region | None = None
    options: dict[str, Any] = Field(default_factory=dict, description="Kind-specific settings")


class ModelOverride(_Strict):
    """A catalogue row, complete for a new model or partial to change a bundled one."""

    provider: str | None = None
    model_id: str | None = None
    display_name: str | None = None
    capabilities: list[str] | None = None
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    input_price: float | None = Field(default=None, ge=0)
    output_price: float | None = Field(default=None, ge=0)
    cached_input_price: float | None = Field(default=None, ge=0)
    tier: Tier | None = None
    region: Region | None = None
    local: bool | None = None
    prompt_format: PromptFormat | None = None
    aliases: list[str] | None = None
    price_source: str | None = Field(default=None, description="Where your prices come from (a URL, a contract); "
                                     "changing a price without it marks the row's prices as from this config")
    price_checked: date | None = None
    superseded_by: str | None = Field(default=None, description="The model that replaces this one")


class RoutingRule(_Strict):
    task_type: str
    model: str = Field(description="A model, or a strategy: one named under strategies, or inline (vote:a,b)")


class LearnedRoutingConfig(_Strict):
    """``routing.router: learned``: a router file written by ``podium router train``."""

    file: str = Field(description="The router file (relative paths: from the config file's folder)")
    knob: float | None = Field(default=None, ge=0, le=1, description="0 cheapest … 1 best; default: the file's")
    explore: float | None = Field(default=None, ge=0, le=1, description="Share of requests an online router sends "
                                  "to a random eligible model, to keep learning; default: the file's (0 offline)")


class RoutingConfig(_Strict):
    router: Literal["heuristic", "learned"] = Field(default="heuristic", description="How a request that names no "
                                                    "model and matches no rule is routed: tiers, or a learned router")
    learned: LearnedRoutingConfig | None = None
    default: str | None = Field(default=None, description="Model used when no rule matches; unset: tiers")
    rules: list[RoutingRule] = Field(default_factory=list)
    preset: str | None = Field(default=None, description="production, budget or privacy-first")
    max_cost_per_request: float | None = Field(default=None, gt=0)
    regions_by_sensitivity: dict[Literal["public", "internal", "confidential"], list[Region] | None] | None = None
    baseline_model: str = Field(default="gpt-4o", description="Savings are reported against this model")
    embedding_model: str | None = Field(default=None, description="For /v1/embeddings without a model and the "
                                        "semantic cache; default: minilm-l6 (local)")
    max_calls_per_request: int = Field(default=32, ge=1, le=1000, description="Fan-out cap: model calls one "
                                       "request's strategy may make (retries not counted)")


class DeploymentConfig(_Strict):
    provider: str
    model_id: str | None = None
    region: Region | None = Field(default=None, description="Where this deployment processes data; default: "
                                  "the provider's region if it differs from the model's own provider, else the model's")
    weight: float = Field(default=1.0, gt=0)
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)


class RetryConfig(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=20)
    base_delay: float = Field(default=0.25, ge=0)
    max_delay: float = Field(default=8.0, ge=0)
    max_retry_after: float = Field(default=30.0, ge=0, description="Cap on a provider's Retry-After wait")


class BreakerConfig(_Strict):
    failures: int = Field(default=5, ge=1)
    cooldown: float = Field(default=30.0, gt=0)
    probes: int = Field(default=1, ge=1)


ErrorKind = Literal["rate_limited", "unavailable", "timeout", "provider_error", "context_too_long",
                    "content_filtered", "auth", "permission", "not_found"]


def _default_fallback_on() -> list[ErrorKind]:
    return ["rate_limited", "unavailable", "timeout", "provider_error", "auth", "permission"]


class FallbackConfig(_Strict):
    model: str = Field(description="A model name, or * for every model")
    to: list[str]
    on: list[ErrorKind] = Field(default_factory=_default_fallback_on)


class EmergencyConfig(_Strict):
    provider: str = Field(description="A provider name, or * for any")
    to: list[str]


class ResilienceConfig(_Strict):
    balancing: str = "weighted"
    retries: RetryConfig = Field(default_factory=RetryConfig)
    attempt_timeout: float | None = Field(default=None, gt=0, description="Cap per attempt (to first chunk)")
    deadline: float | None = Field(default=None, gt=0, description="Cap on the whole request, fallbacks included")
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    fallbacks: list[FallbackConfig] = Field(default_factory=list)
    emergency: list[EmergencyConfig] = Field(default_factory=list)
    context_fallback: bool = True
    filter_fallback: bool = True
    health_probe_interval: float | None = Field(default=None, gt=0, description="Seconds; unset: no probes")


class LedgerConfig(_Strict):
    enabled: bool = True
    path: str | None = Field(default=None, description="SQLite file; default: the user data dir")
    postgres_dsn: str | None = Field(default=None, description="PostgreSQL instead of SQLite, shared by instances")
    store_embeddings: bool = Field(default=False, description="Keep each request's prompt embedding (384 floats, "
                                   "never the text) for training a learned router from the ledger")


class DefaultsConfig(_Strict):
    max_tokens: int | None = Field(default=None, gt=0, description="Unset: no cap of Podium's own; each provider's "
                                   "default applies (Anthropic, which requires one: the model's max output tokens)")
    temperature: float | None = Field(default=None, ge=0, le=2)


StrategyType = Literal["single", "cascade", "vote", "consensus", "debate", "mixture", "pipeline"]


class StrategyConfig(_Strict):
    """A named strategy. Fields apply by type; any model name may also name another strategy."""

    type: StrategyType
    models: list[str] = Field(default_factory=list, description="members, steps, voters, agents or proposers")
    accept: Literal["confidence", "agreement", "verifier", "learned", "always"] = "confidence"
    acceptance_file: str | None = Field(default=None, description="accept: learned — the file `podium eval "
                                        "--cascade --target` wrote (relative paths: from the config file's folder); "
                                        "its calibrated threshold applies unless threshold is set")
    threshold: float = Field(default=0.7, ge=0, le=1)
    verifier: str | None = None
    synthesizer: str | None = None
    timeout: float | None = Field(default=None, gt=0, description="per call, for parallel strategies")
    rounds: int = Field(default=2, ge=1, le=10)
    aggregator: str | None = None
    layers: int = Field(default=1, ge=1, le=5, description="mixture: how many proposer layers")
    conductor: str | None = None
    max_subtasks: int = Field(default=4, ge=1, le=8)
    max_revisions: int = Field(default=1, ge=0, le=5)
    review: bool = True
    budget: float | None = Field(default=None, gt=0, description="USD for all calls of one request")
    on_budget_exhausted: Literal["best", "fail"] = "best"


MiddlewareName = Literal["auth", "guardrails", "cache", "limits", "budget", "metrics"]


def _all_middleware() -> list[MiddlewareName]:
    return ["auth", "guardrails", "cache", "limits", "budget", "metrics"]


class CacheConfig(_Strict):
    enabled: bool = False
    ttl: float = Field(default=300.0, gt=0, description="Seconds an answer stays cached")
    max_entries: int = Field(default=10_000, gt=0, description="Memory cache size (Redis uses its own limits)")
    semantic: bool = Field(default=False, description="Also serve questions that mean the same as a cached one")
    semantic_threshold: float = Field(default=0.95, gt=0, le=1, description="Cosine similarity a hit needs")
    semantic_model: str | None = Field(default=None, description="Embedding model; default: routing.embedding_model")
    semantic_per_bucket: int = Field(default=32, gt=0, description="Answers kept per identical conversation prefix")
    share: Literal["key", "team", "global"] = Field(default="key", description="Who may be served an answer "
                                                    "another caller's request stored: the same key, team, or anyone")


class GuardrailsConfig(_Strict):
    pii: Literal["allow", "redact", "block", "route_local"] = "allow"
    secrets: Literal["allow", "redact", "block"] = "redact"
    injection: Literal["allow", "flag", "block"] = "flag"


class TeamConfig(_Strict):
    """A team: every key with ``team: <name>`` spends from and is limited by the team's totals too."""

    budget: float | None = Field(default=None, gt=0, description="USD per period, all the team's keys together")
    budget_period: Literal["total", "day", "month"] = "month"
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)


class GatewayConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=4000, gt=0, lt=65536)
    auth: Literal["required", "optional"] = "required"
    admin_key: SecretStr | None = Field(default=None, description="For /admin/keys; or $PODIUM_ADMIN_KEY")
    keys_path: str | None = Field(default=None, description="SQLite file of virtual keys; default beside the ledger")
    state: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    middleware: list[MiddlewareName] = Field(default_factory=_all_middleware)
    rpm: int | None = Field(default=None, gt=0, description="Default per-key requests per minute")
    tpm: int | None = Field(default=None, gt=0, description="Default per-key tokens per minute")
    max_body_bytes: int = Field(default=4_000_000, gt=0)
    header_timeout: float = Field(default=10.0, gt=0, description="Seconds a connection may take to send a "
                                  "request's headers (slow or silent clients are closed)")
    idle_timeout: float = Field(default=15.0, gt=0, description="Seconds an idle keep-alive connection stays open")
    body_timeout: float = Field(default=30.0, gt=0, description="Seconds a request's whole body may take to arrive "
                                "after its headers (a stalled or trickled body gets a 408 and is closed)")
    max_header_bytes: int = Field(default=65536, gt=1024, description="Bytes a request's line and headers may take "
                                  "(past it: 431, closed)")
    guardrails: GuardrailsConfig = Field(default_factory=lambda: GuardrailsConfig())
    cache: CacheConfig = Field(default_factory=lambda: CacheConfig())
    cors_origins: list[str] = Field(default_factory=list, description="Empty: CORS off")
    teams: dict[str, TeamConfig] = Field(default_factory=dict)


class TelemetryConfig(_Strict):
    enabled: bool = Field(default=False, description="OpenTelemetry spans: request, strategy, calls")
    otlp_endpoint: str | None = Field(default=None, description="OTLP/HTTP collector, e.g. http://127.0.0.1:4318; "
                                      "unset: the process's global tracer provider")
    service_name: str = "podium"


# --- experiments and shadow trials (``podium.experiments``) -----------------------------------------
class ArmConfig(_Strict):
    """What serves an arm's requests: exactly one of a model, a strategy, or a routing preset."""

    model: str | None = Field(default=None, description="A catalogue model")
    strategy: str | None = Field(default=None, description="A strategy: one under strategies, or inline (vote:a,b)")
    preset: str | None = Field(default=None, description="Route with this preset (budget, production, privacy-first)")


class ExperimentScopeConfig(_Strict):
    task_types: list[str] | None = Field(default=None, description="Only requests of these task types; unset: any")
    only_unrouted: bool = Field(default=True, description="Only requests that name no model (a request that names "
                                "experiment:NAME is always in it)")


class ExperimentConfig(_Strict):
    """An A/B experiment: traffic split between arms by weight, sticky per user or key."""

    split: dict[str, float] = Field(description="Weight per arm (positive; need not add up to 100)")
    arms: dict[str, ArmConfig]
    sticky: Literal["user", "key"] = Field(default="user", description="What assignment is hashed from (with the "
                                           "experiment's name); the other one when it is missing")
    control: str = Field(default="control", description="The arm the others are compared with, and the one a "
                         "request falls back to when its arm may not serve it")
    applies_to: ExperimentScopeConfig = Field(default_factory=lambda: ExperimentScopeConfig())
    enabled: bool = True


class ShadowConfig(_Strict):
    """A shadow trial: a sampled share of served requests is also sent to ``candidate`` in the background."""

    candidate: str = Field(description="The model tried in the shadow of the served one")
    sample: float = Field(ge=0, le=1, description="Share of matching requests also sent to the candidate")
    task_types: list[str] | None = Field(default=None, description="Only requests of these task types; unset: any")
    compare: str = Field(default="answers", description="answers (extracted-answer agreement) or judge:MODEL")
    threshold: float = Field(default=0.8, gt=0, le=1, description="Free-text similarity (or judge score) that "
                             "counts as agreement")
    concurrency: int = Field(default=2, ge=1, le=64, description="Shadow calls in flight at once")
    queue: int = Field(default=100, ge=1, le=100_000, description="Shadow calls waiting; past it they are dropped "
                       "(and counted)")
    timeout: float = Field(default=60.0, gt=0, description="Seconds a shadow call (with its judging) may take")
    enabled: bool = True


class DashboardConfig(_Strict):
    """The dashboard ``podium serve`` mounts at /dashboard (the admin key or a key with the 'dashboard' scope)."""

    enabled: bool = Field(default=True, description="false: no /dashboard pages or endpoints at all")
    refresh_seconds: int = Field(default=30, ge=0, le=3600, description="The pages' default auto-refresh; 0: off")


# --- work packages (``podium work``) -----------------------------------------------------------------
class WorkRolesConfig(_Strict):
    """The models of each role of a work package, in order: the first is preferred, the rest are its
    fallbacks (the config's emergency fallbacks apply after them, as to every call)."""

    conductor: list[str] = Field(min_length=1, description="Plans the package into subtasks")
    worker: list[str] = Field(min_length=1, description="Implements a subtask (Podium's editor or an agent)")
    reviewer: list[str] = Field(min_length=1, description="Reviews a diff; one from another provider than the "
                                "worker's is chosen when the list has one")
    preset: str | None = Field(default=None, description="The routing preset every call of the run is held to "
                               "(privacy-first: EU, Swiss or local models only)")


class WorkAgentConfig(_Strict):
    """An external command-line coding agent, run in a subtask's worktree with its model endpoint set to
    Podium's own gateway (started for the run). Placeholders in ``command``: {model}, {message_file},
    {files} (expands to one argument per file), {worktree}, {base_url}."""

    command: list[str] = Field(min_length=1)
    api: Literal["openai", "anthropic", "responses"] = Field(default="openai", description="Which of the "
                                                             "gateway's APIs the agent speaks")
    timeout: float = Field(default=900.0, gt=0, description="Seconds one run of the agent may take")
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment; {base_url} and {api_key} "
                                "are filled in")


class WorkConfig(_Strict):
    presets: dict[str, WorkRolesConfig] = Field(default_factory=dict, description="Models per role by name; "
                                                "production, budget and privacy-first are built in")
    agents: dict[str, WorkAgentConfig] = Field(default_factory=dict, description="External coding agents; "
                                               "'aider' is built in")
    preset: str = "production"
    worker: str = Field(default="editor", description="editor (Podium's search/replace editor) or an agent name")
    max_parallel: int = Field(default=2, ge=1, le=16, description="Subtasks worked on at once")
    max_edit_attempts: int = Field(default=3, ge=1, le=10, description="Editor: rounds for edit blocks that "
                                   "did not apply")
    max_revisions: int = Field(default=2, ge=0, le=10, description="Times a failed check or a review's changes "
                               "go back to the worker")
    check_timeout: float = Field(default=600.0, gt=0, description="Seconds the check command may take")
    budget: float | None = Field(default=None, gt=0, description="USD for every call of one package run")
    deadline: float | None = Field(default=None, gt=0, description="Seconds for one package run")
    max_output_tokens: int = Field(default=8192, ge=256, description="Cap on one call's answer (the model's own "
                                   "cap if lower): what a call holds in the run's budget before it is sent")


class PodiumConfig(_Strict):
    version: Literal[1] = 1
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelOverride] = Field(default_factory=dict)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    deployments: dict[str, list[DeploymentConfig]] = Field(default_factory=dict)
    resilience: ResilienceConfig = Field(default_factory=ResilienceConfig)
    strategies: dict[str, StrategyConfig] = Field(default_factory=dict)
    gateway: GatewayConfig = Field(default_factory=GatewayConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    experiments: dict[str, ExperimentConfig] = Field(default_factory=dict)
    shadow: dict[str, ShadowConfig] = Field(default_factory=dict)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    work: WorkConfig = Field(default_factory=WorkConfig)

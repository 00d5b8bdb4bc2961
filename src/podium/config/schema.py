"""The shape of podium.yaml. Unknown keys are errors: a typo must never be silently ignored.

This module only says what is allowed; ``resolve`` then checks that names refer to things that
exist (a model's provider, a rule's model), the way TensorZero separates parsing from resolution.
"""

from __future__ import annotations

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


class RoutingRule(_Strict):
    task_type: str
    model: str


class RoutingConfig(_Strict):
    default: str | None = Field(default=None, description="Model used when no rule matches")
    rules: list[RoutingRule] = Field(default_factory=list)
    baseline_model: str = Field(default="gpt-4o", description="Savings are reported against this model")


class LedgerConfig(_Strict):
    enabled: bool = True
    path: str | None = Field(default=None, description="SQLite file; default: the user data dir")


class DefaultsConfig(_Strict):
    max_tokens: int = Field(default=256, gt=0)
    temperature: float | None = Field(default=None, ge=0, le=2)


class PodiumConfig(_Strict):
    version: Literal[1] = 1
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelOverride] = Field(default_factory=dict)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)

"""ModelInfo: one row of the catalogue, and the only place prices turn into dollars.

Prices go stale: vendors cut them, raise them after a launch offer, retire the model. So every
priced row says where its figures were read (``price_source``: a URL, or ``unverified: …`` when no
source could confirm them) and when (``price_checked``); a maintainer refreshing the catalogue starts
from the oldest dates. A model the vendor has replaced or retired keeps its row (configs and ledgers
name it) and says which row replaces it (``superseded_by``).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from podium.types import Usage

Tier = Literal["fast", "standard", "advanced"]
Region = Literal["eu", "us", "ch", "cn", "global", "local"]
PromptFormat = Literal["chat", "completion"]

TIER_RANK: dict[str, int] = {"fast": 1, "standard": 2, "advanced": 3}
PRICE_FIELDS = ("input_price", "output_price", "cached_input_price")

KNOWN_CAPABILITIES = frozenset(
    {"chat", "code", "planning", "review", "analysis", "creative", "vision", "tools",
     "long-context", "reasoning", "json", "multilingual", "embeddings"}
)


class ModelInfo(BaseModel):
    """A model as Podium knows it: who serves it, what it can do, what it costs.

    ``name`` is what users write; ``model_id`` is what the provider's API expects (they differ
    for hosts such as OpenRouter, where ``anthropic/claude-sonnet-4.5`` is the wire id). Clients may
    send either, or ``provider/model_id`` (see ``podium.catalogue.catalogue``).
    Prices are US dollars per million tokens, as the vendors publish them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    provider: str
    model_id: str
    display_name: str
    capabilities: frozenset[str] = frozenset({"chat"})
    context_window: int = Field(gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    input_price: float = Field(ge=0.0, description="USD per million input tokens")
    output_price: float = Field(ge=0.0, description="USD per million output tokens")
    cached_input_price: float | None = Field(default=None, ge=0.0, description="USD per million cached input tokens")
    tier: Tier
    region: Region
    local: bool = False
    prompt_format: PromptFormat = "chat"
    aliases: tuple[str, ...] = ()
    price_source: str | None = Field(default=None, description="Where the prices were read: a URL, or "
                                     "'unverified: …' saying why they could not be confirmed")
    price_checked: date | None = Field(default=None, description="When the prices were read from price_source")
    superseded_by: str | None = Field(default=None, description="The row that replaces this model at its vendor "
                                      "(retired, deprecated or legacy there)")

    def estimated_cost(self, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0) -> float:
        """Dollars for a call. Cached input is billed at the cached price where the vendor has one.

        Reasoning tokens are already part of ``output_tokens`` on every vendor that reports them,
        so they need no separate term.
        """
        cached = min(cached_input_tokens, input_tokens)
        cached_price = self.input_price if self.cached_input_price is None else self.cached_input_price
        return ((input_tokens - cached) * self.input_price + cached * cached_price
                + output_tokens * self.output_price) / 1_000_000

    def cost_of(self, usage: Usage) -> float:
        return self.estimated_cost(usage.input_tokens, usage.output_tokens, usage.cached_input_tokens)

    @property
    def tier_rank(self) -> int:
        return TIER_RANK[self.tier]

    @property
    def blended_price(self) -> float:
        """One number to sort by: a typical 3:1 input:output mix, per million tokens."""
        return (3 * self.input_price + self.output_price) / 4

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

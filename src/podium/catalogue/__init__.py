"""The model catalogue: rows of data (``data/models.toml``) plus the user's overrides."""

from podium.catalogue.catalogue import Catalogue, bundled_catalogue, parse_rows, unknown_model_message
from podium.catalogue.model_info import TIER_RANK, ModelInfo, PromptFormat, Region, Tier
from podium.catalogue.tokens import approximate_tokens, count_message_tokens, count_tokens, worst_input_tokens

__all__ = [
    "TIER_RANK",
    "Catalogue",
    "ModelInfo",
    "PromptFormat",
    "Region",
    "Tier",
    "approximate_tokens",
    "bundled_catalogue",
    "count_message_tokens",
    "count_tokens",
    "parse_rows",
    "unknown_model_message",
    "worst_input_tokens",
]

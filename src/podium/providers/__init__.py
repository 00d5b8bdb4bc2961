"""EDGE: the provider protocol, the registry, and the adapters that speak each wire format."""

from podium.providers.base import EmbeddingProvider, Health, Provider
from podium.providers.registry import ProviderRegistry

__all__ = ["EmbeddingProvider", "Health", "Provider", "ProviderRegistry"]

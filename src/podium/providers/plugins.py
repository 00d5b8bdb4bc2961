"""Which code builds a provider of a given kind.

Built-in kinds are listed here by dotted path and imported only when used (so ``podium --help``
never imports llama.cpp). Third parties add kinds without touching Podium by declaring an entry
point in the ``podium.providers`` group whose value is a factory ``(ProviderSpec) -> Provider``:

    [project.entry-points."podium.providers"]
    acme = "acme_podium:make_provider"

A built-in kind always wins over a plugin of the same name, so a plugin cannot hijack `openai`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import cast

from podium.config import ProviderSpec
from podium.errors import ConfigError
from podium.providers.base import Provider

ENTRY_POINT_GROUP = "podium.providers"
ProviderFactory = Callable[[ProviderSpec], Provider]

BUILTIN_KINDS: dict[str, str] = {
    "local": "podium.providers.local.provider:LocalProvider.from_spec",
    "openai": "podium.providers.openai.provider:OpenAIProvider.from_spec",
    "anthropic": "podium.providers.anthropic.provider:AnthropicProvider.from_spec",
    "gemini": "podium.providers.gemini.provider:GeminiProvider.from_spec",
    "ollama": "podium.providers.ollama.provider:OllamaProvider.from_spec",
    "scripted": "podium.providers.scripted:ScriptedProvider.from_spec",
    "cli": "podium.providers.cli.provider:CliProvider.from_spec",
}


def _import(target: str) -> ProviderFactory:
    module_name, _, attr_path = target.partition(":")
    obj: object = importlib.import_module(module_name)
    for attr in attr_path.split("."):
        obj = getattr(obj, attr)
    return cast(ProviderFactory, obj)


def plugin_kinds() -> dict[str, str]:
    """Kinds offered by installed plugins, as ``kind -> "module:attr"``."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_kinds() -> list[str]:
    return sorted({*BUILTIN_KINDS, *plugin_kinds()})


def provider_factory(kind: str) -> ProviderFactory | None:
    """The factory for ``kind``, or None when no installed code speaks it."""
    if kind in BUILTIN_KINDS:
        return _import(BUILTIN_KINDS[kind])
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == kind:
            return cast(ProviderFactory, ep.load())
    return None


def build_provider(spec: ProviderSpec) -> Provider:
    factory = provider_factory(spec.kind)
    if factory is None:
        raise ConfigError(f"no installed adapter speaks kind '{spec.kind}' (available: "
                          f"{', '.join(available_kinds())})", key_path=f"providers.{spec.name}.kind")
    provider = factory(spec)
    if not isinstance(provider, Provider):
        raise ConfigError(f"the factory for kind '{spec.kind}' returned {type(provider).__name__}, "
                          "which does not implement the Provider protocol",
                          key_path=f"providers.{spec.name}.kind")
    return provider

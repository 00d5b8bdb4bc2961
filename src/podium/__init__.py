"""Podium: run many language models as one.

Public names are imported lazily, so ``import podium`` (and ``podium --help``) stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Podium": "podium.client",
    "SyncPodium": "podium.client",
    "ChatStream": "podium.client",
    "ChatRequest": "podium.types",
    "ChatResponse": "podium.types",
    "Message": "podium.types",
    "StreamChunk": "podium.types",
    "Usage": "podium.types",
    "Trace": "podium.types",
    "ModelInfo": "podium.catalogue",
    "ProviderRegistry": "podium.providers",
    "errors": "podium.errors",
}

if TYPE_CHECKING:
    from podium import errors
    from podium.catalogue import ModelInfo
    from podium.client import ChatStream, Podium, SyncPodium
    from podium.providers import ProviderRegistry
    from podium.types import ChatRequest, ChatResponse, Message, StreamChunk, Trace, Usage


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'podium' has no attribute {name!r}")
    value = import_module(module) if name == "errors" else getattr(import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ChatRequest",
    "ChatResponse",
    "ChatStream",
    "Message",
    "ModelInfo",
    "Podium",
    "ProviderRegistry",
    "StreamChunk",
    "SyncPodium",
    "Trace",
    "Usage",
    "errors",
]

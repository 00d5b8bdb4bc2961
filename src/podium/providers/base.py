"""The provider protocol: the edge of Podium, the only code that does network or model I/O.

A provider speaks one wire protocol to one endpoint. It turns a ``ChatRequest`` into the vendor's
format and the vendor's answer into a ``ChatResponse`` / ``StreamChunk``s with the usage the vendor
reported, and maps every failure onto ``podium.errors``. It does not retry, price, log or route:
the layers above own those, so every provider gets them the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from podium.catalogue import ModelInfo
from podium.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamChunk


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str
    latency_ms: float = 0.0


@runtime_checkable
class Provider(Protocol):
    name: str

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        """One answer. ``cost`` and ``latency_ms`` are left for the caller to fill."""
        ...

    def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        """Chunks as they arrive; the last carries ``finish_reason`` and, where known, ``usage``.

        Closing the iterator early (``aclose``) must stop the upstream work or connection.
        """
        ...

    async def health(self) -> Health: ...

    async def list_models(self) -> list[str]:
        """Model ids the endpoint serves right now (wire ids, not catalogue names)."""
        ...

    async def aclose(self) -> None: ...


@runtime_checkable
class EmbeddingProvider(Protocol):
    async def embed(self, request: EmbeddingRequest, model: ModelInfo) -> EmbeddingResponse: ...

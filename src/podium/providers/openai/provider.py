"""The OpenAI-wire provider: an endpoint, a key and ``wire``, over the shared call skeleton (``providers.call``).

Every OpenAI-compatible host (a row of ``providers/hosts.toml``, or ``kind: openai`` in the
config) is an instance of this one class with another base URL and headers. Only OpenAI itself
knows the ``developer`` role: other hosts (vLLM, llama.cpp's server, Groq, Mistral …) get such
messages as ``system`` unless the option ``developer_role: true`` says the host has it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import urlsplit

from podium.catalogue import ModelInfo
from podium.config import ProviderSpec
from podium.errors import ConfigError
from podium.providers.base import Health
from podium.providers.call import Endpoint
from podium.providers.http import listing_health
from podium.providers.openai import wire
from podium.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamChunk

_OPTIONS = {"max_tokens_field", "developer_role"}
_OPENAI_HOST = "api.openai.com"


class _Chunks:
    """The stream's ``data:`` objects as chunks; its end is the ``[DONE]`` payload, which the skeleton reads."""

    done = False

    def __init__(self, model: str, provider: str) -> None:
        self.model, self.provider = model, provider

    def feed(self, event: str, data: Any) -> Sequence[StreamChunk]:
        chunk = wire.parse_chunk(data, model=self.model, provider=self.provider)
        return (chunk,) if chunk is not None else ()


class OpenAIProvider:
    wire_name = "openai"  # its column in podium.request_fields

    def __init__(self, spec: ProviderSpec) -> None:
        if not spec.base_url:
            raise ConfigError("an OpenAI-compatible provider needs a base_url", key_path=f"providers.{spec.name}")
        unknown = set(spec.options) - _OPTIONS
        if unknown:
            raise ConfigError(f"unknown key (expected one of: {', '.join(sorted(_OPTIONS))})",
                              key_path=f"providers.{spec.name}.options.{sorted(unknown)[0]}")
        self.name = spec.name
        self._max_tokens_field: str | None = spec.options.get("max_tokens_field")
        self._developer_role = bool(spec.options.get("developer_role", urlsplit(spec.base_url).hostname
                                                     == _OPENAI_HOST))
        headers = {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {}
        self._http = Endpoint(spec, spec.base_url, headers)

    @classmethod
    def from_spec(cls, spec: ProviderSpec) -> OpenAIProvider:
        return cls(spec)

    def _body(self, request: ChatRequest, model: ModelInfo, stream: bool) -> dict[str, Any]:
        return wire.request_body(request, model.model_id, stream=stream, max_tokens_field=self._max_tokens_field,
                                 developer_role=self._developer_role)

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        return await self._http.complete(
            "/chat/completions", self._body(request, model, False), model.name,
            lambda data: wire.parse_response(data, model=model.name, provider=self.name),
            expect=lambda data: bool(data.get("choices")), answered="without choices")

    def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        return self._http.stream("/chat/completions", lambda: self._body(request, model, True), model.name,
                                 _Chunks(model.name, self.name), end="[DONE]", done_marker="[DONE]")

    async def embed(self, request: EmbeddingRequest, model: ModelInfo) -> EmbeddingResponse:
        data = await self._http.post("/embeddings", wire.embedding_body(request, model.model_id), model.name,
                                     expect=lambda d: isinstance(d, dict) and isinstance(d.get("data"), list),
                                     answered="without 'data'")
        return wire.parse_embeddings(data, model=model.name, provider=self.name)

    async def list_models(self) -> list[str]:
        data = await self._http.get("/models")
        return [str(m["id"]) for m in data.get("data", [])] if isinstance(data, dict) else []

    async def health(self) -> Health:
        return await listing_health(self.list_models)

    async def aclose(self) -> None:
        await self._http.aclose()

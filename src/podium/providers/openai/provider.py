"""The OpenAI-wire provider: an endpoint, a key and ``wire`` over the shared call skeleton (``providers.call``).

Every OpenAI-compatible host (a row of ``providers/hosts.toml``, or ``kind: openai`` in the config) is
an instance of this one class with another base URL and headers. Only OpenAI itself knows the
``developer`` role: other hosts (vLLM, llama.cpp's server, Groq, Mistral …) get such messages as
``system``, unless the option ``developer_role: true`` says a host has it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from podium.catalogue import ModelInfo
from podium.config import ProviderSpec
from podium.providers.call import Chunks, Endpoint, RemoteProvider, check_spec
from podium.providers.openai import wire
from podium.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamChunk


class OpenAIProvider(RemoteProvider):
    wire_name = "openai"  # its column in podium.request_fields

    def __init__(self, spec: ProviderSpec) -> None:
        base_url = check_spec(spec, "an OpenAI-compatible provider", ("developer_role", "max_tokens_field"))
        self.name = spec.name
        self._max_tokens_field: str | None = spec.options.get("max_tokens_field")
        self._developer_role = bool(spec.options.get("developer_role", urlsplit(base_url).hostname == "api.openai.com"))
        self._http = Endpoint(spec, base_url, {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {})

    @classmethod
    def from_spec(cls, spec: ProviderSpec) -> OpenAIProvider:
        return cls(spec)

    def _body(self, request: ChatRequest, model: ModelInfo, stream: bool) -> dict[str, Any]:
        return wire.request_body(request, model.model_id, stream=stream, max_tokens_field=self._max_tokens_field,
                                 developer_role=self._developer_role)

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        return await self._http.complete("/chat/completions", self._body(request, model, False), model.name,
                                         lambda data: wire.parse_response(data, model=model.name, provider=self.name),
                                         expect=lambda data: bool(data.get("choices")), answered="without choices")

    def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        chunks = Chunks(lambda data: wire.parse_chunk(data, model=model.name, provider=self.name))
        return self._http.stream("/chat/completions", lambda: self._body(request, model, True), model.name, chunks,
                                 end="[DONE]", done_marker="[DONE]")

    async def embed(self, request: EmbeddingRequest, model: ModelInfo) -> EmbeddingResponse:
        data = await self._http.post_list("/embeddings", wire.embedding_body(request, model.model_id), model.name,
                                          "data")
        return wire.parse_embeddings(data, model=model.name, provider=self.name)

    async def list_models(self) -> list[str]:
        data = await self._http.get("/models")
        return [str(m["id"]) for m in data.get("data", [])] if isinstance(data, dict) else []

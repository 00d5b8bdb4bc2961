"""The Ollama provider: a local or remote Ollama server, no key, over the shared call skeleton."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from podium.catalogue import ModelInfo
from podium.config import ProviderSpec
from podium.providers.call import Endpoint, RemoteProvider, check_spec
from podium.providers.ollama import wire
from podium.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamChunk


class OllamaProvider(RemoteProvider):
    wire_name = "ollama"  # its column in podium.request_fields
    _listed = "models pulled"

    def __init__(self, spec: ProviderSpec) -> None:
        base_url = check_spec(spec, "the Ollama provider", ("keep_alive",))
        base_url = base_url if "://" in base_url else f"http://{base_url}"  # OLLAMA_HOST may omit it
        self.name = spec.name
        self._keep_alive = spec.options.get("keep_alive")
        self._http = Endpoint(spec, base_url, {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {})

    @classmethod
    def from_spec(cls, spec: ProviderSpec) -> OllamaProvider:
        return cls(spec)

    def _body(self, request: ChatRequest, model: ModelInfo, stream: bool) -> dict[str, Any]:
        body = wire.request_body(request, model.model_id, stream=stream)
        if self._keep_alive is not None:
            body["keep_alive"] = self._keep_alive
        return body

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        return await self._http.complete("/api/chat", self._body(request, model, False), model.name,
                                         lambda data: wire.parse_response(data, model=model.name, provider=self.name),
                                         expect=lambda data: "message" in data, answered="without a message")

    def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        return self._http.stream("/api/chat", lambda: self._body(request, model, True), model.name,
                                 wire.LineDecoder(model.name, self.name), end="a done line", framing="ndjson")

    async def embed(self, request: EmbeddingRequest, model: ModelInfo) -> EmbeddingResponse:
        data = await self._http.post_list("/api/embed", wire.embedding_body(request, model.model_id), model.name,
                                          "embeddings")
        return wire.parse_embeddings(data, model=model.name, provider=self.name)

    async def list_models(self) -> list[str]:
        data = await self._http.get("/api/tags")
        return [str(m["name"]) for m in data.get("models", [])] if isinstance(data, dict) else []

"""The Gemini provider: key in ``x-goog-api-key``, model in the path, over the shared call skeleton.

Where the key and the endpoint come from (``GOOGLE_API_KEY`` before ``GEMINI_API_KEY``, and
``GOOGLE_GEMINI_BASE_URL`` as a host to which the API version is added, as the google-genai SDK reads
them) is settled in ``config.resolve`` from ``providers/hosts.toml``; this class gets a base URL that
already ends in the version (``…/v1beta``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from podium.catalogue import ModelInfo, count_tokens
from podium.config import ProviderSpec
from podium.providers.call import Endpoint, RemoteProvider, check_spec
from podium.providers.gemini import wire
from podium.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamChunk


class GeminiProvider(RemoteProvider):
    wire_name = "gemini"  # its column in podium.request_fields

    def __init__(self, spec: ProviderSpec) -> None:
        base_url = check_spec(spec, "the Gemini provider")
        self.name = spec.name
        self._http = Endpoint(spec, base_url, {"x-goog-api-key": spec.api_key} if spec.api_key else {})

    @classmethod
    def from_spec(cls, spec: ProviderSpec) -> GeminiProvider:
        return cls(spec)

    @staticmethod
    def _resource(model: ModelInfo) -> str:
        """``models/<id>``: the resource name the API uses in paths and in embedding requests."""
        model_id = model.model_id
        return model_id if model_id.startswith(("models/", "tunedModels/")) else f"models/{model_id}"

    def _path(self, model: ModelInfo, method: str) -> str:
        return f"/{self._resource(model)}:{method}"

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        return await self._http.complete(self._path(model, "generateContent"),
                                         wire.request_body(request, model.model_id), model.name,
                                         lambda data: wire.parse_response(data, model=model.name, provider=self.name),
                                         answered="with something other than an object")

    def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        return self._http.stream(self._path(model, "streamGenerateContent"),
                                 lambda: wire.request_body(request, model.model_id), model.name,
                                 wire.StreamDecoder(model.name, self.name, request.n), end="a finishReason",
                                 params={"alt": "sse"})

    async def embed(self, request: EmbeddingRequest, model: ModelInfo) -> EmbeddingResponse:
        data = await self._http.post_list(self._path(model, "batchEmbedContents"),
                                          wire.embedding_body(request, self._resource(model)), model.name, "embeddings")
        return wire.parse_embeddings(data, model=model.name, provider=self.name,
                                     estimated_tokens=sum(count_tokens(text, model) for text in request.input))

    async def list_models(self) -> list[str]:
        data = await self._http.get("/models", params={"pageSize": 1000})
        return [str(m["name"]).removeprefix("models/") for m in data.get("models", [])] if isinstance(data, dict) \
            else []

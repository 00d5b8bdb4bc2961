"""The Gemini provider: key in ``x-goog-api-key``, model in the path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from podium.catalogue import ModelInfo, count_tokens
from podium.config import ProviderSpec
from podium.errors import AuthenticationError, ConfigError, ProviderError, redact
from podium.providers.base import Health
from podium.providers.gemini import wire
from podium.providers.http import (
    TRANSPORT_ERRORS,
    Deadline,
    listing_health,
    make_client,
    parse_json,
    raise_for_status,
    sse_events,
    transport_error,
)
from podium.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamChunk


class GeminiProvider:
    wire_name = "gemini"  # its column in podium.request_fields

    def __init__(self, spec: ProviderSpec) -> None:
        if not spec.base_url:
            raise ConfigError("the Gemini provider needs a base_url", key_path=f"providers.{spec.name}")
        if spec.options:
            raise ConfigError("the Gemini provider takes no options",
                              key_path=f"providers.{spec.name}.options.{sorted(spec.options)[0]}")
        self.name = spec.name
        self._total = spec.total_timeout
        self._key = spec.api_key
        self._client = make_client(spec, {"x-goog-api-key": spec.api_key} if spec.api_key else {}, spec.base_url)

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

    def _check(self, status: int, headers: Mapping[str, str], content: bytes, model: str | None) -> None:
        # Gemini answers a bad key with 400 INVALID_ARGUMENT; its reason says what it really is.
        if status == 400 and b"API_KEY_INVALID" in content:
            raise AuthenticationError(redact(f"{self.name} rejected the API key: {content[:300]!r}", self._key),
                                      provider=self.name, model=model)
        raise_for_status(status, headers, content, provider=self.name, model=model, secrets=(self._key,))

    async def _post(self, model: ModelInfo, method: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with Deadline(self._total, self.name, model.name).within():
                reply = await self._client.request("POST", self._path(model, method), body=body)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider=self.name, model=model.name) from None
        content = reply.body
        self._check(reply.status, reply.headers, content, model.name)
        data: Any = parse_json(content, provider=self.name, model=model.name)
        if not isinstance(data, dict):
            raise ProviderError(f"{self.name} answered with {type(data).__name__}", provider=self.name,
                                model=model.name)
        return data

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        data = await self._post(model, "generateContent", wire.request_body(request))
        return wire.parse_response(data, model=model.name, provider=self.name)

    async def embed(self, request: EmbeddingRequest, model: ModelInfo) -> EmbeddingResponse:
        data = await self._post(model, "batchEmbedContents", wire.embedding_body(request, self._resource(model)))
        return wire.parse_embeddings(data, model=model.name, provider=self.name,
                                     estimated_tokens=sum(count_tokens(text, model) for text in request.input))

    async def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        deadline = Deadline(self._total, self.name, model.name)
        ids = wire.CallIds()
        finished = False
        try:
            async with self._client.stream("POST", self._path(model, "streamGenerateContent"), params={"alt": "sse"},
                                           body=wire.request_body(request)) as response:
                if response.status >= 400:
                    self._check(response.status, response.headers, await response.read(), model.name)
                async for _, payload in sse_events(response.lines()):
                    deadline.check()
                    data = parse_json(payload, provider=self.name, model=model.name)
                    if isinstance(data, dict) and "error" in data:
                        self._check(int(data["error"].get("code", 500)), {}, payload.encode(), model.name)
                    chunk = wire.parse_stream_event(data, ids, model=model.name, provider=self.name)
                    if chunk is not None:
                        finished = finished or chunk.finish_reason is not None
                        yield chunk
            if not finished:
                raise ProviderError(f"{self.name} ended the stream without a finishReason (truncated)",
                                    provider=self.name, model=model.name)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider=self.name, model=model.name) from None

    async def list_models(self) -> list[str]:
        try:
            reply = await self._client.request("GET", "/models", params={"pageSize": 1000})
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider=self.name, model=None) from None
        content = reply.body
        self._check(reply.status, reply.headers, content, None)
        data = parse_json(content, provider=self.name, model=None)
        if not isinstance(data, dict):
            return []
        return [str(m["name"]).removeprefix("models/") for m in data.get("models", [])]

    async def health(self) -> Health:
        return await listing_health(self.list_models)

    async def aclose(self) -> None:
        await self._client.aclose()

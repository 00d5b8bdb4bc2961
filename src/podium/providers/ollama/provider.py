"""The Ollama provider: a local or remote Ollama server, no key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from podium.catalogue import ModelInfo
from podium.config import ProviderSpec
from podium.errors import ConfigError, ProviderError
from podium.providers.base import Health
from podium.providers.http import (
    TRANSPORT_ERRORS,
    Deadline,
    get_json,
    listing_health,
    make_client,
    parse_json,
    post_json,
    raise_for_status,
    raise_mapped,
    transport_error,
)
from podium.providers.ollama import wire
from podium.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamChunk


class OllamaProvider:
    wire_name = "ollama"  # its column in podium.request_fields

    def __init__(self, spec: ProviderSpec) -> None:
        if not spec.base_url:
            raise ConfigError("the Ollama provider needs a base_url", key_path=f"providers.{spec.name}")
        base = spec.base_url if "://" in spec.base_url else f"http://{spec.base_url}"  # OLLAMA_HOST may omit it
        self.name = spec.name
        self._total = spec.total_timeout
        self._keep_alive = spec.options.get("keep_alive")
        headers = {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {}
        self._key = spec.api_key
        self._client = make_client(spec, headers, base)

    @classmethod
    def from_spec(cls, spec: ProviderSpec) -> OllamaProvider:
        unknown = set(spec.options) - {"keep_alive"}
        if unknown:
            raise ConfigError("unknown key (expected one of: keep_alive)",
                              key_path=f"providers.{spec.name}.options.{sorted(unknown)[0]}")
        return cls(spec)

    def _body(self, request: ChatRequest, model: ModelInfo, stream: bool) -> dict[str, Any]:
        body = wire.request_body(request, model.model_id, stream=stream)
        if self._keep_alive is not None:
            body["keep_alive"] = self._keep_alive
        return body

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        try:
            async with Deadline(self._total, self.name, model.name).within():
                reply = await self._client.request("POST", "/api/chat", body=self._body(request, model, False))
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider=self.name, model=model.name) from None
        content = reply.body
        raise_for_status(reply.status, reply.headers, content, provider=self.name, model=model.name,
                         secrets=(self._key,))
        data = parse_json(content, provider=self.name, model=model.name)
        if not isinstance(data, dict) or "message" not in data:
            raise ProviderError(f"{self.name} answered without a message: {content[:200]!r}", provider=self.name,
                                model=model.name)
        return wire.parse_response(data, model=model.name, provider=self.name)

    async def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        deadline = Deadline(self._total, self.name, model.name)
        decoder = wire.LineDecoder(model.name, self.name)
        try:
            body = self._body(request, model, True)
            async with self._client.stream("POST", "/api/chat", body=body) as response:
                if response.status >= 400:
                    raise_for_status(response.status, response.headers, await response.read(), provider=self.name,
                                     model=model.name, secrets=(self._key,))
                async for line in response.lines():
                    deadline.check()
                    if not line.strip():
                        continue
                    data = parse_json(line, provider=self.name, model=model.name)
                    if isinstance(data, dict) and "error" in data:
                        raise_mapped(500, f"{self.name} stream error: {data['error']}", None, None,
                                     provider=self.name, model=model.name)
                    chunk = decoder.feed(data)
                    if chunk is not None:
                        yield chunk
                    if decoder.done:
                        break
            if not decoder.done:
                raise ProviderError(f"{self.name} ended the stream without a done line (truncated)",
                                    provider=self.name, model=model.name)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider=self.name, model=model.name) from None

    async def embed(self, request: EmbeddingRequest, model: ModelInfo) -> EmbeddingResponse:
        data = await post_json(self._client, "/api/embed", wire.embedding_body(request, model.model_id),
                               provider=self.name, model=model.name, expect="embeddings", total=self._total,
                               secrets=(self._key,))
        return wire.parse_embeddings(data, model=model.name, provider=self.name)

    async def list_models(self) -> list[str]:
        data = await get_json(self._client, "/api/tags", provider=self.name, secrets=(self._key,))
        return [str(m["name"]) for m in data.get("models", [])] if isinstance(data, dict) else []

    async def health(self) -> Health:
        return await listing_health(self.list_models, "models pulled")

    async def aclose(self) -> None:
        await self._client.aclose()


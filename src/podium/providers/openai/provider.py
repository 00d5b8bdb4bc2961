"""The OpenAI-wire provider: an endpoint, a key and a pooled client around ``wire``.

Every OpenAI-compatible host (a row of ``providers/hosts.toml``, or ``kind: openai`` in the
config) is an instance of this one class with another base URL and headers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from podium.catalogue import ModelInfo
from podium.config import ProviderSpec
from podium.errors import ConfigError, PodiumError, ProviderError
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
    sse_events,
    transport_error,
)
from podium.providers.openai import wire
from podium.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, StreamChunk

_OPTIONS = {"max_tokens_field"}


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
        self._total = spec.total_timeout
        self._key = spec.api_key
        self._max_tokens_field: str | None = spec.options.get("max_tokens_field")
        headers = {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {}
        self._client = make_client(spec, headers, spec.base_url)

    @classmethod
    def from_spec(cls, spec: ProviderSpec) -> OpenAIProvider:
        return cls(spec)

    def _fail(self, exc: BaseException, model: str | None) -> PodiumError:
        return transport_error(exc, provider=self.name, model=model)

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        body = wire.request_body(request, model.model_id, stream=False, max_tokens_field=self._max_tokens_field)
        try:
            async with Deadline(self._total, self.name, model.name).within():
                reply = await self._client.request("POST", "/chat/completions", body=body)
        except TRANSPORT_ERRORS as exc:
            raise self._fail(exc, model.name) from None
        content = reply.body
        raise_for_status(reply.status, reply.headers, content, provider=self.name, model=model.name,
                         secrets=(self._key,))
        data = parse_json(content, provider=self.name, model=model.name)
        if not isinstance(data, dict) or not data.get("choices"):
            raise ProviderError(f"{self.name} answered without choices: {content[:200]!r}", provider=self.name,
                                model=model.name)
        return wire.parse_response(data, model=model.name, provider=self.name)

    async def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        deadline = Deadline(self._total, self.name, model.name)
        body = wire.request_body(request, model.model_id, stream=True, max_tokens_field=self._max_tokens_field)
        try:
            async with self._client.stream("POST", "/chat/completions", body=body) as response:
                if response.status >= 400:
                    raise_for_status(response.status, response.headers, await response.read(), provider=self.name,
                                     model=model.name, secrets=(self._key,))
                done = False
                async for _, payload in sse_events(response.lines()):
                    deadline.check()
                    if payload == "[DONE]":
                        done = True
                        break
                    data = parse_json(payload, provider=self.name, model=model.name)
                    if isinstance(data, dict) and "error" in data:
                        self._stream_error(data["error"], model.name)
                    chunk = wire.parse_chunk(data, model=model.name, provider=self.name)
                    if chunk is not None:
                        yield chunk
                if not done:
                    raise ProviderError(f"{self.name} ended the stream without [DONE] (truncated)",
                                        provider=self.name, model=model.name)
        except TRANSPORT_ERRORS as exc:
            raise self._fail(exc, model.name) from None

    def _stream_error(self, error: Any, model: str) -> None:
        """An error sent inside the stream after a 200 (OpenAI and vLLM do this)."""
        message = error.get("message", json.dumps(error)) if isinstance(error, dict) else str(error)
        code = error.get("code") or error.get("type") if isinstance(error, dict) else None
        status = int(code) if isinstance(code, int) or (isinstance(code, str) and code.isdigit()) else 500
        raise_mapped(status, f"{self.name} stream error: {message}", str(code) if code else None, None,
                     provider=self.name, model=model)

    async def embed(self, request: EmbeddingRequest, model: ModelInfo) -> EmbeddingResponse:
        data = await post_json(self._client, "/embeddings", wire.embedding_body(request, model.model_id),
                               provider=self.name, model=model.name, expect="data", total=self._total,
                               secrets=(self._key,))
        return wire.parse_embeddings(data, model=model.name, provider=self.name)

    async def list_models(self) -> list[str]:
        data = await get_json(self._client, "/models", provider=self.name, secrets=(self._key,))
        return [str(m["id"]) for m in data.get("data", [])] if isinstance(data, dict) else []

    async def health(self) -> Health:
        return await listing_health(self.list_models)

    async def aclose(self) -> None:
        await self._client.aclose()

"""The Anthropic provider: x-api-key, anthropic-version, and the Messages endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

from podium.catalogue import ModelInfo
from podium.config import ProviderSpec
from podium.errors import ConfigError, ProviderError
from podium.providers.anthropic import wire
from podium.providers.base import Health
from podium.providers.http import (
    TRANSPORT_ERRORS,
    Deadline,
    error_message,
    get_json,
    listing_health,
    make_client,
    parse_json,
    raise_for_status,
    raise_mapped,
    sse_events,
    transport_error,
)
from podium.types import ChatRequest, ChatResponse, StreamChunk


class AnthropicProvider:
    wire_name = "anthropic"  # its column in podium.request_fields

    def __init__(self, spec: ProviderSpec) -> None:
        if not spec.base_url:
            raise ConfigError("the Anthropic provider needs a base_url", key_path=f"providers.{spec.name}")
        self.name = spec.name
        self._total = spec.total_timeout
        self._key = spec.api_key
        headers = {"anthropic-version": str(spec.options.get("version", wire.API_VERSION))}
        if spec.api_key:
            headers["x-api-key"] = spec.api_key
        self._default_max_tokens = int(spec.options.get("default_max_tokens", wire.DEFAULT_MAX_TOKENS))
        self._client = make_client(spec, headers, spec.base_url)

    @classmethod
    def from_spec(cls, spec: ProviderSpec) -> AnthropicProvider:
        unknown = set(spec.options) - {"version", "default_max_tokens"}
        if unknown:
            raise ConfigError("unknown key (expected one of: default_max_tokens, version)",
                              key_path=f"providers.{spec.name}.options.{sorted(unknown)[0]}")
        return cls(spec)

    def _body(self, request: ChatRequest, model: ModelInfo, stream: bool) -> dict[str, object]:
        default = min(self._default_max_tokens, model.max_output_tokens or self._default_max_tokens)
        return wire.request_body(request, model.model_id, stream=stream, default_max_tokens=default)

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        try:
            async with Deadline(self._total, self.name, model.name).within():
                reply = await self._client.request("POST", "/v1/messages", body=self._body(request, model, False))
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider=self.name, model=model.name) from None
        content = reply.body
        raise_for_status(reply.status, reply.headers, content, provider=self.name, model=model.name,
                         secrets=(self._key,))
        data = parse_json(content, provider=self.name, model=model.name)
        if not isinstance(data, dict) or data.get("type") != "message":
            raise ProviderError(f"{self.name} answered with something other than a message: {content[:200]!r}",
                                provider=self.name, model=model.name)
        return wire.parse_response(data, model=model.name, provider=self.name)

    async def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        deadline = Deadline(self._total, self.name, model.name)
        decoder = wire.StreamDecoder(model.name, self.name)
        try:
            body = self._body(request, model, True)
            async with self._client.stream("POST", "/v1/messages", body=body) as response:
                if response.status >= 400:
                    raise_for_status(response.status, response.headers, await response.read(), provider=self.name,
                                     model=model.name, secrets=(self._key,))
                async for event, payload in sse_events(response.lines()):
                    deadline.check()
                    data = parse_json(payload, provider=self.name, model=model.name)
                    if event == "error" or (isinstance(data, dict) and data.get("type") == "error"):
                        message, code = error_message(payload.encode())
                        raise_mapped(200, f"{self.name} stream error: {message}", code, None, provider=self.name,
                                     model=model.name)
                    chunk = decoder.feed(event, data)
                    if chunk is not None:
                        yield chunk
                    if decoder.finished:
                        break
                if not decoder.finished:
                    raise ProviderError(f"{self.name} ended the stream without message_stop (truncated)",
                                        provider=self.name, model=model.name)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc, provider=self.name, model=model.name) from None

    async def list_models(self) -> list[str]:
        data = await get_json(self._client, "/v1/models", provider=self.name, secrets=(self._key,),
                              params={"limit": 1000})
        return [str(m["id"]) for m in data.get("data", [])] if isinstance(data, dict) else []

    async def health(self) -> Health:
        return await listing_health(self.list_models)

    async def aclose(self) -> None:
        await self._client.aclose()

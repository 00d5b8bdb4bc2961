"""The Anthropic provider: x-api-key, anthropic-version and the Messages endpoint over the call skeleton.

``max_tokens`` is required by the API. Without one in the request, the model's most output tokens from
the catalogue are sent (``max_output_tokens``), so an answer is never cut by a number Podium made up;
the option ``default_max_tokens`` is an explicit override of that, for users who want a cap. Whether a
model takes structured output (``output_config.format``) is its catalogue capability ``json``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from podium.catalogue import ModelInfo
from podium.config import ProviderSpec
from podium.providers.anthropic import wire
from podium.providers.call import Endpoint, RemoteProvider, check_spec
from podium.types import ChatRequest, ChatResponse, StreamChunk


class AnthropicProvider(RemoteProvider):
    wire_name = "anthropic"  # its column in podium.request_fields

    def __init__(self, spec: ProviderSpec) -> None:
        base_url = check_spec(spec, "the Anthropic provider", ("default_max_tokens", "version"))
        self.name = spec.name
        headers = {"anthropic-version": str(spec.options.get("version", wire.API_VERSION))}
        if spec.api_key:
            headers["x-api-key"] = spec.api_key
        override = spec.options.get("default_max_tokens")
        self._max_tokens = int(override) if override is not None else None
        self._http = Endpoint(spec, base_url, headers)

    @classmethod
    def from_spec(cls, spec: ProviderSpec) -> AnthropicProvider:
        return cls(spec)

    def _body(self, request: ChatRequest, model: ModelInfo, stream: bool) -> dict[str, Any]:
        most = self._max_tokens or model.max_output_tokens or wire.FALLBACK_MAX_TOKENS
        return wire.request_body(request, model.model_id, stream=stream, default_max_tokens=most,
                                 structured_output=model.has("json"))

    async def complete(self, request: ChatRequest, model: ModelInfo) -> ChatResponse:
        json_tool = wire.json_tool(request, model.has("json"))
        return await self._http.complete(
            "/v1/messages", self._body(request, model, False), model.name,
            lambda data: wire.parse_response(data, model=model.name, provider=self.name, json_tool=json_tool),
            expect=lambda data: data.get("type") == "message", answered="with something other than a message")

    def stream(self, request: ChatRequest, model: ModelInfo) -> AsyncIterator[StreamChunk]:
        decoder = wire.StreamDecoder(model.name, self.name, wire.json_tool(request, model.has("json")))
        return self._http.stream("/v1/messages", lambda: self._body(request, model, True), model.name, decoder,
                                 end="message_stop")

    async def list_models(self) -> list[str]:
        data = await self._http.get("/v1/models", params={"limit": 1000})
        return [str(m["id"]) for m in data.get("data", [])] if isinstance(data, dict) else []

"""POST /v1/embeddings: OpenAI's request and response shapes over ``Podium.embeddings``.

Reference: platform.openai.com/docs/api-reference/embeddings. ``input`` is a string or a list of
strings (token arrays are refused: Podium cannot know which tokenizer they were made with);
``encoding_format`` is ``float`` or ``base64`` (little-endian float32, what the official SDKs ask
for by default). The key's scopes, its and its team's RPM/TPM and budgets apply as for chat when
those middleware are on, and so do the guardrails (secrets and personal data blocked or redacted;
``route_local`` refuses personal data bound for a model outside the EU, Switzerland or this machine).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from podium.client import Podium
from podium.errors import BadRequestError
from podium.guardrails.policy import GuardrailPolicy, apply_to_texts
from podium.server.keys import Keys, VirtualKey
from podium.server.middleware import Quota
from podium.server.middleware.auth import check_scope, identify
from podium.server.state import SharedState
from podium.types import EmbeddingRequest, EmbeddingResponse, RequestMetadata, describe_validation_error

_FIELDS = {"input", "model", "encoding_format", "dimensions", "user"}


def parse_embedding_request(payload: Any) -> tuple[EmbeddingRequest, str, str | None]:
    """(request, encoding_format, user) or a ``BadRequestError`` naming the field."""
    if not isinstance(payload, dict):
        raise BadRequestError("the body must be a JSON object")
    unknown = sorted(set(payload) - _FIELDS)
    if unknown:
        raise BadRequestError(f"unknown parameter '{unknown[0]}' (supported: {', '.join(sorted(_FIELDS))})",
                              code="unknown_parameter")
    raw = payload.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not texts:
        raise BadRequestError("'input' must be a non-empty string or a non-empty list of strings")
    if not all(isinstance(t, str) for t in texts):
        raise BadRequestError("'input' must be text: token arrays are not supported (send the strings)")
    if any(not t for t in texts):
        raise BadRequestError("'input' must not contain empty strings")
    if len(texts) > 2048:
        raise BadRequestError(f"'input' has {len(texts)} items; the limit is 2048 per request")
    encoding = payload.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise BadRequestError("'encoding_format' must be 'float' or 'base64'")
    dimensions = payload.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool)
                                   or not 0 < dimensions <= 1_000_000):
        raise BadRequestError("'dimensions' must be a positive integer (at most 1,000,000)")
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequestError("'model' must be a string")
    user = payload.get("user")
    if user is not None and not isinstance(user, str):
        raise BadRequestError("'user' must be a string")
    return EmbeddingRequest(input=texts, model=model, dimensions=dimensions), encoding, user if isinstance(
        user, str) else None


def embedding_metadata(headers: Mapping[str, str]) -> RequestMetadata:
    """Sensitivity and preset from ``X-Podium-Sensitivity`` / ``X-Podium-Preset`` (OpenAI's embeddings API
    has no ``metadata``): confidential input goes only to an embedding model in an allowed region."""
    try:
        return RequestMetadata.model_validate({
            **({"sensitivity": headers["x-podium-sensitivity"]} if headers.get("x-podium-sensitivity") else {}),
            **({"preset": headers["x-podium-preset"]} if headers.get("x-podium-preset") else {})})
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error(exc)) from None


def _encode(vector: Sequence[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return list(vector)


def embedding_json(response: EmbeddingResponse, encoding: str) -> dict[str, Any]:
    tokens = response.usage.input_tokens
    return {"object": "list", "model": response.model,
            "data": [{"object": "embedding", "index": i, "embedding": _encode(v, encoding)}
                     for i, v in enumerate(response.vectors)],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


@dataclass
class EmbeddingCall:
    """One embedding request as the gateway saw it: for its log line and metrics."""

    request_id: str
    key: VirtualKey | None = None
    model: str | None = None
    response: EmbeddingResponse | None = None


class EmbeddingsRoute:
    def __init__(self, podium: Podium, keys: Keys, quota: Quota, state: SharedState, *, auth_required: bool,
                 limits: bool, budget: bool, guardrails: GuardrailPolicy | None) -> None:
        self.podium, self.keys, self.quota, self.state = podium, keys, quota, state
        self.auth_required, self.limits, self.budget, self.guardrails = auth_required, limits, budget, guardrails

    async def __call__(self, payload: Any, secret: str | None, call: EmbeddingCall,
                       headers: Mapping[str, str] | None = None) -> dict[str, Any]:
        request, encoding, user = parse_embedding_request(payload)
        call.model = request.model or self.podium.settings.embedding_model
        metadata = embedding_metadata(headers or {})
        key = call.key = await identify(self.keys, secret, required=self.auth_required)
        check_scope(key, call.model, self.podium.policies.allows)
        request_id = call.request_id
        model, _ = self.podium.embeddings.resolve(request.model)
        if self.guardrails is not None:  # secrets and personal data: blocked, redacted, or kept in the region
            texts, _ = apply_to_texts(request.input, self.guardrails, model.name, model.region)
            request = request.model_copy(update={"input": texts})
        if self.limits:
            await self.quota.take_request(key)
        policy = self.podium.policies.build(
            None, request_id=request_id, key_id=key.id if key else None, key_name=key.name if key else None,
            team=key.team if key else None, models=key.models if key else None,
            budgets=await self.quota.seeded_slots(key) if self.budget else (),
            token_limits=self.quota.token_limits(key) if self.limits else (), counters=self.state, metadata=metadata)
        response = call.response = await self.podium.embeddings.embed(request, user=user, policy=policy)
        return embedding_json(response, encoding)

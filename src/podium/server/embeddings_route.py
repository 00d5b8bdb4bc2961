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
from collections.abc import Sequence
from typing import Any

from podium.catalogue import count_tokens
from podium.client import Podium
from podium.errors import BadRequestError
from podium.guardrails.policy import GuardrailPolicy, apply_to_texts
from podium.server.keys import KeyStore
from podium.server.middleware import Quota, identify
from podium.types import EmbeddingRequest, EmbeddingResponse

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
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise BadRequestError("'dimensions' must be a positive integer")
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequestError("'model' must be a string")
    user = payload.get("user")
    return EmbeddingRequest(input=texts, model=model, dimensions=dimensions), encoding, user if isinstance(
        user, str) else None


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


class EmbeddingsRoute:
    def __init__(self, podium: Podium, keys: KeyStore, quota: Quota, *, auth_required: bool, limits: bool,
                 budget: bool, guardrails: GuardrailPolicy | None) -> None:
        self.podium, self.keys, self.quota = podium, keys, quota
        self.auth_required, self.limits, self.budget, self.guardrails = auth_required, limits, budget, guardrails

    async def __call__(self, payload: Any, secret: str | None) -> dict[str, Any]:
        request, encoding, user = parse_embedding_request(payload)
        key = identify(self.keys, secret, request.model or self.podium.settings.embedding_model,
                       required=self.auth_required)
        model, _ = self.podium.embeddings.resolve(request.model)
        if self.guardrails is not None:  # secrets and personal data: blocked, redacted, or kept in the region
            texts, _ = apply_to_texts(request.input, self.guardrails, model.name, model.region)
            request = request.model_copy(update={"input": texts})
        tokens = sum(count_tokens(text, model) for text in request.input)
        refund = await self.quota.take(key, tokens) if self.limits else None
        settle = await self.quota.reserve(key, tokens * model.input_price / 1e6) if self.budget else None
        response: EmbeddingResponse | None = None
        try:
            response = await self.podium.embeddings.embed(request, user=user)
        finally:
            if refund is not None:
                await refund(response.usage.input_tokens if response is not None else 0)
            if settle is not None:
                await settle(response.cost if response is not None else 0.0)
        return embedding_json(response, encoding)

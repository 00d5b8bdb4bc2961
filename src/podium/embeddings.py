"""Embeddings: text → vectors through any provider that has an embeddings API, accounted like chat.

Chat requests are routed; an embedding request names its model (or takes
``routing.embedding_model``, the local one by default), because vectors from two models are not
comparable and a silent fallback to another model would corrupt whatever index they go into. For
the same reason there is no cross-model fallback here. Each request is one ledger request with one
call row, priced from the catalogue.

The request's policy applies as for chat, at the same point just before the provider is called:
the key's scope and the data's regions must allow the model, and the input's cost is held in the
key's and team's budgets (and its tokens in their limits) until the real usage settles it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from podium.catalogue import ModelInfo
from podium.catalogue.tokens import WORST_PER_MESSAGE
from podium.errors import BadRequestError, NotFoundError, PodiumError, ProviderError
from podium.ledger import CallRow, LedgerStore, RequestEnd, RequestStart
from podium.policy import RequestPolicy, release
from podium.providers import EmbeddingProvider
from podium.types import EmbeddingRequest, EmbeddingResponse, Usage, new_request_id

if TYPE_CHECKING:
    from podium.config import Settings
    from podium.providers import ProviderRegistry


class Embeddings:
    def __init__(self, settings: Settings, registry: ProviderRegistry, ledger: LedgerStore | None) -> None:
        self.settings, self.registry, self.ledger = settings, registry, ledger

    def models(self) -> list[ModelInfo]:
        """Embedding models whose provider is on and can embed."""
        return self.registry.list_models(capability="embeddings")

    def resolve(self, name: str | None) -> tuple[ModelInfo, EmbeddingProvider]:
        model = self.settings.catalogue.get(name or self.settings.embedding_model)
        if "embeddings" not in model.capabilities:
            choices = ", ".join(m.name for m in self.models()) or "none enabled"
            raise BadRequestError(f"'{model.name}' is not an embedding model; embedding models: {choices}",
                                  model=model.name, code="model_not_embedding")
        if model.provider not in self.registry.list_providers():  # as for chat: the request names what is off
            spec = self.settings.providers.get(model.provider)
            reason = spec.reason if spec else "not configured"
            raise NotFoundError(f"model '{model.name}' needs provider '{model.provider}', which is not enabled "
                                f"({reason})", provider=model.provider, model=model.name, code="provider_not_enabled")
        provider = self.registry.get_provider(model.provider)
        if not isinstance(provider, EmbeddingProvider):
            raise BadRequestError(f"provider '{model.provider}' has no embeddings API", model=model.name,
                                  provider=model.provider)
        return model, provider

    async def embed(self, request: EmbeddingRequest, *, user: str | None = None,
                    policy: RequestPolicy | None = None, step: str | None = None) -> EmbeddingResponse:
        """Vectors for ``request``, under ``policy`` (the gateway's, from the caller's key; default: none).

        ``step``: the vectors serve another request (the semantic cache's lookup for a chat request): the
        call is recorded under that request's id, as one of its calls, with no request row of its own."""
        model, provider = self.resolve(request.model)
        policy = policy or RequestPolicy(new_request_id())
        request_id = policy.request_id
        policy.check(model)
        hold = None
        if policy.counters is not None and (policy.budgets or policy.token_limits):  # at most a token a byte
            worst = sum(len(text.encode()) + WORST_PER_MESSAGE for text in request.input)
            hold = await policy.hold(model, worst, 0)
        wall_start, started = time.time(), time.perf_counter()
        response: EmbeddingResponse | None = None
        error: BaseException | None = None
        try:
            if self.ledger is not None:
                if step is None:
                    await self.ledger.start_request(RequestStart(
                        request_id, wall_start, request.model or model.name, "embeddings", "embeddings", user,
                        key_id=policy.key_id, team=policy.team))
                await self.ledger.flush(request_id)
            response = await provider.embed(request, model)
        except BaseException as exc:
            error = exc
            raise
        finally:
            usage = response.usage if response is not None else Usage()
            try:
                await self._account(request_id, model, wall_start, started, response, error, step)
            finally:
                await release(hold, model.cost_of(usage), usage.input_tokens)
        if len(response.vectors) != len(request.input):
            raise ProviderError(f"'{model.name}' returned {len(response.vectors)} vectors for "
                                f"{len(request.input)} inputs", provider=model.provider, model=model.name)
        return response.model_copy(update={"id": request_id, "cost": model.cost_of(response.usage),
                                           "latency_ms": (time.perf_counter() - started) * 1000})

    async def embed_one(self, text: str, model: str | None = None, *, user: str | None = None,
                        policy: RequestPolicy | None = None, step: str | None = None) -> list[float]:
        response = await self.embed(EmbeddingRequest(input=[text], model=model), user=user, policy=policy, step=step)
        return response.vectors[0]

    async def _account(self, request_id: str, model: ModelInfo, wall_start: float, started: float,
                       response: EmbeddingResponse | None, error: BaseException | None, step: str | None) -> None:
        if self.ledger is None:
            return
        latency_ms = (time.perf_counter() - started) * 1000
        usage = response.usage if response is not None else Usage()
        cost = model.cost_of(usage)
        status = "ok" if error is None else "error"
        message = None if error is None else error.message if isinstance(error, PodiumError) else repr(error)
        await self.ledger.record_call(CallRow(request_id, wall_start, model.provider, model.name, status, latency_ms,
                                              input_tokens=usage.input_tokens, cost=cost, error=message,
                                              step=step or "embed"))
        if step is not None:
            return  # a call of another request, which writes its own finish row
        await self.ledger.finish_request(RequestEnd(request_id, time.time(), status, model.name, model.provider,
                                                    usage.input_tokens, 0, cost, latency_ms, 1, error=message))

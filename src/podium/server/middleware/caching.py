"""Serve repeated requests from the cache: exact match first, then (if on) semantic match.

A hit is a ledger request with zero cost and no model calls, under the request's own id, and a
``cache_hits`` metric. Only whole, successful, non-streamed answers are stored.

Answers are kept apart per key by default (``gateway.cache.share``: ``key``, ``team`` or
``global``): one caller's question and answer are never served to another caller unless the
config says they may share — and then only among callers whose keys have the same scope, so no key
is served an answer from a model it may not use.

The semantic lookup embeds the question under the request's own policy: its regions (a confidential
question is never sent to an embedding model elsewhere; the lookup is skipped, with a note), its
budget, and its request id (the embedding is one of the request's calls in the ledger).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from podium.client import Podium
from podium.ledger import RequestEnd, RequestStart
from podium.policy import RequestPolicy
from podium.server.cache import ResponseCache, cache_key
from podium.server.metrics import Metrics
from podium.server.middleware.base import GatewayCall, Handler, Outcome
from podium.server.semantic_cache import Question, SemanticIndex, anchors, last_user_text, semantic_bucket
from podium.types import ChatResponse, Trace

_STORABLE = {"stop", "length", "tool_calls"}


@dataclass(frozen=True)
class Semantic:
    index: SemanticIndex
    threshold: float
    model: str | None  # the embedding model (gateway.cache.semantic_model)


class Cache:
    def __init__(self, next_handler: Handler, cache: ResponseCache, podium: Podium, metrics: Metrics,
                 semantic: Semantic | None = None, share: str = "key",
                 lookup_policy: Callable[[GatewayCall], Awaitable[RequestPolicy]] | None = None) -> None:
        self.next, self.cache, self.podium, self.metrics, self.semantic = next_handler, cache, podium, metrics, semantic
        self.share = share
        self.lookup_policy = lookup_policy

    def partition(self, call: GatewayCall) -> str:
        """Whose answers this caller may be served: its key's; with sharing on, its team's or everyone's
        among keys of the same scope."""
        key = call.key
        if key is None:
            return "anonymous" if self.share == "key" else "global:any"
        if self.share == "key":
            return f"key:{key.id}"
        scope = "any" if key.models is None else hashlib.sha256("\n".join(sorted(key.models)).encode()).hexdigest()[:16]
        if self.share == "team" and key.team:
            return f"team:{key.team}:{scope}"
        return f"global:{scope}"

    async def __call__(self, call: GatewayCall) -> Outcome:
        if call.request.stream or call.bypass_cache:
            return await self.next(call)
        partition = self.partition(call)
        key = cache_key(call.request, partition)
        try:
            found = await self._lookup(call, key, partition)
        except Exception as exc:  # a cache that is down (Redis, the embedding model) is a miss, not a failed request
            call.notes.append(f"cache unavailable ({type(exc).__name__}: {str(exc)[:120]}): answered without it")
            return await self.next(call)
        if isinstance(found, ChatResponse):
            return found
        question, bucket = found
        outcome = await self.next(call)

        async def store(response: ChatResponse | None, error: BaseException | None) -> None:
            if response is None or error is not None or response.finish_reason not in _STORABLE:
                return
            try:
                await self.cache.put(key, response)
                if self.semantic is not None and question is not None:
                    await self.semantic.index.add(bucket, question, response)
            except Exception as exc:  # the answer is out already; a cache that is down only misses later
                call.notes.append(f"cache not updated ({type(exc).__name__})")

        call.after.append(store)
        return outcome

    async def _lookup(self, call: GatewayCall, key: str, partition: str) -> ChatResponse | tuple[Question | None, str]:
        """The cached answer, or what storing the new answer needs (the question's vector and bucket)."""
        hit = await self.cache.get(key)
        if hit is not None:
            return await self._serve(call, hit, "exact", self._hit_note(call, hit, "cache hit"))
        text = last_user_text(call.request) if self.semantic is not None else None
        if self.semantic is None or text is None:
            return None, ""
        bucket = semantic_bucket(call.request, partition)
        policy = await self.lookup_policy(call) if self.lookup_policy is not None else None
        if policy is not None:
            model, _ = self.podium.embeddings.resolve(self.semantic.model)
            refused = policy.permit(model)
            if refused is not None:
                call.notes.append(f"semantic cache skipped: {refused}")
                return None, ""
        vector = await self.podium.embeddings.embed_one(text, self.semantic.model, user="semantic-cache",
                                                        policy=policy, step="semantic-cache")
        question = Question(vector, anchors(text))
        found = await self.semantic.index.nearest(bucket, question, self.semantic.threshold)
        if found is None:
            return question, bucket
        return await self._serve(call, found.response, "semantic", self._hit_note(
            call, found.response, f"semantic cache hit (similarity {found.similarity:.3f})"))

    def _hit_note(self, call: GatewayCall, hit: ChatResponse, what: str) -> str:
        """Which earlier request answered — only where every caller who can hit it is the same key: another
        key's request ids are not this caller's to see (feedback on them is refused as well)."""
        return f"{what}: the answer of {hit.id}" if self.share == "key" and call.key is not None else what

    async def _serve(self, call: GatewayCall, hit: ChatResponse, kind: str, note: str) -> ChatResponse:
        self.metrics.cache_hits.labels(self.metrics.label(hit.model), kind).inc()
        request_id = call.request_id
        trace = Trace(request_id=request_id, strategy="cache", notes=[note])
        ledger = self.podium.ledger
        if ledger is not None:
            request, key = call.request, call.key
            await ledger.start_request(RequestStart(request_id, time.time(), request.model,
                                                    request.metadata.task_type, "cache", request.metadata.user,
                                                    tuple(request.metadata.tags), key_id=key.id if key else None,
                                                    team=key.team if key else None))
            await ledger.finish_request(RequestEnd(request_id, time.time(), "ok", hit.model, hit.provider, 0, 0, 0.0,
                                                   0.0, 0, rationale=note))
        return hit.model_copy(update={"id": request_id, "cost": 0.0, "latency_ms": 0.0, "trace": trace,
                                      "created": time.time()})

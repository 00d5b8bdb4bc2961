"""Prometheus metrics for the gateway, in a registry of its own (one per app, so tests stay apart).

Every outcome is counted, refusals included (401, 403, 429, guardrail blocks, oversized bodies),
whichever middleware refused. Label values come from bounded sets only: a model label is a
catalogue or strategy name, the kind of an inline strategy (``consensus:…``), ``auto`` or
``other`` — never a string a client made up, which would grow the registry without bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from podium import errors
from podium.errors import PodiumError
from podium.types import ChatResponse, EmbeddingResponse


@dataclass(frozen=True)
class _Series:
    ok: Any
    latency: Any
    input_tokens: Any
    output_tokens: Any
    cost: Any


_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Why a request was refused before (or instead of) an answer, by error class; first match wins.
_REFUSALS: tuple[tuple[type[PodiumError], str], ...] = (
    (errors.AuthenticationError, "unauthenticated"), (errors.ScopeError, "scope"), (errors.RegionError, "region"),
    (errors.BudgetExceededError, "budget"), (errors.LimitExceededError, "rate_limit"),
)


def refusal(error: BaseException) -> str | None:
    """The refusal reason of ``error`` (a bounded label), or None when it is not a refusal."""
    for cls, reason in _REFUSALS:
        if isinstance(error, cls):
            return reason
    if isinstance(error, errors.ContentFilteredError) and error.code == "guardrail_blocked":
        return "guardrail"
    if isinstance(error, errors.PodiumError) and error.code == "request_too_large":
        return "too_large"
    return None


class Metrics:
    def __init__(self, known: Callable[[str], str | None] | None = None) -> None:
        """``known`` maps a requested model name to its label (None: not a name Podium knows)."""
        self.known = known or (lambda name: name)
        self.registry = CollectorRegistry()
        labels = ["model", "provider", "status"]
        self.requests = Counter("podium_requests", "Requests by outcome", labels, registry=self.registry)
        self.latency = Histogram("podium_request_seconds", "Request latency", ["model", "provider", "stream"],
                                 buckets=_BUCKETS, registry=self.registry)
        self.tokens = Counter("podium_tokens", "Tokens", ["model", "provider", "direction"], registry=self.registry)
        self.cost = Counter("podium_cost_usd", "Cost in US dollars", ["model", "provider"], registry=self.registry)
        self.errors = Counter("podium_errors", "Errors by type", ["model", "type"], registry=self.registry)
        self.refused = Counter("podium_refused", "Requests refused before an answer (auth, scope, region, budget, "
                               "rate limit, guardrail, body size)", ["reason"], registry=self.registry)
        self.fallbacks = Counter("podium_fallbacks", "Requests answered after a fallback", ["model"],
                                 registry=self.registry)
        self.retries = Counter("podium_retries", "Retried attempts", ["model"], registry=self.registry)
        self._children: dict[tuple[str, str, bool], _Series] = {}
        self._labels: dict[str, str] = {}
        self.cache_hits = Counter("podium_cache_hits", "Answers served from the cache", ["model", "kind"],
                                  registry=self.registry)

    def label(self, name: str | None) -> str:
        """A bounded label for a model name a client sent or a response carries."""
        if not name:
            return "auto"
        found = self._labels.get(name)
        if found is None:
            found = self.known(name) or "other"
            if found != "other":  # only names Podium knows are remembered, so this stays bounded
                self._labels[name] = found
        return found

    def failed(self, model: str | None, error: BaseException) -> None:
        label = self.label(model)
        kind = error.error_type if isinstance(error, PodiumError) else "internal_error"
        self.requests.labels(label, "", "error").inc()
        self.errors.labels(label, kind).inc()
        reason = refusal(error)
        if reason is not None:
            self.refused.labels(reason).inc()

    def _series(self, model: str, provider: str, stream: bool) -> _Series:
        """The labelled children of one (model, provider, stream), looked up once: ``labels()`` costs a
        few µs each and a request touches five of them."""
        key = (model, provider, stream)
        series = self._children.get(key)
        if series is None:
            series = self._children[key] = _Series(
                self.requests.labels(model, provider, "ok"),
                self.latency.labels(model, provider, "true" if stream else "false"),
                self.tokens.labels(model, provider, "input"), self.tokens.labels(model, provider, "output"),
                self.cost.labels(model, provider))
        return series

    def finished(self, response: ChatResponse, seconds: float, stream: bool) -> None:
        model = self.label(response.model)
        series = self._series(model, response.provider, stream)
        series.ok.inc()
        series.latency.observe(seconds)
        series.input_tokens.inc(response.usage.input_tokens)
        series.output_tokens.inc(response.usage.output_tokens)
        series.cost.inc(response.cost)
        notes = response.trace.notes if response.trace else []
        if any(n.startswith("fallback →") for n in notes):
            self.fallbacks.labels(model).inc()
        retried = sum(1 for n in notes if n.startswith("attempt"))
        if retried:
            self.retries.labels(model).inc(retried)

    def embedded(self, response: EmbeddingResponse, seconds: float) -> None:
        model = self.label(response.model)
        self.requests.labels(model, response.provider, "ok").inc()
        self.latency.labels(model, response.provider, "false").observe(seconds)
        self.tokens.labels(model, response.provider, "input").inc(response.usage.input_tokens)
        self.cost.labels(model, response.provider).inc(response.cost)

    def render(self) -> bytes:
        return generate_latest(self.registry)

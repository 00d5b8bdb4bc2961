"""Prometheus metrics for the gateway, in a registry of its own (one per app, so tests stay apart)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from podium.errors import PodiumError
from podium.types import ChatResponse


@dataclass(frozen=True)
class _Series:
    ok: Any
    latency: Any
    input_tokens: Any
    output_tokens: Any
    cost: Any


_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["model", "provider", "status"]
        self.requests = Counter("podium_requests", "Requests by outcome", labels, registry=self.registry)
        self.latency = Histogram("podium_request_seconds", "Request latency", ["model", "provider", "stream"],
                                 buckets=_BUCKETS, registry=self.registry)
        self.tokens = Counter("podium_tokens", "Tokens", ["model", "provider", "direction"], registry=self.registry)
        self.cost = Counter("podium_cost_usd", "Cost in US dollars", ["model", "provider"], registry=self.registry)
        self.errors = Counter("podium_errors", "Errors by type", ["model", "type"], registry=self.registry)
        self.fallbacks = Counter("podium_fallbacks", "Requests answered after a fallback", ["model"],
                                 registry=self.registry)
        self.retries = Counter("podium_retries", "Retried attempts", ["model"], registry=self.registry)
        self._children: dict[tuple[str, str, bool], _Series] = {}
        self.cache_hits = Counter("podium_cache_hits", "Answers served from the cache", ["model", "kind"],
                                  registry=self.registry)

    def failed(self, model: str | None, error: PodiumError, seconds: float) -> None:
        self.requests.labels(model or "auto", error.provider or "", "error").inc()
        self.errors.labels(model or "auto", error.error_type).inc()

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

    def finished(self, response: ChatResponse | None, error: BaseException | None, seconds: float,
                 stream: bool) -> None:
        if response is None:
            if isinstance(error, PodiumError):
                self.failed(None, error, seconds)
            return
        model = response.model
        series = self._series(model, response.provider, stream)
        series.ok.inc()
        series.latency.observe(seconds)
        series.input_tokens.inc(response.usage.input_tokens)
        series.output_tokens.inc(response.usage.output_tokens)
        series.cost.inc(response.cost)
        notes = response.trace.notes if response.trace else []
        if any(n.startswith("fallback") for n in notes):
            self.fallbacks.labels(model).inc()
        retried = sum(1 for n in notes if n.startswith("attempt"))
        if retried:
            self.retries.labels(model).inc(retried)

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""Prometheus metrics for the gateway, in a registry of its own (one per app, so tests stay apart)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from podium.errors import PodiumError
from podium.types import ChatResponse

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
        self.cache_hits = Counter("podium_cache_hits", "Answers served from the cache", ["model", "kind"],
                                  registry=self.registry)

    def failed(self, model: str | None, error: PodiumError, seconds: float) -> None:
        self.requests.labels(model or "auto", error.provider or "", "error").inc()
        self.errors.labels(model or "auto", error.error_type).inc()

    def finished(self, response: ChatResponse | None, error: BaseException | None, seconds: float,
                 stream: bool) -> None:
        if response is None:
            if isinstance(error, PodiumError):
                self.failed(None, error, seconds)
            return
        model, provider = response.model, response.provider
        self.requests.labels(model, provider, "ok").inc()
        self.latency.labels(model, provider, "true" if stream else "false").observe(seconds)
        self.tokens.labels(model, provider, "input").inc(response.usage.input_tokens)
        self.tokens.labels(model, provider, "output").inc(response.usage.output_tokens)
        self.cost.labels(model, provider).inc(response.cost)
        notes = response.trace.notes if response.trace else []
        if any(n.startswith("fallback") for n in notes):
            self.fallbacks.labels(model).inc()
        retried = sum(1 for n in notes if n.startswith("attempt"))
        if retried:
            self.retries.labels(model).inc(retried)

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""OpenTelemetry spans: one per request, one per strategy run, one per model call, nested so.

Off by default and then free: every hook is a ``None`` check. On (``telemetry.enabled``), spans go
to the process's global tracer provider, so an application that already set up OpenTelemetry gets
Podium's spans in its own traces; with ``telemetry.otlp_endpoint`` Podium builds a provider of its
own that batches spans to that OTLP/HTTP collector. A W3C ``traceparent`` header on a gateway
request makes the request span a child of the caller's span.

Attributes follow the GenAI semantic conventions (``gen_ai.*``) plus ``podium.*`` for what they do
not cover (cost, strategy, routing rationale). Prompts and answers are never recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.errors import DependencyMissingError, PodiumError

OTEL_EXTRA = "pip install 'podium[otel]'"
Span = Any  # opentelemetry.trace.Span; typed loosely so the package imports without OpenTelemetry


class Telemetry:
    def __init__(self, tracer: Any = None, provider: Any = None) -> None:
        self._tracer = tracer
        self._provider = provider  # owned (built from otlp_endpoint): flushed and shut down on close

    @classmethod
    def off(cls) -> Telemetry:
        return cls()

    @classmethod
    def from_settings(cls, enabled: bool, otlp_endpoint: str | None, service_name: str,
                      tracer_provider: Any = None) -> Telemetry:
        if not enabled:
            return cls()
        try:
            from opentelemetry import trace
        except ImportError:
            raise DependencyMissingError("OpenTelemetry (telemetry.enabled is true)", OTEL_EXTRA) from None
        owned = None
        if tracer_provider is None and otlp_endpoint:
            try:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
                from opentelemetry.sdk.resources import Resource
                from opentelemetry.sdk.trace import TracerProvider
                from opentelemetry.sdk.trace.export import BatchSpanProcessor
            except ImportError:
                raise DependencyMissingError("the OTLP exporter (telemetry.otlp_endpoint is set)", OTEL_EXTRA) from None
            owned = TracerProvider(resource=Resource.create({"service.name": service_name}))
            endpoint = otlp_endpoint.rstrip("/")
            owned.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
                endpoint=endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces")))
            tracer_provider = owned
        return cls(trace.get_tracer("podium", tracer_provider=tracer_provider), owned)

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def extract(self, headers: Mapping[str, str]) -> Any:
        """The caller's trace context from W3C ``traceparent``/``tracestate`` headers (None if absent)."""
        if self._tracer is None or "traceparent" not in headers:
            return None
        from opentelemetry.propagate import extract

        return extract(dict(headers))

    def start(self, name: str, attributes: Mapping[str, Any], *, parent: Span = None, context: Any = None) -> Span:
        """A started span (not made current: its parent is passed explicitly, which stays right across
        the tasks and generators a stream runs in). None when telemetry is off."""
        if self._tracer is None:
            return None
        if parent is not None:
            from opentelemetry import trace

            context = trace.set_span_in_context(parent)
        return self._tracer.start_span(name, context=context,
                                       attributes={k: v for k, v in attributes.items() if v is not None})

    @staticmethod
    def end(span: Span, error: BaseException | None = None, attributes: Mapping[str, Any] | None = None) -> None:
        if span is None:
            return
        if attributes:
            span.set_attributes({k: v for k, v in attributes.items() if v is not None})
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            message = error.message if isinstance(error, PodiumError) else type(error).__name__
            span.set_status(Status(StatusCode.ERROR, message))
            span.set_attribute("error.type", getattr(error, "error_type", type(error).__name__))
        span.end()

    def shutdown(self) -> None:
        if self._provider is not None:
            self._provider.shutdown()

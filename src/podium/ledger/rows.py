"""What the ledger records: one row per request and one per model call."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RequestStart:
    request_id: str
    started_at: float
    requested_model: str | None
    task_type: str | None = None
    strategy: str = "single"
    user: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)

    def values(self) -> tuple[object, ...]:
        """In ``schema.INSERT_REQUEST``'s order."""
        return (self.request_id, self.started_at, self.requested_model, self.task_type, self.strategy, self.user,
                ",".join(self.tags))


@dataclass(frozen=True)
class CallRow:
    request_id: str
    started_at: float
    provider: str
    model: str
    status: str
    latency_ms: float
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float = 0.0
    error: str | None = None
    step: str | None = None

    def values(self, seq: int) -> tuple[object, ...]:
        """In ``schema.INSERT_CALL``'s order (explicit: ``dataclasses.astuple`` deep-copies, 180 µs a row)."""
        return (self.request_id, self.started_at, self.provider, self.model, self.status, self.latency_ms,
                self.input_tokens, self.output_tokens, self.cached_input_tokens, self.reasoning_tokens, self.cost,
                self.error, self.step, seq)


@dataclass(frozen=True)
class RequestEnd:
    request_id: str
    finished_at: float
    status: str
    model: str | None
    provider: str | None
    input_tokens: int
    output_tokens: int
    cost: float
    latency_ms: float
    calls: int
    error: str | None = None
    rationale: str | None = None
    retries: int = 0
    fallbacks: int = 0
    deployment: str | None = None
    notes: str | None = None

    def values(self) -> tuple[object, ...]:
        """In ``schema.FINISH_REQUEST``'s order."""
        return (self.finished_at, self.status, self.model, self.provider, self.input_tokens, self.output_tokens,
                self.cost, self.latency_ms, self.calls, self.error, self.rationale, self.retries, self.fallbacks,
                self.deployment, self.notes, self.request_id)

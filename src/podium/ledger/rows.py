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

"""What the ledger records: one row per request and one per model call.

``values()`` gives a row's columns in its statement's order, each checked and mended by
``checks`` (wrong types raise ``InvalidRow``, long text is cut): a bad row fails when it is
recorded, in its caller, not later in a batch shared with other requests' rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from podium.ledger.checks import (
    MAX_TEXT,
    count,
    error_text,
    ident,
    ident_or_none,
    number,
    number_or_none,
    tags,
    text,
    text_or_none,
)


@dataclass(frozen=True)
class RequestStart:
    request_id: str
    started_at: float
    requested_model: str | None
    task_type: str | None = None
    strategy: str = "single"
    user: str | None = None
    tags: tuple[str, ...] = field(default_factory=tuple)
    key_id: str | None = None  # the virtual key's id (never the key), who to ask about the request
    team: str | None = None  # the key's team
    experiment: str | None = None  # the A/B experiment it took part in …
    arm: str | None = None  # … and the arm that served it

    def values(self) -> tuple[object, ...]:
        """In ``schema.INSERT_REQUEST``'s order."""
        return (ident(self.request_id, "request_id"), number(self.started_at, "started_at"),
                text_or_none(self.requested_model, "requested_model"), text_or_none(self.task_type, "task_type"),
                text(self.strategy, "strategy"), text_or_none(self.user, "user"), tags(self.tags),
                ident_or_none(self.key_id, "key_id"), text_or_none(self.team, "team"),
                text_or_none(self.experiment, "experiment"), text_or_none(self.arm, "arm"))


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
    ttft_ms: float | None = None  # a streamed call's time to its first chunk; None when not streamed

    def values(self, seq: int) -> tuple[object, ...]:
        """In ``schema.INSERT_CALL``'s order (explicit: ``dataclasses.astuple`` deep-copies, 180 µs a row)."""
        return (ident(self.request_id, "request_id"), number(self.started_at, "started_at"),
                text(self.provider, "provider"), text(self.model, "model"), text(self.status, "status"),
                number(self.latency_ms, "latency_ms"), count(self.input_tokens, "input_tokens"),
                count(self.output_tokens, "output_tokens"), count(self.cached_input_tokens, "cached_input_tokens"),
                count(self.reasoning_tokens, "reasoning_tokens"), number(self.cost, "cost"),
                error_text(self.error, "error"), text_or_none(self.step, "step"),
                number_or_none(self.ttft_ms, "ttft_ms"), seq)


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
        return (number(self.finished_at, "finished_at"), text(self.status, "status"),
                text_or_none(self.model, "model"), text_or_none(self.provider, "provider"),
                count(self.input_tokens, "input_tokens"), count(self.output_tokens, "output_tokens"),
                number(self.cost, "cost"), number(self.latency_ms, "latency_ms"), count(self.calls, "calls"),
                error_text(self.error, "error"), text_or_none(self.rationale, "rationale", MAX_TEXT),
                count(self.retries, "retries"), count(self.fallbacks, "fallbacks"),
                text_or_none(self.deployment, "deployment"), error_text(self.notes, "notes"),
                ident(self.request_id, "request_id"))


@dataclass(frozen=True)
class ShadowRow:
    """One shadow trial of one served request: what the candidate answered (compared, never the text),
    cost and took, or why it was not asked (``status``: ok, error, skipped, dropped, cancelled)."""

    request_id: str  # the served request
    trial: str
    created_at: float
    candidate: str
    status: str
    task_type: str | None = None
    agreed: bool | None = None
    score: float | None = None
    served_model: str | None = None
    served_cost: float = 0.0
    served_latency_ms: float | None = None
    candidate_cost: float = 0.0
    judge_cost: float = 0.0
    latency_ms: float | None = None
    shadow_id: str | None = None  # the request id the shadow's own call rows carry
    error: str | None = None

    def values(self) -> tuple[object, ...]:
        """In ``schema.INSERT_SHADOW``'s order."""
        return (ident(self.request_id, "request_id"), text(self.trial, "trial"), number(self.created_at, "created_at"),
                text_or_none(self.task_type, "task_type"), text(self.candidate, "candidate"),
                text(self.status, "status"), None if self.agreed is None else int(bool(self.agreed)),
                number_or_none(self.score, "score"), text_or_none(self.served_model, "served_model"),
                number(self.served_cost, "served_cost"), number_or_none(self.served_latency_ms, "served_latency_ms"),
                number(self.candidate_cost, "candidate_cost"), number(self.judge_cost, "judge_cost"),
                number_or_none(self.latency_ms, "latency_ms"), ident_or_none(self.shadow_id, "shadow_id"),
                error_text(self.error, "error"))


@dataclass(frozen=True)
class KeyUsage:
    """What one key's calls amounted to (``LedgerStore.usage_since``)."""

    calls: int = 0
    cost: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0

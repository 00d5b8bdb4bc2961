"""Reports on A/B experiments and shadow trials, from the ledger (SQLite or PostgreSQL alike).

``experiment_report``: per arm — requests, error rate, mean cost, p50/p95 latency and mean feedback
score, each with a 95 % interval — and each arm's difference from the control arm with its interval
and whether that excludes 0 (``podium.experiments.stats`` says which interval is used for what).
Requests still running or cancelled by their client are left out (they have no outcome); the error
rate is over answered and failed requests, latency over answered ones, the cost over both (a failed
request can cost money too), and feedback is each request's mean score, for requests that have one —
scores in 0..1 only: ``/v1/feedback`` stores any finite number (a 1 to 5 rating, say), but a mean over
mixed scales means nothing, so other scores are left out of the report.

``shadow_report``: per task type (and all together) — how many sampled requests the candidate
answered, how often it agreed with the served answer (Wilson interval), what the candidate cost
against what was served (the saving had the candidate served them, with the mean saving's t
interval), and both latencies; plus how many trials failed, were skipped by the policy, dropped
for a full queue or cancelled by a shutdown.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from podium.errors import PodiumError
from podium.experiments.stats import Estimate, mean_t, newcombe, quantile, quantile_diff, welch, wilson

Query = Callable[[str, tuple[Any, ...]], Sequence[Sequence[Any]]]
T = TypeVar("T")

_REQUESTS = """
    SELECT request_id, arm, status, cost, latency_ms FROM requests
    WHERE experiment = ? AND started_at >= ? AND status IN ('ok', 'error')"""
_FEEDBACK = """
    SELECT f.request_id, AVG(f.score) FROM feedback f JOIN requests r ON r.request_id = f.request_id
    WHERE r.experiment = ? AND r.started_at >= ? AND f.score IS NOT NULL AND f.score >= 0 AND f.score <= 1
    GROUP BY f.request_id"""
_SHADOW = """
    SELECT COALESCE(task_type, '(none)'), status, agreed, served_cost, candidate_cost, served_latency_ms, latency_ms,
           judge_cost
    FROM shadow_trials WHERE trial = ? AND created_at >= ?"""


def _finite(e: Estimate) -> dict[str, Any]:
    """An estimate for JSON: nan (no data) as null."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(e).items()} | {
        "excludes_zero": e.excludes_zero}


@dataclass(frozen=True)
class ArmReport:
    arm: str
    control: bool
    requests: int
    errors: int
    error_rate: Estimate
    mean_cost: Estimate
    p50_latency_ms: Estimate
    p95_latency_ms: Estimate
    feedback: Estimate
    feedback_count: int
    vs_control: dict[str, Estimate]  # metric -> this arm minus control (empty for the control arm)

    def to_dict(self) -> dict[str, Any]:
        return {"arm": self.arm, "control": self.control, "requests": self.requests, "errors": self.errors,
                "error_rate": _finite(self.error_rate), "mean_cost": _finite(self.mean_cost),
                "p50_latency_ms": _finite(self.p50_latency_ms), "p95_latency_ms": _finite(self.p95_latency_ms),
                "feedback": _finite(self.feedback), "feedback_count": self.feedback_count,
                "vs_control": {k: _finite(v) for k, v in self.vs_control.items()}}


@dataclass(frozen=True)
class ExperimentReport:
    experiment: str
    control: str
    arms: list[ArmReport]

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "control": self.control, "confidence": 0.95,
                "methods": {"rates": "wilson; differences: newcombe (hybrid score)",
                            "means": "student t; differences: welch t",
                            "percentiles": "percentile bootstrap, 2000 resamples, seeded"},
                "arms": [a.to_dict() for a in self.arms]}


@dataclass
class _Arm:
    errors: int = 0
    costs: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    feedback: list[float] = field(default_factory=list)


def experiment_report(query: Query, experiment: str, control: str | None = None,
                      since: float = 0.0) -> ExperimentReport:
    """The per-arm comparison; ``control`` defaults to the arm named 'control' (else the first arm)."""
    arms: dict[str, _Arm] = defaultdict(_Arm)
    arm_of: dict[str, str] = {}
    for request_id, arm, status, cost, latency in query(_REQUESTS, (experiment, since)):
        name = str(arm or "(none)")
        row = arms[name]
        arm_of[str(request_id)] = name
        row.costs.append(float(cost or 0.0))
        if status == "error":
            row.errors += 1
        elif latency is not None:
            row.latencies.append(float(latency))
    for request_id, score in query(_FEEDBACK, (experiment, since)):
        owner = arm_of.get(str(request_id))
        if owner is not None and score is not None:
            arms[owner].feedback.append(float(score))
    names = sorted(arms)
    base: str = control if control is not None and control in arms else "control" if "control" in arms else \
        (names[0] if names else "")
    reports = [_arm_report(name, arms[name], arms.get(base), name == base) for name in
               sorted(names, key=lambda n: (n != base, n))]
    return ExperimentReport(experiment, base, reports)


def _arm_report(name: str, arm: _Arm, base: _Arm | None, is_control: bool) -> ArmReport:
    n = len(arm.costs)
    diffs: dict[str, Estimate] = {}
    if base is not None and not is_control:
        diffs = {"error_rate": newcombe(arm.errors, n, base.errors, len(base.costs)),
                 "mean_cost": welch(arm.costs, base.costs),
                 "p50_latency_ms": quantile_diff(arm.latencies, base.latencies, 0.5),
                 "p95_latency_ms": quantile_diff(arm.latencies, base.latencies, 0.95),
                 "feedback": welch(arm.feedback, base.feedback)}
    return ArmReport(name, is_control, n, arm.errors, wilson(arm.errors, n), mean_t(arm.costs),
                     quantile(arm.latencies, 0.5), quantile(arm.latencies, 0.95), mean_t(arm.feedback),
                     len(arm.feedback), diffs)


# --- shadow trials ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ShadowGroup:
    task_type: str
    sampled: int
    compared: int
    failed: int
    skipped: int
    dropped: int
    cancelled: int
    agreement: Estimate
    served_cost: float
    candidate_cost: float
    judge_cost: float
    saving_per_request: Estimate  # served minus candidate, per compared request
    served_p50_ms: float | None
    candidate_p50_ms: float | None

    @property
    def saving(self) -> float:
        return self.served_cost - self.candidate_cost

    @property
    def saving_share(self) -> float | None:
        return self.saving / self.served_cost if self.served_cost > 0 else None

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if not isinstance(v, dict)}
        data.update(agreement=_finite(self.agreement), saving_per_request=_finite(self.saving_per_request),
                    saving=self.saving, saving_share=self.saving_share)
        return data


@dataclass(frozen=True)
class ShadowReport:
    trial: str
    groups: list[ShadowGroup]  # per task type, then '(all)'

    def to_dict(self) -> dict[str, Any]:
        return {"trial": self.trial, "confidence": 0.95,
                "methods": {"agreement": "wilson", "saving_per_request": "student t"},
                "groups": [g.to_dict() for g in self.groups]}


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _group(task: str, rows: list[Sequence[Any]]) -> ShadowGroup:
    statuses = [str(r[1]) for r in rows]
    ok = [r for r in rows if r[1] == "ok"]
    agreed = sum(1 for r in ok if r[2])
    served = [float(r[3] or 0.0) for r in ok]
    candidate = [float(r[4] or 0.0) for r in ok]
    return ShadowGroup(
        task, len(rows), len(ok), statuses.count("error"), statuses.count("skipped"), statuses.count("dropped"),
        statuses.count("cancelled"), wilson(agreed, len(ok)), math.fsum(served), math.fsum(candidate),
        math.fsum(float(r[7] or 0.0) for r in rows), mean_t([s - c for s, c in zip(served, candidate, strict=True)]),
        _median([float(r[5]) for r in ok if r[5] is not None]), _median([float(r[6]) for r in ok if r[6] is not None]))


def shadow_report(query: Query, trial: str, since: float = 0.0) -> ShadowReport:
    by_task: dict[str, list[Sequence[Any]]] = defaultdict(list)
    every: list[Sequence[Any]] = []
    for row in query(_SHADOW, (trial, since)):
        by_task[str(row[0])].append(row)
        every.append(row)
    groups = [_group(task, rows) for task, rows in sorted(by_task.items())]
    if every:
        groups.append(_group("(all)", every))
    return ShadowReport(trial, groups)


# --- reading either store ----------------------------------------------------------------------------------
def read_sqlite(path: Path, read: Callable[[Query], T]) -> T:
    from podium.ledger.sqlite import connect

    conn = connect(path)
    try:
        return read(lambda sql, params: conn.execute(sql, params).fetchall())
    finally:
        conn.close()


def read_postgres(dsn: str, read: Callable[[Query], T]) -> T:
    """``read`` over a PostgreSQL ledger; the tables are migrated first, as a gateway starting would."""
    import asyncio

    import psycopg

    from podium.ledger.postgres import PostgresLedger, connect_kwargs, unreachable, where
    from podium.ledger.writes import reason

    async def migrate() -> None:
        ledger = PostgresLedger(dsn, max_size=1)
        try:
            await ledger._open()
        finally:
            await ledger.aclose()

    asyncio.run(migrate())
    try:
        conn = psycopg.connect(dsn, autocommit=True, **connect_kwargs(dsn))
    except psycopg.Error as exc:
        raise unreachable(dsn, "ledger", exc) from None
    try:
        with conn:
            return read(lambda sql, params: conn.execute(sql.replace("?", "%s"), params).fetchall())
    except psycopg.OperationalError as exc:
        raise unreachable(dsn, "ledger", exc) from None
    except psycopg.Error as exc:
        raise PodiumError(f"could not read the PostgreSQL ledger at {where(dsn)}: {reason(exc)}") from None

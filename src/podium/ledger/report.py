"""Reports over the ledger: what every model and task type cost and took.

Savings are measured against a baseline model (``routing.baseline_model``, GPT-4o by default):
what the same calls' tokens would have cost there, minus what they did cost. That is the seeds'
"month 1 baseline" question answered from data instead of a spreadsheet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from podium.catalogue import ModelInfo
from podium.errors import PodiumError
from podium.ledger.sqlite import connect


@dataclass(frozen=True)
class GroupRow:
    key: str
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost: float
    avg_latency_ms: float
    max_latency_ms: float


@dataclass(frozen=True)
class Report:
    by_model: list[GroupRow]
    by_task_type: list[GroupRow]
    requests: int
    requests_failed: int
    requests_unfinished: int
    retries: int
    requests_with_fallback: int
    total_cost: float
    baseline_model: str | None
    baseline_cost: float | None

    @property
    def savings(self) -> float | None:
        return None if self.baseline_cost is None else self.baseline_cost - self.total_cost

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["savings"] = self.savings
        return data


# Portable SQL: the same statements read SQLite and PostgreSQL (which cannot SUM a boolean, hence
# the CASEs); ``?`` placeholders, which the PostgreSQL reader turns into ``%s``.
_BY_MODEL = """
    SELECT model, COUNT(*), SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), SUM(input_tokens),
           SUM(output_tokens), SUM(cost), AVG(latency_ms), MAX(latency_ms)
    FROM calls WHERE started_at >= ? GROUP BY model"""
_BY_TASK_TYPE = """
    SELECT COALESCE(task_type, '(none)'), COUNT(*), SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END),
           SUM(input_tokens), SUM(output_tokens), SUM(cost), COALESCE(AVG(latency_ms), 0),
           COALESCE(MAX(latency_ms), 0)
    FROM requests WHERE started_at >= ? GROUP BY COALESCE(task_type, '(none)')"""
_TOTALS = """
    SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0),
           COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0), COALESCE(SUM(cost), 0),
           COALESCE(SUM(retries), 0), COALESCE(SUM(CASE WHEN fallbacks > 0 THEN 1 ELSE 0 END), 0)
    FROM requests WHERE started_at >= ?"""
_OK_TOKENS = """
    SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0) FROM calls
    WHERE started_at >= ? AND status = 'ok'"""

Query = Callable[[str, tuple[Any, ...]], Sequence[Sequence[Any]]]


def _groups(rows: Iterable[Sequence[Any]]) -> list[GroupRow]:
    """Most expensive first, then most calls, then by name: sorted here, so both stores agree on ties
    (their collations differ)."""
    groups = [GroupRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), float(r[5]), float(r[6]),
                       float(r[7])) for r in rows]
    return sorted(groups, key=lambda g: (-g.cost, -g.calls, g.key))


def report_from(query: Query, baseline: ModelInfo | None = None, since: float = 0.0) -> Report:
    """The report from any store's tables: ``query(sql, params)`` runs one portable statement."""
    by_model = _groups(query(_BY_MODEL, (since,)))
    by_task = _groups(query(_BY_TASK_TYPE, (since,)))
    total, failed, unfinished, cost, retries, fell_back = query(_TOTALS, (since,))[0]
    baseline_cost = None
    if baseline is not None:
        tokens_in, tokens_out = query(_OK_TOKENS, (since,))[0]
        baseline_cost = baseline.estimated_cost(int(tokens_in), int(tokens_out))
    return Report(by_model, by_task, int(total), int(failed), int(unfinished), int(retries), int(fell_back),
                  float(cost), baseline.name if baseline else None, baseline_cost)


def build_report(path: Path, baseline: ModelInfo | None = None, since: float = 0.0) -> Report:
    """The report from a SQLite ledger file."""
    conn = connect(path)
    try:
        return report_from(lambda sql, params: conn.execute(sql, params).fetchall(), baseline, since)
    finally:
        conn.close()


def build_report_postgres(dsn: str, baseline: ModelInfo | None = None, since: float = 0.0) -> Report:
    """The report from a PostgreSQL ledger (synchronous psycopg). An unreachable server raises
    ``StoreUnavailableError`` within seconds; a database the ledger never wrote to is an empty report."""
    import psycopg

    from podium.ledger.postgres import connect_kwargs, unreachable, where
    from podium.ledger.writes import reason

    try:
        conn = psycopg.connect(dsn, autocommit=True, **connect_kwargs(dsn))
    except psycopg.Error as exc:
        raise unreachable(dsn, "ledger", exc) from None
    try:
        with conn:
            row = conn.execute("SELECT to_regclass('requests') IS NOT NULL AND to_regclass('calls') IS NOT NULL"
                               ).fetchone()
            if not (row and row[0]):  # nothing was ever recorded there
                return Report([], [], 0, 0, 0, 0, 0, 0.0, baseline.name if baseline else None,
                              0.0 if baseline else None)
            return report_from(lambda sql, params: conn.execute(sql.replace("?", "%s"), params).fetchall(),
                               baseline, since)
    except psycopg.OperationalError as exc:  # the connection lost on the way
        raise unreachable(dsn, "ledger", exc) from None
    except psycopg.Error as exc:  # e.g. tables of an older schema (the gateway migrates them when it starts)
        raise PodiumError(f"could not read the PostgreSQL ledger at {where(dsn)}: {reason(exc)}") from None

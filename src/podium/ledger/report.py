"""Reports over the ledger: what every model and task type cost and took.

Savings are measured against a baseline model (``routing.baseline_model``, GPT-4o by default):
what the same calls' tokens would have cost there, minus what they did cost. That is the seeds'
"month 1 baseline" question answered from data instead of a spreadsheet.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from podium.catalogue import ModelInfo
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


def _groups(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[GroupRow]:
    return [GroupRow(str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), float(r[5]), float(r[6]), float(r[7]))
            for r in conn.execute(sql, params)]


def build_report(path: Path, baseline: ModelInfo | None = None, since: float = 0.0) -> Report:
    conn = connect(path)
    try:
        by_model = _groups(conn, """
            SELECT model, COUNT(*), SUM(status = 'error'), SUM(input_tokens), SUM(output_tokens), SUM(cost),
                   AVG(latency_ms), MAX(latency_ms)
            FROM calls WHERE started_at >= ? GROUP BY model ORDER BY SUM(cost) DESC, COUNT(*) DESC""", (since,))
        by_task = _groups(conn, """
            SELECT COALESCE(task_type, '(none)'), COUNT(*), SUM(status = 'error'), SUM(input_tokens),
                   SUM(output_tokens), SUM(cost), COALESCE(AVG(latency_ms), 0), COALESCE(MAX(latency_ms), 0)
            FROM requests WHERE started_at >= ? GROUP BY 1 ORDER BY SUM(cost) DESC, COUNT(*) DESC""", (since,))
        total, failed, unfinished, cost, retries, fell_back = conn.execute("""
            SELECT COUNT(*), COALESCE(SUM(status = 'error'), 0), COALESCE(SUM(status = 'running'), 0),
                   COALESCE(SUM(cost), 0), COALESCE(SUM(retries), 0), COALESCE(SUM(fallbacks > 0), 0)
            FROM requests WHERE started_at >= ?""", (since,)).fetchone()
        baseline_cost = None
        if baseline is not None:
            tokens_in, tokens_out = conn.execute(
                "SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0) FROM calls"
                " WHERE started_at >= ? AND status = 'ok'", (since,)).fetchone()
            baseline_cost = baseline.estimated_cost(int(tokens_in), int(tokens_out))
    finally:
        conn.close()
    return Report(by_model, by_task, int(total), int(failed), int(unfinished), int(retries), int(fell_back),
                  float(cost), baseline.name if baseline else None, baseline_cost)

"""``podium report``: what every call cost and took, from the ledger."""

from __future__ import annotations

import json
import time

from rich.markup import escape

from podium.cli import tables
from podium.cli.render import console, money
from podium.cli.stores import check_stores, describe_ledger
from podium.cli.tables import Column
from podium.config import load_settings
from podium.errors import ConfigError
from podium.ledger.report import GroupRow, build_report, build_report_postgres


def _show(title: str, key: str, rows: list[GroupRow]) -> None:
    """One group per row: the model or task type whole; latency and token columns go first when narrow."""
    columns = (Column(key, identifier=True), Column("calls", justify="right"),
               Column("errors", drop=1, justify="right"),
               Column("tokens in", drop=3, justify="right"), Column("tokens out", drop=3, justify="right"),
               Column("cost", justify="right"), Column("avg ms", drop=2, justify="right"),
               Column("max ms", drop=4, justify="right"))
    cells = [[escape(r.key), str(r.calls), str(r.errors), f"{r.input_tokens:,}", f"{r.output_tokens:,}", money(r.cost),
              f"{r.avg_latency_ms:.0f}", f"{r.max_latency_ms:.0f}"] for r in rows]
    tables.show(console, title, columns, cells)


def run_report(*, json_output: bool, since_hours: float | None, config: str | None) -> None:
    settings = load_settings(config)
    since = time.time() - since_hours * 3600 if since_hours else 0.0
    baseline = settings.catalogue.find(settings.routing.baseline_model)
    if settings.ledger_dsn:  # the ledger the gateway and `podium ask` write to: PostgreSQL when the config says so
        report = build_report_postgres(settings.ledger_dsn, baseline, since)
    elif settings.ledger_path is not None:
        check_stores(settings)  # opening the file applies the schema: it must be writable (one line if not)
        report = build_report(settings.ledger_path, baseline, since)
    else:
        raise ConfigError("the ledger is disabled (ledger.enabled: false), so there is nothing to report")
    if json_output:
        print(json.dumps(report.to_dict(), indent=2))
        return
    _show("per model (calls)", "model", report.by_model)
    _show("per task type (requests)", "task type", report.by_task_type)
    line = (f"{report.requests} requests ({report.requests_failed} failed, {report.requests_unfinished} "
            f"unfinished, {report.requests_with_fallback} fell back, {report.retries} retries) · "
            f"total {money(report.total_cost)}")
    if report.baseline_cost is not None and report.savings is not None:
        line += f" · on {report.baseline_model} it would have cost {money(report.baseline_cost)}" \
                f" · saved {money(report.savings)}"
    console.print(line, highlight=False)
    console.print(f"[dim]ledger: {escape(describe_ledger(settings))}[/]")

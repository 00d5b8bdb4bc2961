"""``podium report``: what every call cost and took, from the ledger."""

from __future__ import annotations

import json
import time

from rich.markup import escape
from rich.table import Table

from podium.cli.render import console, money
from podium.cli.stores import check_stores, describe_ledger
from podium.config import load_settings
from podium.errors import ConfigError
from podium.ledger.report import GroupRow, build_report, build_report_postgres


def _table(title: str, key: str, rows: list[GroupRow]) -> Table:
    table = Table(title=title)
    for column in (key, "calls", "errors", "tokens in", "tokens out", "cost", "avg ms", "max ms"):
        table.add_column(column, justify="left" if column == key else "right")
    for r in rows:
        table.add_row(r.key, str(r.calls), str(r.errors), f"{r.input_tokens:,}", f"{r.output_tokens:,}",
                      money(r.cost), f"{r.avg_latency_ms:.0f}", f"{r.max_latency_ms:.0f}")
    return table


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
    console.print(_table("per model (calls)", "model", report.by_model))
    console.print(_table("per task type (requests)", "task type", report.by_task_type))
    line = (f"{report.requests} requests ({report.requests_failed} failed, {report.requests_unfinished} "
            f"unfinished, {report.requests_with_fallback} fell back, {report.retries} retries) · "
            f"total {money(report.total_cost)}")
    if report.baseline_cost is not None and report.savings is not None:
        line += f" · on {report.baseline_model} it would have cost {money(report.baseline_cost)}" \
                f" · saved {money(report.savings)}"
    console.print(line, highlight=False)
    console.print(f"[dim]ledger: {escape(describe_ledger(settings))}[/]")

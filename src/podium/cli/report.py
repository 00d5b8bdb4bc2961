"""``podium report``: what every call cost and took, from the ledger."""

from __future__ import annotations

import json
import math
import time

from rich.markup import escape

from podium.cli import tables
from podium.cli.render import console, money
from podium.cli.stores import check_stores, describe_ledger
from podium.cli.tables import Column
from podium.config import Settings, load_settings
from podium.errors import BadRequestError, ConfigError
from podium.experiments.stats import Estimate
from podium.ledger.experiment_report import (
    ExperimentReport,
    Query,
    ShadowReport,
    experiment_report,
    read_postgres,
    read_sqlite,
    shadow_report,
)
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


def run_report(*, json_output: bool, since_hours: float | None, config: str | None, experiment: str | None = None,
               shadow: str | None = None) -> None:
    if since_hours is not None and not (math.isfinite(since_hours) and since_hours > 0):
        raise BadRequestError(f"--since-hours takes a positive number of hours, not {since_hours:g}")
    settings = load_settings(config)
    since = time.time() - since_hours * 3600 if since_hours else 0.0
    if experiment is not None or shadow is not None:
        _run_trial_report(settings, since, json_output, experiment, shadow)
        return
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


# --- experiments and shadow trials --------------------------------------------------------------------
def _fmt(e: Estimate, unit: str = "", digits: int = 2) -> str:
    """``value [low, high]``; ``-`` where there is no data."""
    def one(v: float) -> str:
        if v != v:  # nan
            return "-"
        return f"{v * 100:.{digits}f}%" if unit == "%" else f"${v:.6f}" if unit == "$" else f"{v:.{digits}f}"

    if e.value != e.value:
        return "-"
    return f"{one(e.value)} [{one(e.low)}, {one(e.high)}]"


def _diff(e: Estimate | None, unit: str = "", digits: int = 2) -> str:
    if e is None:
        return "(control)"
    text = _fmt(e, unit, digits)
    return text + (" *" if e.excludes_zero and text != "-" else "")


def _show_experiment(report: ExperimentReport) -> None:
    columns = (Column("arm", identifier=True), Column("requests", justify="right"),
               Column("error rate", justify="right"), Column("mean cost", justify="right"),
               Column("p50 ms", drop=2, justify="right"), Column("p95 ms", drop=3, justify="right"),
               Column("feedback", drop=1, justify="right"))
    cells = [[escape(a.arm) + (" (control)" if a.control else ""), str(a.requests), _fmt(a.error_rate, "%"),
              _fmt(a.mean_cost, "$"), _fmt(a.p50_latency_ms, digits=0), _fmt(a.p95_latency_ms, digits=0),
              _fmt(a.feedback) + (f" (n={a.feedback_count})" if a.feedback_count else "")] for a in report.arms]
    tables.show(console, f"experiment {escape(report.experiment)}: per arm, 95 % intervals", columns, cells)
    others = [a for a in report.arms if not a.control]
    if others:
        cells = [[escape(a.arm), _diff(a.vs_control.get("error_rate"), "%"), _diff(a.vs_control.get("mean_cost"), "$"),
                  _diff(a.vs_control.get("p50_latency_ms"), digits=0),
                  _diff(a.vs_control.get("p95_latency_ms"), digits=0), _diff(a.vs_control.get("feedback"))]
                 for a in others]
        deltas = (Column("arm", identifier=True), Column("Δ error rate", justify="right"),
                   Column("Δ mean cost", justify="right"), Column("Δ p50 ms", drop=2, justify="right"),
                   Column("Δ p95 ms", drop=3, justify="right"), Column("Δ feedback", drop=1, justify="right"))
        tables.show(console, f"against the control arm '{escape(report.control)}' (* the interval excludes 0)",
                    deltas, cells)
    console.print("[dim]intervals: Wilson (rates), Newcombe (rate differences), Student t (means), Welch t "
                  "(mean differences), seeded percentile bootstrap (latency percentiles); feedback: the mean "
                  "of scores in 0..1 (scores on other scales are left out)[/]")


def _show_shadow(report: ShadowReport) -> None:
    columns = (Column("task type", identifier=True), Column("compared", justify="right"),
               Column("agreement", justify="right"), Column("served cost", justify="right"),
               Column("candidate cost", justify="right"), Column("saving", justify="right"),
               Column("p50 ms served/cand.", drop=2, justify="right"),
               Column("failed/skipped/dropped", drop=1, justify="right"))
    cells = []
    for g in report.groups:
        share = f" ({g.saving_share * 100:.0f}%)" if g.saving_share is not None else ""
        latency = "/".join("-" if v is None else f"{v:.0f}" for v in (g.served_p50_ms, g.candidate_p50_ms))
        cells.append([escape(g.task_type), f"{g.compared} of {g.sampled}", _fmt(g.agreement, "%", 1),
                      money(g.served_cost), money(g.candidate_cost), money(g.saving) + share, latency,
                      f"{g.failed}/{g.skipped}/{g.dropped}" + (f" (+{g.cancelled} cancelled)" if g.cancelled else "")])
    tables.show(console, f"shadow trial {escape(report.trial)}: the candidate against what was served", columns,
                cells)
    console.print("[dim]agreement: Wilson 95 % interval; saving: what the compared requests cost minus what the "
                  "candidate cost for them (a judge's calls are not in it)[/]")


def _run_trial_report(settings: Settings, since: float, json_output: bool, experiment: str | None,
                      shadow: str | None) -> None:
    if experiment is not None and shadow is not None:
        raise BadRequestError("give --experiment or --shadow, not both")
    control = None
    if experiment is not None and experiment in settings.experiments:
        control = settings.experiments[experiment].control

    def read(query: Query) -> ExperimentReport | ShadowReport:
        if experiment is not None:
            return experiment_report(query, experiment, control, since)
        assert shadow is not None
        return shadow_report(query, shadow, since)

    if settings.ledger_dsn:
        report = read_postgres(settings.ledger_dsn, read)
    elif settings.ledger_path is not None:
        check_stores(settings)
        report = read_sqlite(settings.ledger_path, read)
    else:
        raise ConfigError("the ledger is disabled (ledger.enabled: false), so there is nothing to report")
    # a name neither configured nor in the ledger is a typo, not an experiment with no requests yet
    if isinstance(report, ExperimentReport) and not report.arms and report.experiment not in settings.experiments:
        raise ConfigError(f"no experiment named {report.experiment!r} in the config or the ledger")
    if isinstance(report, ShadowReport) and not report.groups and report.trial not in settings.shadow:
        raise ConfigError(f"no shadow trial named {report.trial!r} in the config or the ledger")
    if json_output:
        print(json.dumps(report.to_dict(), indent=2))
        return
    if isinstance(report, ExperimentReport):
        if not report.arms:
            console.print(f"no finished requests of experiment '{escape(report.experiment)}' in the ledger yet")
            return
        _show_experiment(report)
    else:
        if not report.groups:
            console.print(f"no trials of shadow '{escape(report.trial)}' in the ledger yet")
            return
        _show_shadow(report)
    console.print(f"[dim]ledger: {escape(describe_ledger(settings))}[/]")

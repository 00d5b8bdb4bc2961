"""Which charts each page shows, drawn from the page's own numbers (``views``) by ``svg``."""

from __future__ import annotations

import math
from typing import Any

from podium.dashboard.svg import Series, bar_chart, line_chart

MAX_LINES = 6  # models drawn on the models page's chart (the busiest); the table has them all
MAX_BARS = 12


def money(value: float) -> str:
    """Dollars with three significant digits below a dollar ($0.0000896), cents above; never exponents."""
    if value == 0 or not math.isfinite(value):
        return "$0"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1:
        return f"{sign}${value:,.2f}"
    digits = min(max(2, 2 - math.floor(math.log10(value))), 10)
    return f"{sign}${value:.{digits}f}"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _ms(value: float) -> str:
    return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:.0f} ms"


def overview(data: dict[str, Any]) -> dict[str, str]:
    series, span, totals = data["series"], data["range"], data["totals"]
    times = [row["t"] for row in series]
    step = span["step"] or 3600
    charts = {
        "requests": line_chart("chart-requests", "Requests over time", times, [
            Series("requests", [row["requests"] for row in series]),
            Series("failed", [row["errors"] for row in series]),
            Series("cache hits", [row["cache_hits"] for row in series])], step=step,
            summary=f"{totals['requests']:,} requests, {totals['requests_failed']:,} failed, "
                    f"{totals['cache_hits']:,} answered from the cache"),
    }
    spend = [Series("spent", [row["cost"] for row in series])]
    summary = f"spent {money(totals['total_cost'])}"
    if totals["baseline_model"] is not None:
        spend.append(Series(f"on {totals['baseline_model']}", [row["baseline_cost"] for row in series]))
        summary += f"; on {totals['baseline_model']} it would have cost {money(totals['baseline_cost'] or 0.0)}" \
                   f", saved {money(totals['savings'] or 0.0)}"
    charts["spend"] = line_chart("chart-spend", "Spend against the baseline model", times, spend, step=step,
                                 unit=money, summary=summary)

    def rate(part: str) -> list[float | None]:
        return [row[part] / row["requests"] if row["requests"] else None for row in series]

    charts["rates"] = line_chart("chart-rates", "Error, fallback, retry and cache-hit rates", times, [
        Series("errors", rate("errors")), Series("fallbacks", rate("fell_back")), Series("retried", rate("retried")),
        Series("cache hits", rate("cache_hits"))], step=step, unit=percent,
        summary="share of requests per bucket that failed, fell back, were retried or came from the cache")
    return charts


def models(data: dict[str, Any]) -> dict[str, str]:
    deployments = data["deployments"][:MAX_BARS]
    rows = [(f"{d['model']} @ {d['provider']}", [d["p50_latency_ms"], d["p95_latency_ms"]]) for d in deployments]
    charts = {"latency": bar_chart("chart-latency", "Latency per deployment (p50, p95)", rows, ["p50", "p95"],
                                   unit=_ms, summary="; ".join(
                                       f"{label}: p50 {_ms(v[0]) if v[0] is not None else 'n/a'}, "
                                       f"p95 {_ms(v[1]) if v[1] is not None else 'n/a'}" for label, v in rows))}
    busiest = sorted(data["models"], key=lambda m: -sum(row.get(f"calls:{m}", 0) for row in data["series"]))
    shown = busiest[:MAX_LINES]
    times = [row["t"] for row in data["series"]]
    charts["calls"] = line_chart("chart-calls", "Calls per model over time", times,
                                 [Series(m, [row.get(f"calls:{m}", 0.0) for row in data["series"]]) for m in shown],
                                 step=data["range"]["step"] or 3600,
                                 summary=f"calls of the {len(shown)} busiest models in each time bucket")
    return charts


def task_types(data: dict[str, Any]) -> dict[str, str]:
    rows = [(g["key"], [g["cost"]]) for g in data["by_task_type"][:MAX_BARS]]
    return {"cost": bar_chart("chart-task-cost", "Cost per task type", rows, ["cost"], unit=money,
                              summary="; ".join(f"{label}: {money(v[0] or 0.0)}" for label, v in rows))}


def keys(data: dict[str, Any]) -> dict[str, str]:
    rows = [(k["name"] or k["key_id"] or "(no key)", [k["cost"]]) for k in data["keys"][:MAX_BARS]]
    return {"spend": bar_chart("chart-key-spend", "Spend per key in the range", rows, ["spend"], unit=money,
                               summary="; ".join(f"{label}: {money(v[0] or 0.0)}" for label, v in rows))}

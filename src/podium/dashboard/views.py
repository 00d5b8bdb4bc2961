"""Each page's numbers, from the rows of ``queries``: run on the reader's thread, plain data out.

One function per page, each ``(run, schema, ask) -> dict``. What SQL cannot say portably is done
here on small results: percentiles from latency histograms, error classes from error messages,
which cheaper model would do for a task type, a request's trace tree from its call rows.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from podium.catalogue import ModelInfo
from podium.dashboard import queries as q
from podium.dashboard.ranges import Span
from podium.dashboard.reader import Run

MIN_SAMPLE = 5  # requests a model needs on a task type before it is suggested in place of another
SCORE_SLACK = 0.05  # how much lower a cheaper model's mean feedback may be and still "do"
ERROR_SLACK = 0.02  # how much higher its error rate may be


@dataclass(frozen=True)
class Ask:
    """What a page is asked for: the range, the clock, the store's dialect and the savings baseline."""

    span: Span
    now: float
    dialect: q.Dialect
    baseline: ModelInfo | None = None


def _f(value: Any) -> float:
    """A number from either store (PostgreSQL's SUM and AVG give Decimals, an empty SUM gives NULL)."""
    return 0.0 if value is None else float(value)


def _i(value: Any) -> int:
    return 0 if value is None else int(value)


def _rate(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _range(ask: Ask, start: float, step: float) -> dict[str, Any]:
    span = ask.span
    return {"label": span.label, "since": span.since, "until": span.until, "end": span.end(ask.now),
            "start": start, "step": step}


def _chart_start(run: Run, ask: Ask) -> tuple[float, float]:
    """Where a chart starts (the range's start; for ``all``, the first request) and its bucket step."""
    start = ask.span.since
    if start <= 0:
        first = run(*q.first_request())[0][0]
        start = _f(first) if first is not None else ask.now - 3600
    step = ask.span.step(start, ask.now)
    return math.floor(start / step) * step, step  # buckets on round times; the first one starts at the range's


def group_rows(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows of ``key, calls, errors, in, out, cost, avg ms, max ms`` as ``ledger.report.GroupRow``
    dicts, ordered as the report orders them (most expensive, most calls, name)."""
    groups = [{"key": str(r[0]), "calls": _i(r[1]), "errors": _i(r[2]), "input_tokens": _i(r[3]),
               "output_tokens": _i(r[4]), "cost": _f(r[5]), "avg_latency_ms": _f(r[6]),
               "max_latency_ms": _f(r[7])} for r in rows]
    return sorted(groups, key=lambda g: (-g["cost"], -g["calls"], g["key"]))


# --- overview -------------------------------------------------------------------------------------------
_SERIES = ("requests", "errors", "unfinished", "cost", "retries", "retried", "fell_back", "cache_hits", "cancelled",
           "input_tokens", "output_tokens")


@dataclass(frozen=True)
class Buckets:
    """A chart's buckets: ``edges[i]`` to ``edges[i + 1]``; the last one open-ended when the range is (so the
    totals hold everything ``podium report`` counts, even a request stamped after now)."""

    start: float
    step: float
    edges: tuple[float | None, ...]


def overview_buckets(run: Run, schema: q.Schema, ask: Ask) -> Buckets:
    start, step = _chart_start(run, ask) if schema.has("requests") else (ask.span.since, ask.span.step(
        ask.span.since or ask.now - 3600, ask.now))
    count = max(math.ceil((ask.span.end(ask.now) - start) / step), 1)
    edges: list[float | None] = [ask.span.since, *(start + i * step for i in range(1, count)), ask.span.until]
    return Buckets(start, step, tuple(edges))


def overview_requests(run: Run, schema: q.Schema, ask: Ask, buckets: Buckets) -> list[dict[str, float]]:
    """Each bucket's request figures (``_SERIES``)."""
    if not schema.has("requests"):
        return []
    found = []
    for lo, hi in zip(buckets.edges, buckets.edges[1:], strict=False):
        row = run(*q.overview_bucket(lo or 0.0, hi, ask.dialect))[0]
        found.append({name: _f(value) for name, value in zip(_SERIES, row, strict=True)})
    return found


def overview_tokens(run: Run, schema: q.Schema, ask: Ask, buckets: Buckets) -> list[tuple[int, int]]:
    """Each bucket's input and output tokens of successful calls."""
    if not schema.has("calls"):
        return []
    return [(_i(a), _i(b)) for lo, hi in zip(buckets.edges, buckets.edges[1:], strict=False)
            for a, b in run(*q.ok_tokens_bucket(lo or 0.0, hi))]


def overview_feedback(run: Run, schema: q.Schema, ask: Ask) -> tuple[int, float | None]:
    """How many requests in the range were scored, and their mean score (the seeds' satisfaction KPI)."""
    if not schema.has("feedback") or not schema.has("requests"):
        return 0, None
    count, mean = run(*q.feedback_summary(ask.span.since, ask.span.until))[0]
    return _i(count), None if mean is None else _f(mean)


def overview_combine(ask: Ask, buckets: Buckets, requests: list[dict[str, float]],
                     tokens: list[tuple[int, int]], feedback: tuple[int, float | None] = (0, None)) -> dict[str, Any]:
    """The overview: totals (as ``podium report`` counts them) and one row per bucket for the charts."""
    if not requests:
        return _empty_overview(ask)
    totals = {name: sum(row[name] for row in requests) for name in _SERIES}
    tokens = tokens or [(0, 0)] * len(requests)
    baseline = ask.baseline
    baseline_cost = baseline.estimated_cost(sum(t[0] for t in tokens), sum(t[1] for t in tokens)) \
        if baseline else None
    count = totals["requests"]
    summary = {
        "requests": int(count), "requests_failed": int(totals["errors"]),
        "requests_unfinished": int(totals["unfinished"]), "requests_cancelled": int(totals["cancelled"]),
        "retries": int(totals["retries"]), "requests_retried": int(totals["retried"]),
        "requests_with_fallback": int(totals["fell_back"]), "cache_hits": int(totals["cache_hits"]),
        "input_tokens": int(totals["input_tokens"]), "output_tokens": int(totals["output_tokens"]),
        "total_cost": totals["cost"], "baseline_model": baseline.name if baseline else None,
        "baseline_cost": baseline_cost, "savings": None if baseline_cost is None else baseline_cost - totals["cost"],
        "error_rate": _rate(totals["errors"], count), "fallback_rate": _rate(totals["fell_back"], count),
        "retry_rate": _rate(totals["retried"], count), "cache_hit_rate": _rate(totals["cache_hits"], count),
        "scored_requests": feedback[0], "mean_score": feedback[1],
    }
    series = [{"t": buckets.start + i * buckets.step, **row,
               "baseline_cost": baseline.estimated_cost(*tokens[i]) if baseline else None}
              for i, row in enumerate(requests)]
    return {"range": _range(ask, buckets.start, buckets.step), "totals": summary, "series": series}


def overview(run: Run, schema: q.Schema, ask: Ask) -> dict[str, Any]:
    """Requests, spend, savings against the baseline, error / fallback / retry / cache-hit rates, over time
    (in one job; the API runs the requests' and the calls' halves on two threads at once)."""
    buckets = overview_buckets(run, schema, ask)
    return overview_combine(ask, buckets, overview_requests(run, schema, ask, buckets),
                            overview_tokens(run, schema, ask, buckets), overview_feedback(run, schema, ask))


def _empty_overview(ask: Ask) -> dict[str, Any]:
    start = ask.span.since if ask.span.since > 0 else ask.now - 3600
    step = ask.span.step(start, ask.now)
    baseline = ask.baseline
    zero = {"requests": 0, "requests_failed": 0, "requests_unfinished": 0, "requests_cancelled": 0, "retries": 0,
            "requests_retried": 0, "requests_with_fallback": 0, "cache_hits": 0, "input_tokens": 0,
            "output_tokens": 0, "total_cost": 0.0, "baseline_model": baseline.name if baseline else None,
            "baseline_cost": 0.0 if baseline else None, "savings": 0.0 if baseline else None, "error_rate": None,
            "fallback_rate": None, "retry_rate": None, "cache_hit_rate": None, "scored_requests": 0,
            "mean_score": None}
    return {"range": _range(ask, start, step), "totals": zero, "series": []}


# --- models and deployments -------------------------------------------------------------------------------
def percentile(histogram: dict[int, int], share: float) -> float | None:
    """The ``share`` percentile of a latency histogram (bucket b: ``[R^b, R^(b+1))`` ms), read at the
    bucket's geometric middle: within ``LATENCY_RATIO`` of the exact value."""
    total = sum(histogram.values())
    if total == 0:
        return None
    wanted = share * total
    seen = 0
    for b in sorted(histogram):
        seen += histogram[b]
        if seen >= wanted:
            return float(q.LATENCY_RATIO ** (b + 0.5)) if b > 0 else 1.0
    return float(q.LATENCY_RATIO ** (max(histogram) + 0.5))


_ERROR_CLASSES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("timeout", ("timed out", "timeout", "deadline")),
    ("rate_limit", ("rate limit", "rate-limit", "429", "too many requests", "quota")),
    ("budget", ("budget",)),
    ("context_length", ("context", "too long", "too many tokens")),
    ("auth", ("401", "403", "unauthori", "authentication", "api key", "permission")),
    ("circuit_open", ("circuit",)),
    ("content_filter", ("content filter", "content_filter", "safety", "blocked")),
    ("unavailable", ("unavailable", "overloaded", "502", "503", "504", "500", "connect", "refused", "reset")),
    ("bad_request", ("400", "invalid", "bad request", "not supported", "unsupported")),
)


def error_class(message: str | None) -> str:
    """A bounded class for an error message (the ledger keeps messages, not classes)."""
    text = (message or "").lower()
    for name, words in _ERROR_CLASSES:
        if any(word in text for word in words):
            return name
    return "other"


def models_totals(run: Run, schema: q.Schema, ask: Ask) -> dict[str, Any]:
    """The models page's first half (its own thread): per model, per deployment, and the errors."""
    span = ask.span
    if not schema.has("calls"):
        return {"by_model": [], "deployments": [], "errors": []}
    return {"by_model": group_rows(run(*q.calls_by_model(span.since, span.until, ask.dialect))),
            "deployments": list(run(*q.calls_by_deployment(span.since, span.until, ask.dialect))),
            "errors": list(run(*q.call_errors(span.since, span.until, ask.dialect)))}


def models_latency(run: Run, schema: q.Schema, ask: Ask) -> dict[str, Any]:
    """The models page's second half (its own thread): latency histograms and calls over time."""
    span = ask.span
    start, step = _chart_start(run, ask) if schema.has("requests") else (span.since, 3600.0)
    if not schema.has("calls"):
        return {"start": start, "step": step, "histogram": [], "ttft": [], "series": []}
    return {"start": start, "step": step,
            "histogram": list(run(*q.latency_histogram(span.since, span.until, ask.dialect))),
            # a ledger from before migration 9 kept no time to first token: none, not an error
            "ttft": list(run(*q.ttft_histogram(span.since, span.until, ask.dialect)))
            if schema.has("calls", "ttft_ms") else [],
            "series": list(run(*q.deployment_series(span.since, span.until, start, step, ask.dialect)))}


def models(run: Run, schema: q.Schema, ask: Ask, circuits: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Per deployment: p50/p95 latency and (of streamed calls) time to first token, tokens per second, cost,
    errors by class, and the circuit's state where a gateway is there to say it (in one job; the API runs its
    two halves on two threads at once)."""
    return models_combine(ask, models_totals(run, schema, ask), models_latency(run, schema, ask), circuits)


def models_combine(ask: Ask, totals: dict[str, Any], timing: dict[str, Any],
                   circuits: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    span = ask.span
    start, step = timing["start"], timing["step"]
    histograms: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for model, provider, b, count in timing["histogram"]:
        histograms[(str(model), str(provider))][_i(b)] = _i(count)
    ttfts: dict[tuple[str, str], dict[int, int]] = defaultdict(dict)
    for model, provider, b, count in timing.get("ttft", ()):
        ttfts[(str(model), str(provider))][_i(b)] = _i(count)
    errors: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for model, provider, message, count in totals["errors"]:
        errors[(str(model), str(provider))][error_class(message)] += _i(count)
    states: dict[tuple[str, str], str] = {}
    for c in circuits:  # several deployments of a model on one provider: the least healthy one speaks
        where = (str(c.get("model")), str(c.get("provider")))
        if states.get(where) in (None, "closed") or c.get("state") == "open":
            states[where] = str(c.get("state"))
    deployments: list[dict[str, Any]] = []
    for row in totals["deployments"]:
        model, provider = str(row[0]), str(row[1])
        ok_out, ok_ms = _f(row[9]), _f(row[10])
        hist = histograms.get((model, provider), {})
        ttft = ttfts.get((model, provider), {})
        deployments.append({
            "model": model, "provider": provider, "calls": _i(row[2]), "errors": _i(row[3]),
            "cancelled": _i(row[4]), "input_tokens": _i(row[5]), "output_tokens": _i(row[6]), "cost": _f(row[7]),
            "avg_latency_ms": _f(row[8]), "p50_latency_ms": percentile(hist, 0.50),
            "p95_latency_ms": percentile(hist, 0.95), "tokens_per_second": ok_out / (ok_ms / 1000) if ok_ms else None,
            # streamed calls only (a call not streamed has no first token apart from its whole answer)
            "streamed_calls": sum(ttft.values()), "p50_ttft_ms": percentile(ttft, 0.50),
            "p95_ttft_ms": percentile(ttft, 0.95),
            "error_rate": _rate(_i(row[3]), _i(row[2])), "errors_by_class": dict(errors.get((model, provider), {})),
            "circuit": states.get((model, provider)),
        })
    deployments.sort(key=lambda d: (-d["cost"], -d["calls"], d["model"], d["provider"]))
    series_rows = timing["series"]
    names = sorted({str(r[1]) for r in series_rows})
    count = max(math.ceil((span.end(ask.now) - start) / step), 1)
    calls: dict[str, list[float]] = {name: [0.0] * count for name in names}
    latency: dict[str, list[float | None]] = {name: [None] * count for name in names}
    for b, model, n, avg in series_rows:
        index = _i(b)
        if 0 <= index < count:
            calls[str(model)][index] = _f(n)
            latency[str(model)][index] = _f(avg)
    series = [{"t": start + i * step, **{f"calls:{m}": calls[m][i] for m in names},
               **{f"latency:{m}": latency[m][i] for m in names}} for i in range(count)]
    return {"range": _range(ask, start, step), "by_model": totals["by_model"], "deployments": deployments,
            "models": names, "series": series, "circuits": list(circuits)}


# --- task types -------------------------------------------------------------------------------------------
def task_types(run: Run, schema: q.Schema, ask: Ask) -> dict[str, Any]:
    """Cost, latency and feedback per task type and per model, and where a cheaper model would do."""
    span = ask.span
    if not schema.has("requests"):
        return {"range": _range(ask, span.since, 0), "by_task_type": [], "by_model": [], "suggestions": []}
    by_task_type = group_rows(run(*q.requests_by_task_type(span.since, span.until)))
    cells: list[dict[str, Any]] = []
    for row in (run(*q.task_type_by_model(span.since, span.until)) if schema.has("feedback") else []):
        requests = _i(row[2])
        cells.append({"task_type": str(row[0]), "model": str(row[1]), "requests": requests, "errors": _i(row[3]),
                      "cost": _f(row[4]), "cost_per_request": _f(row[4]) / requests if requests else 0.0,
                      "avg_latency_ms": _f(row[5]), "scored": _i(row[6]),
                      "mean_score": None if row[7] is None else _f(row[7]), "feedback": _i(row[8]),
                      "error_rate": _rate(_i(row[3]), requests)})
    cells.sort(key=lambda c: (c["task_type"], -c["cost"], -c["requests"], c["model"]))
    return {"range": _range(ask, span.since, 0), "by_task_type": by_task_type, "by_model": cells,
            "suggestions": suggestions(cells)}


def suggestions(cells: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per task type, a cheaper model that did as well as the one serving most of it: no worse feedback
    (within ``SCORE_SLACK``; when both were scored) and error rate (within ``ERROR_SLACK``), on at least
    ``MIN_SAMPLE`` requests. The saving is what the incumbent's requests would have cost at its price."""
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for cell in cells:
        if cell["model"] != "(none)":
            by_task[cell["task_type"]].append(cell)
    found: list[dict[str, Any]] = []
    for task, rows in sorted(by_task.items()):
        incumbent = max(rows, key=lambda c: (c["requests"], c["cost"]))
        best = None
        for other in rows:
            if other is incumbent or other["requests"] < MIN_SAMPLE:
                continue
            if other["cost_per_request"] >= incumbent["cost_per_request"]:
                continue
            if (other["error_rate"] or 0) > (incumbent["error_rate"] or 0) + ERROR_SLACK:
                continue
            scored = other["mean_score"] is not None and incumbent["mean_score"] is not None
            if scored and other["mean_score"] < incumbent["mean_score"] - SCORE_SLACK:
                continue
            if best is None or other["cost_per_request"] < best["cost_per_request"]:
                best = other
        if best is None:
            continue
        scored = best["mean_score"] is not None and incumbent["mean_score"] is not None
        found.append({
            "task_type": task, "from_model": incumbent["model"], "to_model": best["model"],
            "saving": incumbent["requests"] * (incumbent["cost_per_request"] - best["cost_per_request"]),
            "evidence": (f"{best['requests']} requests, mean score {best['mean_score']:.2f} vs "
                         f"{incumbent['mean_score']:.2f}" if scored else
                         f"{best['requests']} requests, no worse error rate; no feedback to compare yet"),
            "scored": scored})
    return sorted(found, key=lambda s: -s["saving"])


# --- routing -----------------------------------------------------------------------------------------------
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def reason_of(rationale: str | None) -> str:
    """A rationale's kind: its first clause with the numbers taken out, so 'complexity 0.31' and
    'complexity 0.42' count together."""
    if not rationale:
        return "(no rationale recorded)"
    first = rationale.split(";", 1)[0].strip()
    return _NUMBER.sub("#", first)[:120]


def routing(run: Run, schema: q.Schema, ask: Ask) -> dict[str, Any]:
    """Which strategy, rule or router chose what, and why; A/B experiments, shadow trials and the learned
    router's data where the ledger has them (migrations 5 and 6)."""
    span = ask.span
    result: dict[str, Any] = {"range": _range(ask, span.since, 0), "strategies": [], "reasons": [],
                              "experiments": None, "shadow": None, "embeddings": None}
    if not schema.has("requests"):
        return result
    result["strategies"] = sorted(
        ({"strategy": str(r[0]), "routed": bool(_i(r[1])), "requests": _i(r[2]), "errors": _i(r[3]),
          "cost": _f(r[4]), "avg_latency_ms": _f(r[5]), "fell_back": _i(r[6])}
         for r in run(*q.by_strategy(span.since, span.until))), key=lambda s: (-s["requests"], s["strategy"]))
    reasons: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for rationale, model, count, cost in run(*q.rationales(span.since, span.until)):
        slot = reasons[(reason_of(rationale), str(model))]
        slot[0] += _i(count)
        slot[1] += _f(cost)
    result["reasons"] = sorted(({"reason": k[0], "model": k[1], "requests": int(v[0]), "cost": v[1]}
                                for k, v in reasons.items()), key=lambda r: (-r["requests"], r["reason"], r["model"]))
    if schema.has("requests", "experiment", "arm"):
        result["experiments"] = [
            {"experiment": str(r[0]), "arm": str(r[1]), "requests": _i(r[2]), "errors": _i(r[3]), "cost": _f(r[4]),
             "avg_latency_ms": _f(r[5]), "scored": _i(r[6]), "mean_score": None if r[7] is None else _f(r[7])}
            for r in run(*q.experiments(span.since, span.until))]
        result["experiments"].sort(key=lambda e: (e["experiment"], e["arm"]))
    if schema.has("shadow_trials"):
        result["shadow"] = sorted(
            ({"trial": str(r[0]), "candidate": str(r[1]), "trials": _i(r[2]), "answered": _i(r[3]),
              "agreement": _rate(_i(r[4]), _i(r[5])), "mean_score": None if r[6] is None else _f(r[6]),
              "served_cost": _f(r[7]), "candidate_cost": _f(r[8]), "judge_cost": _f(r[9]),
              "served_latency_ms": None if r[10] is None else _f(r[10]),
              "candidate_latency_ms": None if r[11] is None else _f(r[11])}
             for r in run(*q.shadow_trials(span.since, span.until))), key=lambda s: (s["trial"], s["candidate"]))
    if schema.has("request_embeddings"):
        result["embeddings"] = _i(run(*q.embeddings_count(span.since, span.until))[0][0])
    return result


# --- keys and teams -------------------------------------------------------------------------------------------
LIMIT_PATTERNS = ("%budget%", "%rate limit%", "%token limit%", "%quota%")


def keys(run: Run, schema: q.Schema, ask: Ask, known: Sequence[dict[str, Any]] = (),
         teams: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Per key and team: requests, spend in the range, spend in the budget's current period against the
    budget, and requests stopped by a budget or limit. ``known``: the keys' public fields (id, name,
    budget, budget_period, rpm, tpm, team, revoked)."""
    from podium.server.middleware.quota import period_start

    span = ask.span
    result: dict[str, Any] = {"range": _range(ask, span.since, 0), "keys": [], "teams": []}
    if not schema.has("requests", "key_id", "team"):
        return result
    if not known and schema.has("virtual_keys"):  # keys in the ledger's database (PostgreSQL)
        known = [{"id": r[0], "name": r[1], "budget": r[2], "budget_period": r[3], "rpm": r[4], "tpm": r[5],
                  "team": r[6], "revoked": r[7] is not None} for r in run(*q.virtual_keys())]
    rows: dict[str, dict[str, Any]] = {}
    for key_id, team, count, failed, cost, last in run(*q.by_key(span.since, span.until)):
        row = rows.setdefault(str(key_id), {"key_id": str(key_id), "requests": 0, "errors": 0, "cost": 0.0,
                                            "last_request": None, "teams": set()})
        row["requests"] += _i(count)
        row["errors"] += _i(failed)
        row["cost"] += _f(cost)
        row["last_request"] = max(_f(last), row["last_request"] or 0.0)
        if team:
            row["teams"].add(str(team))
    limited = {str(k): _i(n) for k, n in run(*q.limit_errors(span.since, span.until, LIMIT_PATTERNS))}
    periods = {str(k.get("budget_period") or "total") for k in known if k.get("budget") is not None}
    periods |= {str(t.get("budget_period") or "month") for t in (teams or {}).values() if t.get("budget") is not None}
    spent_key: dict[tuple[str, str], float] = {}
    spent_team: dict[tuple[str, str], float] = defaultdict(float)
    for period in sorted(periods):
        for key_id, team, cost in run(*q.spent_since_by_key(period_start(period, ask.now))):
            spent_key[(period, str(key_id))] = spent_key.get((period, str(key_id)), 0.0) + _f(cost)
            if team:
                spent_team[(period, str(team))] += _f(cost)
    by_id = {str(k["id"]): k for k in known}
    for key_id in sorted(set(rows) | set(by_id)):
        row = rows.get(key_id) or {"key_id": key_id, "requests": 0, "errors": 0, "cost": 0.0, "last_request": None,
                                   "teams": set()}
        info = by_id.get(key_id, {})
        period = str(info.get("budget_period") or "total")
        budget = info.get("budget")
        spent = spent_key.get((period, key_id), 0.0) if budget is not None else None
        teams_seen = sorted(row.pop("teams"))
        result["keys"].append({
            **row, "name": info.get("name") if key_id else "(no key)", "team": info.get("team") or
            (teams_seen[0] if teams_seen else None), "budget": budget, "budget_period": period if budget is not None
            else None, "period_spent": spent, "budget_used": _rate(spent or 0.0, budget) if budget else None,
            "rpm": info.get("rpm"), "tpm": info.get("tpm"), "revoked": bool(info.get("revoked")),
            "limited": limited.get(key_id, 0)})
    result["keys"].sort(key=lambda k: (-k["cost"], -k["requests"], k["key_id"]))
    team_rows: dict[str, dict[str, Any]] = {}
    for key in result["keys"]:
        if key["team"]:
            slot = team_rows.setdefault(key["team"], {"team": key["team"], "keys": 0, "requests": 0, "cost": 0.0,
                                                      "limited": 0})
            slot["keys"] += 1
            slot["requests"] += key["requests"]
            slot["cost"] += key["cost"]
            slot["limited"] += key["limited"]
    for name, config in (teams or {}).items():
        slot = team_rows.setdefault(name, {"team": name, "keys": 0, "requests": 0, "cost": 0.0, "limited": 0})
        budget = config.get("budget")
        period = str(config.get("budget_period") or "month")
        slot.update({"budget": budget, "budget_period": period if budget is not None else None,
                     "period_spent": spent_team.get((period, name), 0.0) if budget is not None else None,
                     "budget_used": _rate(spent_team.get((period, name), 0.0), budget) if budget else None,
                     "rpm": config.get("rpm"), "tpm": config.get("tpm")})
    result["teams"] = sorted(team_rows.values(), key=lambda t: (-t["cost"], t["team"]))
    return result


# --- the request explorer --------------------------------------------------------------------------------------
def search(run: Run, schema: q.Schema, ask: Ask, wanted: q.Search) -> dict[str, Any]:
    if not schema.has("requests"):
        return {"requests": [], "next_before": None, "next_before_id": None}
    rows = [dict(zip(q.SEARCH_COLUMNS, r, strict=True)) for r in run(*q.search_requests(wanted, ask.span.since,
                                                                                          ask.span.until))]
    for row in rows:
        row["tags"] = [t for t in str(row["tags"] or "").split(",") if t]
        row["cost"], row["latency_ms"] = _f(row["cost"]), None if row["latency_ms"] is None else _f(row["latency_ms"])
        row["started_at"] = _f(row["started_at"])
    last = rows[-1] if len(rows) == wanted.limit and rows else None  # a full page: there may be more
    return {"requests": rows, "next_before": None if last is None else last["started_at"],
            "next_before_id": None if last is None else last["request_id"]}


def trace_tree(request: dict[str, Any], calls: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The request as a tree: the route decision at the root, strategy steps (``a/b`` nests ``b`` in
    ``a``) as branches in the order they first ran, each call a leaf with its tokens, cost and latency."""
    root: dict[str, Any] = {"kind": "request", "label": request.get("strategy") or "single",
                            "model": request.get("model"), "rationale": request.get("rationale"),
                            "cost": request.get("cost"), "latency_ms": request.get("latency_ms"), "children": []}
    branches: dict[str, dict[str, Any]] = {}
    for call in calls:
        parent = root
        path = ""
        for part in [p for p in str(call.get("step") or "").split("/") if p]:
            path = f"{path}/{part}"
            node = branches.get(path)
            if node is None:
                node = branches[path] = {"kind": "step", "label": part, "children": []}
                parent["children"].append(node)
            parent = node
        parent["children"].append({"kind": "call", "label": f"{call['model']} @ {call['provider']}", **call})
    for node in branches.values():
        leaves = [c for c in _walk(node) if c["kind"] == "call"]
        node["cost"] = sum(_f(c.get("cost")) for c in leaves)
        node["calls"] = len(leaves)
    return root


def _walk(node: dict[str, Any]) -> Iterable[dict[str, Any]]:
    for child in node.get("children", []):
        yield child
        yield from _walk(child)


def request_detail(run: Run, schema: q.Schema, ask: Ask, request_id: str) -> dict[str, Any] | None:
    """One request: its ledger row, its call rows, the trace tree they make, its feedback, its shadow
    trials and whether its embedding was kept (never the vector)."""
    if not schema.has("requests"):
        return None
    found = run(*q.one_request(request_id, schema))
    if not found:
        return None
    request = dict(zip(q.request_columns(schema), found[0], strict=True))
    request["tags"] = [t for t in str(request.get("tags") or "").split(",") if t]
    notes = [n for n in str(request.pop("notes", None) or "").split("\n") if n]
    calls = [dict(zip(q.call_columns(schema), r, strict=True)) for r in run(*q.request_calls(request_id, schema))] \
        if schema.has("calls") else []
    feedback = [{"created_at": _f(r[0]), "score": None if r[1] is None else _f(r[1]), "label": r[2],
                 "comment": r[3], "key_id": r[4]} for r in run(*q.request_feedback(request_id, schema))] \
        if schema.has("feedback") else []
    shadows = [{"trial": r[0], "candidate": r[1], "status": r[2], "agreed": None if r[3] is None else bool(r[3]),
                "score": r[4], "candidate_cost": _f(r[5]), "judge_cost": _f(r[6]), "latency_ms": r[7],
                "created_at": _f(r[8])} for r in run(*q.request_shadows(request_id))] \
        if schema.has("shadow_trials") else []
    embedding = None
    if schema.has("request_embeddings"):
        kept = run(*q.request_has_embedding(request_id))
        embedding = {"model": kept[0][0], "dims": _i(kept[0][1])} if kept else None
    return {"request": request, "notes": notes, "calls": calls, "tree": trace_tree(request, calls),
            "feedback": feedback, "shadow": shadows, "embedding": embedding}

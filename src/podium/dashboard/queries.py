"""The dashboard's SQL: pure builders, one statement per question, for SQLite and PostgreSQL alike.

Each builder returns ``(sql, params)`` with ``?`` placeholders (the PostgreSQL reader turns them into
``%s``; no statement holds a literal ``%``). Only two things differ between the stores, and the
``Dialect`` says how: turning a non-negative number into its whole part (SQLite's CAST truncates,
PostgreSQL's rounds) and nothing else — ``ln`` exists in both (the SQLite reader adds it where the
library was built without math functions).

Every statement filters on an indexed time column first (``requests.started_at``, and migration 7's
``calls (started_at, status)``), and totals that ``podium report`` also gives are computed by the
very same expressions as ``ledger.report`` (errors are ``status = 'error'``, unfinished ``'running'``,
savings from the tokens of ``ok`` calls), so the numbers agree for the same range.

The ledger's schema grows (migrations 5 and 6 add embeddings, experiments and shadow trials): builders
that read optional columns take the ``Schema`` the reader found and leave out what is not there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Dialect = Literal["sqlite", "postgres"]
Statement = tuple[str, tuple[Any, ...]]

# Latency histogram buckets for percentiles: bucket b holds latencies in [R^b, R^(b+1)) ms, so a
# percentile read from it is within ``R`` (4 %) of the exact one, whatever the latencies are.
LATENCY_RATIO = 1.04
_LN_RATIO = math.log(LATENCY_RATIO)


@dataclass(frozen=True)
class Schema:
    """The ledger's tables and their columns, as found (the schema may be older or newer than this code)."""

    columns: dict[str, frozenset[str]] = field(default_factory=dict)

    def has(self, table: str, *columns: str) -> bool:
        found = self.columns.get(table)
        return found is not None and all(c in found for c in columns)


def whole(expr: str, dialect: Dialect) -> str:
    """The whole part of a non-negative number."""
    return f"CAST({expr} AS INTEGER)" if dialect == "sqlite" else f"CAST(FLOOR({expr}) AS BIGINT)"


def count_if(condition: str, dialect: Dialect) -> str:
    """How many rows meet ``condition``: SQLite sums the comparison (0 or 1), PostgreSQL filters (it cannot
    sum a boolean); both cheaper than a CASE per row, which matters over a million rows."""
    return f"SUM({condition})" if dialect == "sqlite" else f"COUNT(*) FILTER (WHERE {condition})"


def group_key(column: str, dialect: Dialect) -> str:
    """A GROUP BY term that does not tempt SQLite's planner into scanning a whole table through an index on
    that column (to skip a sort) instead of taking the time range from the time index: the unary ``+``."""
    return f"+{column}" if dialect == "sqlite" else column


def _window(column: str, since: float, until: float | None) -> tuple[str, tuple[Any, ...]]:
    if until is None:
        return f"{column} >= ?", (since,)
    return f"{column} >= ? AND {column} < ?", (since, until)


def bucket(column: str, start: float, step: float, dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
    """The chart bucket of a time column: 0 for ``[start, start + step)``, and so on."""
    return whole(f"(({column} - ?) / ?)", dialect), (start, step)


# --- the overview ------------------------------------------------------------------------------------
def overview_bucket(lo: float, hi: float | None, dialect: Dialect) -> Statement:
    """One chart bucket's requests: counts, outcomes, spend, retries, fallbacks, cache hits. A range query
    per bucket on the covering index (migration 7) reads each row once and sorts nothing; one GROUP BY
    over a computed bucket made SQLite sort a million rows first."""
    where, params = _window("started_at", lo, hi)

    def n(condition: str) -> str:
        return count_if(condition, dialect)

    return (f"""
        SELECT COUNT(*), {n("status = 'error'")}, {n("status = 'running'")}, COALESCE(SUM(cost), 0),
               COALESCE(SUM(retries), 0), {n("retries > 0")}, {n("fallbacks > 0")}, {n("strategy = 'cache'")},
               {n("status = 'cancelled'")}, COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0)
        FROM requests WHERE {where}""", params)


def ok_tokens_bucket(lo: float, hi: float | None) -> Statement:
    """One bucket's tokens of the calls that succeeded: what the baseline model would have billed."""
    where, params = _window("started_at", lo, hi)
    return (f"SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0) FROM calls"
            f" WHERE {where} AND status = 'ok'", params)


def feedback_summary(since: float, until: float | None) -> Statement:
    """Satisfaction: how many requests of the range were scored, and their mean score (each request's
    scores averaged first)."""
    where, params = _window("r.started_at", since, until)
    return (f"SELECT COUNT(*), AVG(f.score) FROM (SELECT request_id, AVG(score) AS score FROM feedback"
            f" WHERE score IS NOT NULL GROUP BY request_id) f JOIN requests r ON r.request_id = f.request_id"
            f" WHERE {where}", params)


def first_request() -> Statement:
    """When the ledger's first request started (the start of an ``all`` chart); indexed."""
    return "SELECT MIN(started_at) FROM requests", ()


# --- models and deployments --------------------------------------------------------------------------
def calls_by_model(since: float, until: float | None, dialect: Dialect) -> Statement:
    """Per model, as ``podium report``'s per-model table (calls started in the range)."""
    where, params = _window("started_at", since, until)
    return (f"""
        SELECT model, COUNT(*), SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), SUM(input_tokens),
               SUM(output_tokens), SUM(cost), AVG(latency_ms), MAX(latency_ms)
        FROM calls WHERE {where} GROUP BY {group_key("model", dialect)}""", params)


def calls_by_deployment(since: float, until: float | None, dialect: Dialect) -> Statement:
    """Per model and provider (a deployment): calls, outcomes, tokens, cost, and the time spent by
    successful calls (tokens per second = their output tokens over their time)."""
    where, params = _window("started_at", since, until)
    return (f"""
        SELECT model, provider, COUNT(*), SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END),
               SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END), SUM(input_tokens), SUM(output_tokens),
               SUM(cost), AVG(latency_ms),
               SUM(CASE WHEN status = 'ok' THEN output_tokens ELSE 0 END),
               SUM(CASE WHEN status = 'ok' THEN latency_ms ELSE 0 END)
        FROM calls WHERE {where} GROUP BY {group_key("model", dialect)}, provider""", params)


def latency_histogram(since: float, until: float | None, dialect: Dialect) -> Statement:
    """Per deployment, successful calls counted by latency bucket (see ``LATENCY_RATIO``)."""
    where, params = _window("started_at", since, until)
    b = whole(f"(ln(CASE WHEN latency_ms < 1 THEN 1 ELSE latency_ms END) / {_LN_RATIO!r})", dialect)
    return (f"""
        SELECT model, provider, {b} AS b, COUNT(*) FROM calls
        WHERE {where} AND status = 'ok' GROUP BY {group_key("model", dialect)}, provider, {b}""", params)


def ttft_histogram(since: float, until: float | None, dialect: Dialect) -> Statement:
    """Per deployment, streamed calls counted by time-to-first-token bucket (migration 9; the buckets of
    ``latency_histogram``). Every call with a first chunk counts, whatever its end: the wait its user saw.
    ``ttft_ms IS NOT NULL`` lets both stores answer from the partial index ``calls_ttft`` alone."""
    where, params = _window("started_at", since, until)
    b = whole(f"(ln(CASE WHEN ttft_ms < 1 THEN 1 ELSE ttft_ms END) / {_LN_RATIO!r})", dialect)
    return (f"""
        SELECT model, provider, {b} AS b, COUNT(*) FROM calls
        WHERE {where} AND ttft_ms IS NOT NULL GROUP BY {group_key("model", dialect)}, provider, {b}""", params)


def call_errors(since: float, until: float | None, dialect: Dialect, limit: int = 500) -> Statement:
    """The commonest error messages per deployment (classified in ``views``)."""
    where, params = _window("started_at", since, until)
    return (f"""
        SELECT model, provider, error, COUNT(*) AS n FROM calls
        WHERE {where} AND status = 'error' GROUP BY {group_key("model", dialect)}, provider, error
        ORDER BY n DESC LIMIT ?""",
            (*params, limit))


def deployment_series(since: float, until: float | None, start: float, step: float,
                      dialect: Dialect) -> Statement:
    """Per time bucket and model: calls and their average latency (the models page's chart)."""
    b, b_params = bucket("started_at", start, step, dialect)
    where, w_params = _window("started_at", since, until)
    return (f"""
        SELECT {b} AS b, model, COUNT(*), AVG(latency_ms) FROM calls
        WHERE {where} GROUP BY 1, 2""", (*b_params, *w_params))


# --- task types ---------------------------------------------------------------------------------------
def requests_by_task_type(since: float, until: float | None) -> Statement:
    """Per task type, as ``podium report``'s per-task-type table (requests started in the range)."""
    where, params = _window("started_at", since, until)
    return (f"""
        SELECT COALESCE(task_type, '(none)'), COUNT(*), SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END),
               SUM(input_tokens), SUM(output_tokens), SUM(cost), COALESCE(AVG(latency_ms), 0),
               COALESCE(MAX(latency_ms), 0)
        FROM requests WHERE {where} GROUP BY COALESCE(task_type, '(none)')""", params)


def task_type_by_model(since: float, until: float | None) -> Statement:
    """Per task type and answering model: requests, errors, cost, latency, and the feedback they got
    (scores averaged per request first, so a request scored twice counts once)."""
    where, params = _window("r.started_at", since, until)
    return (f"""
        SELECT COALESCE(r.task_type, '(none)'), COALESCE(r.model, '(none)'), COUNT(*),
               SUM(CASE WHEN r.status = 'error' THEN 1 ELSE 0 END), SUM(r.cost), COALESCE(AVG(r.latency_ms), 0),
               COUNT(f.score), AVG(f.score), COALESCE(SUM(f.labels), 0)
        FROM requests r LEFT JOIN (
            SELECT request_id, AVG(score) AS score, COUNT(*) AS labels FROM feedback GROUP BY request_id
        ) f ON f.request_id = r.request_id
        WHERE {where} GROUP BY COALESCE(r.task_type, '(none)'), COALESCE(r.model, '(none)')""", params)


# --- routing ------------------------------------------------------------------------------------------
def by_strategy(since: float, until: float | None) -> Statement:
    """Per strategy, and whether the request named its model or was routed."""
    where, params = _window("started_at", since, until)
    return (f"""
        SELECT strategy, CASE WHEN requested_model IS NULL OR requested_model = 'auto' THEN 1 ELSE 0 END,
               COUNT(*), SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), SUM(cost), COALESCE(AVG(latency_ms), 0),
               SUM(CASE WHEN fallbacks > 0 THEN 1 ELSE 0 END)
        FROM requests WHERE {where}
        GROUP BY strategy, CASE WHEN requested_model IS NULL OR requested_model = 'auto' THEN 1 ELSE 0 END""", params)


def rationales(since: float, until: float | None, limit: int = 400) -> Statement:
    """The commonest (rationale, model) pairs: why the router chose what (grouped further in ``views``)."""
    where, params = _window("started_at", since, until)
    return (f"""
        SELECT rationale, COALESCE(model, '(none)'), COUNT(*) AS n, SUM(cost) FROM requests
        WHERE {where} GROUP BY rationale, COALESCE(model, '(none)') ORDER BY n DESC LIMIT ?""", (*params, limit))


def experiments(since: float, until: float | None) -> Statement:
    """Per A/B experiment and arm (migration 6): requests, outcomes, cost, latency and feedback."""
    where, params = _window("r.started_at", since, until)
    return (f"""
        SELECT r.experiment, COALESCE(r.arm, '(none)'), COUNT(*), SUM(CASE WHEN r.status = 'error' THEN 1 ELSE 0 END),
               SUM(r.cost), COALESCE(AVG(r.latency_ms), 0), COUNT(f.score), AVG(f.score)
        FROM requests r LEFT JOIN (
            SELECT request_id, AVG(score) AS score FROM feedback GROUP BY request_id
        ) f ON f.request_id = r.request_id
        WHERE {where} AND r.experiment IS NOT NULL
        GROUP BY r.experiment, COALESCE(r.arm, '(none)')""", params)


def shadow_trials(since: float, until: float | None) -> Statement:
    """Per shadow trial and candidate (migration 6): how often the candidate agreed, and what it cost."""
    where, params = _window("created_at", since, until)
    return (f"""
        SELECT trial, candidate, COUNT(*), SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END),
               SUM(CASE WHEN agreed = 1 THEN 1 ELSE 0 END), COUNT(agreed), AVG(score), SUM(served_cost),
               SUM(candidate_cost), SUM(judge_cost), AVG(served_latency_ms), AVG(latency_ms)
        FROM shadow_trials WHERE {where} GROUP BY trial, candidate""", params)


def embeddings_count(since: float, until: float | None) -> Statement:
    """Requests in the range whose prompt embedding was kept (migration 5), for the learned router."""
    where, params = _window("r.started_at", since, until)
    return (f"SELECT COUNT(*) FROM request_embeddings e JOIN requests r ON r.request_id = e.request_id"
            f" WHERE {where}", params)


# --- keys and teams ----------------------------------------------------------------------------------
def by_key(since: float, until: float | None) -> Statement:
    """Per key (by id, never the key) and team: requests, outcomes and spend in the range."""
    where, params = _window("started_at", since, until)
    return (f"""
        SELECT COALESCE(key_id, ''), COALESCE(team, ''), COUNT(*), SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END),
               SUM(cost), MAX(started_at)
        FROM requests WHERE {where} GROUP BY COALESCE(key_id, ''), COALESCE(team, '')""", params)


def limit_errors(since: float, until: float | None, patterns: tuple[str, ...]) -> Statement:
    """Per key, failed requests whose error says a budget or limit stopped them (``patterns``: LIKE
    patterns, given as parameters)."""
    where, params = _window("started_at", since, until)
    matches = " OR ".join("LOWER(error) LIKE ?" for _ in patterns)
    return (f"""
        SELECT COALESCE(key_id, ''), COUNT(*) FROM requests
        WHERE {where} AND status = 'error' AND ({matches}) GROUP BY COALESCE(key_id, '')""", (*params, *patterns))


def spent_since_by_key(since: float) -> Statement:
    """Per key and team, what the calls of its requests started since ``since`` cost: a budget period's
    spend, summed as the budget itself sums it (``ledger.schema.SPENT_BY_KEY``)."""
    return ("SELECT COALESCE(r.key_id, ''), COALESCE(r.team, ''), SUM(c.cost) FROM calls c"
            " JOIN requests r ON r.request_id = c.request_id WHERE r.started_at >= ?"
            " GROUP BY COALESCE(r.key_id, ''), COALESCE(r.team, '')", (since,))


def virtual_keys() -> Statement:
    """The keys' public fields (never a hash), where they live in the ledger's database (PostgreSQL)."""
    return ("SELECT id, name, budget, budget_period, rpm, tpm, team, revoked_at FROM virtual_keys"
            " ORDER BY created_at", ())


# --- the request explorer ------------------------------------------------------------------------------
REQUEST_COLUMNS = ("request_id", "started_at", "finished_at", "requested_model", "model", "provider", "task_type",
                   "strategy", "user_id", "tags", "status", "error", "rationale", "input_tokens", "output_tokens",
                   "cost", "latency_ms", "calls", "retries", "fallbacks", "deployment", "notes", "key_id", "team")
OPTIONAL_REQUEST_COLUMNS = ("experiment", "arm")
CALL_COLUMNS = ("seq", "started_at", "provider", "model", "step", "status", "error", "input_tokens", "output_tokens",
                "cached_input_tokens", "reasoning_tokens", "cost", "latency_ms")
OPTIONAL_CALL_COLUMNS = ("ttft_ms",)
SEARCH_COLUMNS = ("request_id", "started_at", "requested_model", "model", "task_type", "strategy", "user_id", "tags",
                  "status", "cost", "latency_ms", "calls", "key_id", "team")


def request_columns(schema: Schema) -> tuple[str, ...]:
    found = schema.columns.get("requests", frozenset(REQUEST_COLUMNS))
    return tuple(c for c in (*REQUEST_COLUMNS, *OPTIONAL_REQUEST_COLUMNS) if c in found)


@dataclass(frozen=True)
class Search:
    """What the explorer looks for; every field optional, all given ones must hold."""

    request_id: str | None = None
    user: str | None = None
    tag: str | None = None
    key_id: str | None = None
    team: str | None = None
    model: str | None = None
    task_type: str | None = None
    status: str | None = None
    before: float | None = None  # the page after: requests started before this time …
    before_id: str | None = None  # … or at it, listed after this id (the cursor is the last row shown)
    limit: int = 50


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_requests(search: Search, since: float, until: float | None) -> Statement:
    """Newest first, by the time index; equality on the other fields, tags matched whole."""
    clauses: list[str] = []
    params: list[Any] = []
    if search.request_id is not None:  # an id is found whatever the range
        clauses.append("request_id = ?")
        params.append(search.request_id)
    else:
        where, w_params = _window("started_at", since, until)
        clauses.append(where)
        params.extend(w_params)
    for column, value in (("user_id", search.user), ("key_id", search.key_id), ("team", search.team),
                          ("model", search.model), ("task_type", search.task_type), ("status", search.status)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if search.tag is not None:
        clauses.append("(',' || tags || ',') LIKE ? ESCAPE '\\'")
        params.append(f"%,{_like_escape(search.tag)},%")
    if search.before is not None and search.before_id is not None:
        # the rows after (started_at, request_id) in the listing's order (newest first, then by id): requests
        # sharing the last row's start time are not skipped; ``started_at <= ?`` bounds the index range
        clauses.append("started_at <= ? AND (started_at < ? OR request_id > ?)")
        params.extend((search.before, search.before, search.before_id))
    elif search.before is not None:
        clauses.append("started_at < ?")
        params.append(search.before)
    return (f"SELECT {', '.join(SEARCH_COLUMNS)} FROM requests WHERE {' AND '.join(clauses)}"
            f" ORDER BY started_at DESC, request_id LIMIT ?", (*params, search.limit))


def one_request(request_id: str, schema: Schema) -> Statement:
    return f"SELECT {', '.join(request_columns(schema))} FROM requests WHERE request_id = ?", (request_id,)


def call_columns(schema: Schema) -> tuple[str, ...]:
    """The call rows' columns, and those of the newer migrations the ledger has (9: ``ttft_ms``)."""
    return (*CALL_COLUMNS, *(c for c in OPTIONAL_CALL_COLUMNS if schema.has("calls", c)))


def request_calls(request_id: str, schema: Schema) -> Statement:
    return f"SELECT {', '.join(call_columns(schema))} FROM calls WHERE request_id = ? ORDER BY seq", (request_id,)


def request_feedback(request_id: str, schema: Schema) -> Statement:
    key = ", key_id" if schema.has("feedback", "key_id") else ", NULL"
    return (f"SELECT created_at, score, label, comment{key} FROM feedback WHERE request_id = ? ORDER BY created_at",
            (request_id,))


def request_shadows(request_id: str) -> Statement:
    return ("SELECT trial, candidate, status, agreed, score, candidate_cost, judge_cost, latency_ms, created_at"
            " FROM shadow_trials WHERE request_id = ? ORDER BY created_at", (request_id,))


def request_has_embedding(request_id: str) -> Statement:
    return "SELECT model, dims FROM request_embeddings WHERE request_id = ?", (request_id,)

"""The dashboard's pure parts, tried with inputs a person would not think of: ranges and searches from any query
string (a 400 or a value, never another error), charts from any names and numbers (well-formed SVG, names
escaped), percentiles from the SQL histogram (within its 4 %), error classes and trace trees."""

from __future__ import annotations

import math
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from podium.dashboard import queries as q
from podium.dashboard import svg as svg_module
from podium.dashboard import views
from podium.dashboard.api import search_of
from podium.dashboard.ranges import MAX_BUCKETS, PRESETS, Span, parse_span
from podium.dashboard.svg import Series, bar_chart, line_chart, ticks
from podium.errors import BadRequestError
from podium.ledger.sqlite import connect

NOW = 1_800_000_000.0
params = st.dictionaries(st.sampled_from(["range", "from", "to", "limit", "before", "id", "user", "tag", "key",
                                          "model", "status", "task_type"]),
                         st.one_of(st.text(max_size=300), st.sampled_from(["nan", "inf", "-1", "0", "1e400", "24h",
                                                                           "all", "7d", "50", "201"]),
                                   st.floats(allow_nan=True).map(str)), max_size=6)


@given(params)
@settings(max_examples=400, deadline=None)
def test_any_query_string_is_a_span_and_a_search_or_a_400(given_params: dict[str, str]):
    try:
        span = parse_span(given_params, NOW)
    except BadRequestError:
        pass
    else:
        assert span.since >= 0 and (span.until is None or span.until > span.since)
        assert span.step(span.since or NOW - 3600, NOW) > 0
        width = span.end(NOW) - (span.since or NOW - 3600)
        assert width / span.step(span.since or NOW - 3600, NOW) <= MAX_BUCKETS + 1
    try:
        search = search_of(given_params)
    except BadRequestError:
        pass
    else:
        assert 1 <= search.limit <= 200
        for value in (search.request_id, search.user, search.tag, search.key_id, search.model):
            assert value is None or (0 < len(value) <= 200 and not any(ord(c) < 32 for c in value))


def test_presets_and_custom_ranges():
    assert parse_span({}, NOW) == Span(NOW - PRESETS["24h"], None, "24h")
    assert parse_span({"range": "all"}, NOW) == Span(0.0, None, "all")
    assert parse_span({"from": "100", "to": "200"}, NOW) == Span(100.0, 200.0, "custom")
    with pytest.raises(BadRequestError, match="'to' must be later"):
        parse_span({"from": "200", "to": "100"}, NOW)
    assert Span(0, None, "all").step(NOW - 10 * 365 * 86400, NOW) == 91 * 86400  # ten years: 40 quarters
    assert Span(0, None, "all").step(0, NOW) == 365 * 86400  # since 1970: 57 years


names = st.text(min_size=0, max_size=40)
values = st.one_of(st.none(), st.floats(min_value=0, max_value=1e12, allow_nan=False))


@given(st.lists(st.tuples(names, st.lists(values, min_size=3, max_size=3)), max_size=5),
       st.lists(st.floats(min_value=0, max_value=2e9), min_size=3, max_size=3))
@settings(max_examples=200, deadline=None)
def test_charts_are_well_formed_svg_with_every_name_escaped(lines: list[tuple[str, list[float | None]]],
                                                            times: list[float]):
    svg = line_chart("c1", "<title> & co", sorted(times), [Series(n, v) for n, v in lines], step=3600)
    root = ET.fromstring(svg)  # raises on malformed markup
    assert root.tag.endswith("svg") and root.attrib["role"] == "img"
    texts = "".join(root.itertext())
    for name, _ in lines:  # every name is there, less what XML cannot hold (control characters)
        shown = svg_module._NOT_XML.sub("", name).replace("\r\n", "\n").replace("\r", "\n")
        assert shown in texts
    bars = bar_chart("c2", "bars", [(n, v[:2]) for n, v in lines], ["p50", "<p95>"])
    assert ET.fromstring(bars).tag.endswith("svg")
    assert "<script" not in svg and "<script" not in bars


def test_ticks_are_round_and_cover_the_top():
    for top in (0.0, 0.003, 1, 7, 9.99, 10, 11, 2500, 1e9):
        marks = ticks(top)
        assert marks[0] == 0 and marks[-1] >= top and len(marks) <= 6
        step = marks[1] - marks[0]
        mantissa = step / 10 ** math.floor(math.log10(step))
        assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5, 10))


@given(st.lists(st.floats(min_value=0.01, max_value=600_000), min_size=1, max_size=300))
@settings(max_examples=60, deadline=None)
def test_percentiles_from_the_sql_histogram_are_within_the_bucket_ratio(latencies: list[float]):
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE calls (model TEXT, provider TEXT, status TEXT, started_at REAL, latency_ms REAL)")
    conn.executemany("INSERT INTO calls VALUES ('m', 'p', 'ok', 1, ?)", [(v,) for v in latencies])
    histogram = {int(b): int(n) for _, _, b, n in conn.execute(*q.latency_histogram(0, None, "sqlite"))}
    ordered = sorted(max(v, 1.0) for v in latencies)  # below 1 ms counts as 1 ms
    for share in (0.5, 0.95):
        exact = ordered[max(math.ceil(share * len(ordered)) - 1, 0)]
        found = views.percentile(histogram, share)
        assert found is not None
        assert exact / q.LATENCY_RATIO <= found <= exact * q.LATENCY_RATIO * 1.0001, (share, exact, found)


def test_error_classes():
    assert views.error_class("upstream timed out after 60 s") == "timeout"
    assert views.error_class("429 Too Many Requests") == "rate_limit"
    assert views.error_class("openai: 503 service unavailable") == "unavailable"
    assert views.error_class("maximum context length is 8192 tokens") == "context_length"
    assert views.error_class(None) == "other"


def test_the_trace_tree_nests_steps_in_the_order_they_ran():
    calls = [{"model": "a", "provider": "p", "step": "cascade/try 1", "cost": 1.0},
             {"model": "b", "provider": "p", "step": "cascade/try 2/vote", "cost": 2.0},
             {"model": "c", "provider": "p", "step": "cascade/try 2/vote", "cost": 3.0},
             {"model": "d", "provider": "p", "step": None, "cost": 4.0}]
    tree = views.trace_tree({"strategy": "cascade", "model": "c", "cost": 10.0}, calls)
    cascade, direct = tree["children"]
    assert cascade["label"] == "cascade" and cascade["calls"] == 3 and cascade["cost"] == 6.0
    assert [c["label"] for c in cascade["children"]] == ["try 1", "try 2"]
    assert cascade["children"][1]["children"][0]["label"] == "vote"
    assert direct["kind"] == "call" and direct["model"] == "d"


def test_a_ledger_without_the_newer_tables_still_answers(tmp_path: Path):
    """A ledger from before migrations 4-7 (no keys, experiments, embeddings or shadow trials)."""
    from podium.ledger.schema import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        for version, script in MIGRATIONS:
            if version <= 3:
                for statement in (s.strip() for s in script.split(";")):
                    if statement:
                        conn.execute(statement)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.executemany("INSERT INTO schema_version VALUES (?)", [(1,), (2,), (3,)])
        conn.execute("INSERT INTO requests (request_id, started_at, strategy, status, cost) VALUES ('r', ?, 'single',"
                     " 'ok', 0.5)", (NOW - 60,))
    columns = frozenset(r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(requests)"))
    schema = q.Schema({"requests": columns,
                       "calls": frozenset(["request_id"]), "feedback": frozenset(["request_id", "score"])})
    conn = sqlite3.connect(path)

    def run(sql: str, values: tuple[object, ...]) -> list[tuple[object, ...]]:
        return conn.execute(sql, values).fetchall()

    ask = views.Ask(parse_span({"range": "1h"}, NOW), NOW, "sqlite", None)
    assert views.overview(run, schema, ask)["totals"]["requests"] == 1
    routing = views.routing(run, schema, ask)
    assert routing["experiments"] is None and routing["shadow"] is None and routing["embeddings"] is None
    assert views.keys(run, schema, ask)["keys"] == []  # no key columns before migration 4
    detail = views.request_detail(run, schema, ask, "r")
    assert detail is not None and "experiment" not in detail["request"]
    connect(path).close()  # and it migrates cleanly to the latest schema, indexes included
    names = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"requests_overview", "calls_started"} <= names and "requests_started" not in names

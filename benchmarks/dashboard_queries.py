"""How long the dashboard's pages take over a big ledger: prints one line per page and range.

    .venv/bin/python benchmarks/dashboard_queries.py                 # 1,000,000 requests in SQLite
    .venv/bin/python benchmarks/dashboard_queries.py --postgres "host=127.0.0.1 dbname=test user=postgres"

The ledger is generated with a fast bulk insert (one transaction, executemany): requests spread over the
last 30 days, ~1.3 calls each (strategies and fallbacks make more), six models on three providers, eight
task types, forty keys in four teams, 3 % errors, 5 % cache hits, feedback on 2 %, 60 % of calls streamed
(with a time to first token). Each figure is the
whole page's work as the endpoint does it — every query on the reader's thread plus the charts — the
median of ``--repeat`` runs after one warm-up (the first, cold, run is printed too).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from podium.catalogue import bundled_catalogue
from podium.dashboard import charts, views
from podium.dashboard.api import models_data, overview_data
from podium.dashboard.queries import Search
from podium.dashboard.ranges import parse_span
from podium.dashboard.reader import LedgerReader, open_reader

MODELS = [("gpt-4o", "openai", 2.5, 10.0), ("gpt-4o-mini", "openai", 0.15, 0.6),
          ("claude-sonnet-4-5", "anthropic", 3.0, 15.0), ("claude-haiku-4-5", "anthropic", 1.0, 5.0),
          ("gemini-2.5-flash", "gemini", 0.3, 2.5), ("gemini-2.5-pro", "gemini", 1.25, 10.0)]
TASKS = ["qa", "code", "review", "planning", "summary", "translate", "extract", None]
STRATEGIES = ["single"] * 16 + ["cascade", "consensus", "cache"]
DAY = 86400.0


def rows(n: int, now: float, seed: int = 7) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """Each request's row (schema order) and its call rows."""
    rng = random.Random(seed)
    keys = [(f"key_{i:012x}", f"team-{i % 4}") for i in range(40)]
    for i in range(n):
        started = now - 30 * DAY * (i / n) - rng.random()
        model, provider, price_in, price_out = MODELS[rng.randrange(len(MODELS))]
        strategy = STRATEGIES[rng.randrange(len(STRATEGIES))]
        status = "error" if rng.random() < 0.03 else "ok"
        key_id, team = keys[rng.randrange(len(keys))]
        request_id = f"req_{i:024x}"
        calls = []
        n_calls = 0 if strategy == "cache" else 3 if strategy == "consensus" else 2 if strategy == "cascade" else 1
        fallbacks = 1 if n_calls == 1 and rng.random() < 0.02 else 0
        n_calls += fallbacks
        cost_total, tin_total, tout_total, latency_total = 0.0, 0, 0, 0.0
        for seq in range(n_calls):
            tokens_in, tokens_out = rng.randint(20, 2000), rng.randint(5, 800)
            latency = rng.lognormvariate(6.0, 0.8)
            failed = (status == "error" and seq == n_calls - 1) or (fallbacks and seq == 0)
            cost = 0.0 if failed else (tokens_in * price_in + tokens_out * price_out) / 1e6
            cost_total, tin_total, tout_total = cost_total + cost, tin_total + tokens_in, tout_total + tokens_out
            latency_total += latency
            calls.append((request_id, seq, started + latency_total / 1000, provider, model,
                           f"{strategy}/member {seq}" if strategy in ("consensus", "cascade") else None,
                           "error" if failed else "ok", "upstream timed out after 60 s" if failed else None,
                           tokens_in, 0 if failed else tokens_out, 0, 0, cost, latency,
                           latency * rng.uniform(0.1, 0.5) if rng.random() < 0.6 else None))
        retries = 1 if rng.random() < 0.01 else 0
        request = (request_id, started, started + latency_total / 1000, None if rng.random() < 0.7 else model, model,
                   provider, TASKS[rng.randrange(len(TASKS))], strategy, f"user-{rng.randrange(5000)}",
                   "area:core" if rng.random() < 0.1 else "", status,
                   "upstream timed out after 60 s" if status == "error" else None,
                   f"complexity {rng.random():.2f}: standard tier; cheapest eligible standard model",
                   tin_total, tout_total, cost_total, latency_total, n_calls, retries, fallbacks,
                   f"{model}@{provider}", None, key_id, team)
        yield request, calls


REQUEST_INSERT = ("INSERT INTO requests (request_id, started_at, finished_at, requested_model, model, provider,"
                  " task_type, strategy, user_id, tags, status, error, rationale, input_tokens, output_tokens, cost,"
                  " latency_ms, calls, retries, fallbacks, deployment, notes, key_id, team)"
                  " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
CALL_INSERT = ("INSERT INTO calls (request_id, seq, started_at, provider, model, step, status, error, input_tokens,"
               " output_tokens, cached_input_tokens, reasoning_tokens, cost, latency_ms, ttft_ms)"
               " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def batches(n: int, now: float, size: int = 20_000) -> Iterator[tuple[list[Any], list[Any], list[Any]]]:
    requests: list[Any] = []
    calls: list[Any] = []
    feedback: list[Any] = []
    rng = random.Random(11)
    for request, its_calls in rows(n, now):
        requests.append(request)
        calls.extend(its_calls)
        if rng.random() < 0.02:
            feedback.append((request[0], request[1] + 60, rng.random(), None, None, request[22]))
        if len(requests) >= size:
            yield requests, calls, feedback
            requests, calls, feedback = [], [], []
    if requests:
        yield requests, calls, feedback


def fill_sqlite(path: Path, n: int, now: float) -> None:
    from podium.ledger.sqlite import connect

    conn = connect(path)  # the schema with every migration (and its indexes)
    conn.execute("PRAGMA synchronous = OFF")
    with conn:
        for requests, calls, feedback in batches(n, now):
            conn.executemany(REQUEST_INSERT, requests)
            conn.executemany(CALL_INSERT, calls)
            conn.executemany("INSERT INTO feedback (request_id, created_at, score, label, comment, key_id)"
                             " VALUES (?, ?, ?, ?, ?, ?)", feedback)
    conn.execute("ANALYZE")
    conn.close()


def fill_postgres(dsn: str, n: int, now: float) -> None:
    import psycopg

    from podium.ledger.postgres import PostgresLedger

    async def migrate() -> None:
        ledger = PostgresLedger(dsn)
        await ledger._open()
        await ledger.aclose()

    asyncio.run(migrate())
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE requests, calls, feedback")
        for requests, calls, feedback in batches(n, now):
            with conn.cursor() as cur:
                with cur.copy("COPY requests (request_id, started_at, finished_at, requested_model, model, provider,"
                              " task_type, strategy, user_id, tags, status, error, rationale, input_tokens,"
                              " output_tokens, cost, latency_ms, calls, retries, fallbacks, deployment, notes, key_id,"
                              " team) FROM STDIN") as copy:
                    for row in requests:
                        copy.write_row(row)
                with cur.copy("COPY calls (request_id, seq, started_at, provider, model, step, status, error,"
                              " input_tokens, output_tokens, cached_input_tokens, reasoning_tokens, cost, latency_ms,"
                              " ttft_ms) FROM STDIN") as copy:
                    for row in calls:
                        copy.write_row(row)
                with cur.copy("COPY feedback (request_id, created_at, score, label, comment, key_id)"
                              " FROM STDIN") as copy:
                    for row in feedback:
                        copy.write_row(row)
        conn.execute("ANALYZE")


PageFn = Callable[[Any, Any, views.Ask], Any]
PAGES: dict[str, tuple[PageFn, Callable[[Any], Any] | None]] = {
    "overview": (views.overview, charts.overview),
    "models": (lambda run, schema, ask: views.models(run, schema, ask), charts.models),
    "task-types": (views.task_types, charts.task_types),
    "routing": (views.routing, None),
    "keys": (lambda run, schema, ask: views.keys(run, schema, ask), charts.keys),
    "requests": (lambda run, schema, ask: views.search(run, schema, ask, Search(user="user-42")), None),
}


async def timed(reader: LedgerReader, page: str, span: str, now: float, repeat: int) -> tuple[float, float, Any]:
    view, chart = PAGES[page]
    baseline = bundled_catalogue().find("gpt-4o")
    ask = views.Ask(parse_span({"range": span}, now), now, reader.dialect, baseline)
    results = []
    data = None
    for _ in range(repeat + 1):
        started = time.perf_counter()
        if page == "overview":  # as the endpoints do it: their scans on the reader's two threads at once
            data = await overview_data(reader, ask)
        elif page == "models":
            data = await models_data(reader, ask)
        else:
            data = await reader.read(lambda run, schema: view(run, schema, ask))
        if chart is not None:
            chart(data)
        results.append(time.perf_counter() - started)
    return results[0], statistics.median(results[1:]), data


async def measure(reader: LedgerReader, now: float, repeat: int) -> None:
    print(f"{'page':<12} {'range':<6} {'cold':>9} {'median':>9}  what")
    for span in ("24h", "7d", "30d", "all"):
        cold, median, data = await timed(reader, "overview", span, now, repeat)
        print(f"{'overview':<12} {span:<6} {cold * 1000:>7.0f}ms {median * 1000:>7.0f}ms  "
              f"{data['totals']['requests']:,} requests, ${data['totals']['total_cost']:,.2f}")
    for page in ("models", "task-types", "routing", "keys", "requests"):
        for span in ("24h", "all"):
            cold, median, _ = await timed(reader, page, span, now, repeat)
            print(f"{page:<12} {span:<6} {cold * 1000:>7.0f}ms {median * 1000:>7.0f}ms")
    await reader.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--path", type=Path, help="Where to write the SQLite ledger (kept; default: a temp dir)")
    parser.add_argument("--postgres", help="A PostgreSQL DSN to fill and measure instead (its tables are emptied)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="Measure an existing --path ledger as it is")
    args = parser.parse_args()
    now = time.time()
    started = time.perf_counter()
    if args.postgres:
        if not args.reuse:
            fill_postgres(args.postgres, args.requests, now)
        reader = open_reader(dsn=args.postgres)
        where = "PostgreSQL"
    else:
        path = args.path or Path(tempfile.mkdtemp(prefix="podium-dash-")) / "ledger.sqlite3"
        if not args.reuse:
            path.unlink(missing_ok=True)
            fill_sqlite(path, args.requests, now)
        reader = open_reader(path=path)
        where = f"SQLite {path} ({path.stat().st_size / 1e6:,.0f} MB)"
    if not args.reuse:
        print(f"generated {args.requests:,} requests in {time.perf_counter() - started:.1f} s: {where}")
    asyncio.run(measure(reader, now, args.repeat))


if __name__ == "__main__":
    main()

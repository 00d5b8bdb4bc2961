"""Time to first token in the ledger (migration 9) and on the models page, on SQLite and PostgreSQL; a ledger
from before it still answers every page; and the request explorer's paging cursor (start time, request id)
skips no request that shares its start time with the last one shown."""

from __future__ import annotations

import dataclasses
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard_helpers import ADMIN, bearer, config, open_gateway
from podium.dashboard.reader import open_reader
from podium.dashboard.standalone import create_dashboard_app
from podium.ledger import RequestEnd, RequestStart
from podium.ledger.schema import MIGRATIONS
from servers.http_server import Reply, Request, WireServer
from servers.wires import WIRES, Scenario

FIRST_DELAY = 0.2  # the upstream holds its first chunk this long …
CHUNK_DELAY = 0.03  # … and sends every chunk this long after the one before
ANSWER = "Paris is the capital of France, and has been for centuries."
PAGES = ("overview", "models", "task-types", "routing", "keys", "requests")


def slow_first_token(request: Request) -> Reply:
    """An OpenAI-compatible upstream whose streams wait ``FIRST_DELAY`` before their first chunk."""
    reply = WIRES["openai"].handle(request, Scenario(text=ANSWER))
    if reply.chunks is None:
        return reply
    return dataclasses.replace(reply, first_chunk_delay=FIRST_DELAY, chunk_delay=CHUNK_DELAY)


def store(request: pytest.FixtureRequest, kind: str) -> str | None:
    """The PostgreSQL DSN (skipped, except in CI, without a server), or None for SQLite."""
    return str(request.getfixturevalue("dsn")) if kind == "postgres" else None


def read_calls(tmp_path: Path, dsn: str | None) -> list[tuple[Any, ...]]:
    sql = "SELECT request_id, ttft_ms, latency_ms FROM calls ORDER BY started_at"
    if dsn:
        import psycopg

        with psycopg.connect(dsn) as conn:
            return list(conn.execute(sql).fetchall())
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_streamed_call_records_its_time_to_first_token_and_the_models_page_shows_it(
        tmp_path: Path, request: pytest.FixtureRequest, kind: str):
    dsn = store(request, kind)
    upstream = WireServer(slow_first_token).start()
    data = config(tmp_path, dsn=dsn)
    data.update(providers={"up": {"kind": "openai", "base_url": upstream.url + "/v1", "api_key": "sk-upstream-test"},
                           "local": {"enabled": False}},
                models={"fast": {"provider": "up", "model_id": "gpt-4o-mini", "context_window": 128000,
                                 "max_output_tokens": 1000, "input_price": 0.15, "output_price": 0.6,
                                 "tier": "fast", "region": "us"}},
                routing={"default": "fast"}, strategies={})
    gw = await open_gateway(tmp_path, data)
    try:
        made = await gw.http.post("/admin/keys", json={"name": "app"}, headers=bearer(ADMIN))
        assert made.status_code == 201, made.text
        key = made.json()["key"]
        streamed = await gw.chat(key, model="fast", stream=True)
        assert streamed.status_code == 200 and "[DONE]" in streamed.text, streamed.text
        whole = await gw.chat(key, model="fast")
        assert whole.status_code == 200, whole.text
        await gw.podium.ledger.flush()  # type: ignore[union-attr]
        rows = {str(r[0]): (r[1], float(r[2])) for r in read_calls(tmp_path, dsn)}
        ttft, latency = rows[streamed.headers["x-request-id"]]
        assert ttft is not None
        ttft = float(ttft)
        # the first chunk with text came after the upstream's delay, and well before the stream's end (the
        # answer's other pieces arrive CHUNK_DELAY apart after it): measured at the first chunk, not the last
        assert FIRST_DELAY * 1000 <= ttft < latency - 4 * CHUNK_DELAY * 1000, (ttft, latency)
        assert rows[whole.headers["x-request-id"]][0] is None  # not streamed: no time to first token

        models = (await gw.api("models", range="1h")).json()
        (deployment,) = models["deployments"]
        assert deployment["calls"] == 2 and deployment["streamed_calls"] == 1
        for name in ("p50_ttft_ms", "p95_ttft_ms"):  # from the 4 %-bucket histogram: within 4 % of the row
            assert deployment[name] == pytest.approx(ttft, rel=0.04), name
        assert deployment["p50_ttft_ms"] < deployment["p95_latency_ms"]
        detail = (await gw.api(f"requests/{streamed.headers['x-request-id']}")).json()
        assert [c["ttft_ms"] for c in detail["calls"]] == [pytest.approx(ttft)]
        detail = (await gw.api(f"requests/{whole.headers['x-request-id']}")).json()
        assert [c["ttft_ms"] for c in detail["calls"]] == [None]
    finally:
        await gw.aclose()
        upstream.stop()


def create_before_migration_9(tmp_path: Path, dsn: str | None) -> None:
    """A ledger as a gateway from before migration 9 left it: migrations 1-8, one request with one call."""
    statements = [s.strip() for version, script in MIGRATIONS if version < 9 for s in script.split(";") if s.strip()]
    statements.append("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    now = time.time()
    rows = [("INSERT INTO schema_version VALUES (?)", (v,)) for v, _ in MIGRATIONS if v < 9]
    rows.append(("INSERT INTO requests (request_id, started_at, finished_at, model, provider, strategy, status, cost,"
                 " latency_ms, calls) VALUES ('old', ?, ?, 'm', 'p', 'single', 'ok', 0.5, 300, 1)",
                 (now - 60, now - 59)))
    rows.append(("INSERT INTO calls (request_id, seq, started_at, provider, model, status, latency_ms, cost)"
                 " VALUES ('old', 1, ?, 'p', 'm', 'ok', 300, 0.5)", (now - 60,)))
    if dsn:
        import psycopg

        with psycopg.connect(dsn) as conn:
            for statement in statements:
                conn.execute(statement)
            for sql, params in rows:
                conn.execute(sql.replace("?", "%s"), params)
        return
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        for statement in statements:
            conn.execute(statement)
        for sql, params in rows:
            conn.execute(sql, params)


@asynccontextmanager
async def standalone(tmp_path: Path, dsn: str | None) -> AsyncIterator[httpx.AsyncClient]:
    """``podium dashboard --ledger`` in-process, reading the ledger as it is (it never migrates it)."""
    reader = open_reader(dsn=dsn) if dsn else open_reader(path=tmp_path / "ledger.sqlite3")
    app = create_dashboard_app(reader, None)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d") as http:
            yield http
    finally:
        await app.state.dashboard.aclose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_a_ledger_from_before_migration_9_answers_every_page(tmp_path: Path, request: pytest.FixtureRequest,
                                                                   kind: str):
    dsn = store(request, kind)
    create_before_migration_9(tmp_path, dsn)
    async with standalone(tmp_path, dsn) as http:
        for page in PAGES:
            answered = await http.get(f"/dashboard/api/{page}", params={"range": "1h"})
            assert answered.status_code == 200, (page, answered.text)
        models = (await http.get("/dashboard/api/models", params={"range": "1h"})).json()
        (deployment,) = models["deployments"]
        assert deployment["calls"] == 1 and deployment["p50_latency_ms"] == pytest.approx(300, rel=0.04)
        assert deployment["streamed_calls"] == 0 and deployment["p50_ttft_ms"] is None
        detail = await http.get("/dashboard/api/requests/old")
        assert detail.status_code == 200 and "ttft_ms" not in detail.json()["calls"][0]
    if not dsn:  # and the file still migrates to 9 when a gateway opens it
        from podium.ledger.sqlite import connect

        connect(tmp_path / "ledger.sqlite3").close()
        with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
            assert conn.execute("SELECT ttft_ms FROM calls").fetchall() == [(None,)]


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_paging_skips_no_request_sharing_the_last_ones_start_time(tmp_path: Path,
                                                                        request: pytest.FixtureRequest, kind: str):
    dsn = store(request, kind)
    if dsn:
        from podium.ledger.postgres import PostgresLedger

        ledger: Any = PostgresLedger(dsn)
    else:
        from podium.ledger.sqlite import SQLiteLedger

        ledger = SQLiteLedger(tmp_path / "ledger.sqlite3")
    tie = time.time() - 120.0  # five requests start at the very same time, one before them and one after
    starts = {"newest": tie + 5, **{f"tie-{c}": tie for c in "ecadb"}, "oldest": tie - 5}
    for request_id, started in starts.items():
        await ledger.start_request(RequestStart(request_id, started, "m"))
        await ledger.finish_request(RequestEnd(request_id, started + 1, "ok", "m", "p", 1, 1, 0.0, 1.0, 0))
    await ledger.aclose()
    expected = ["newest", "tie-a", "tie-b", "tie-c", "tie-d", "tie-e", "oldest"]
    async with standalone(tmp_path, dsn) as http:
        everything = (await http.get("/dashboard/api/requests", params={"range": "1h"})).json()
        assert [r["request_id"] for r in everything["requests"]] == expected
        assert everything["next_before"] is None and everything["next_before_id"] is None
        for limit in (1, 2, 3):
            seen: list[str] = []
            cursor: dict[str, Any] = {}
            for _ in range(len(expected) + 1):
                page = (await http.get("/dashboard/api/requests", params={"range": "1h", "limit": limit,
                                                                         **cursor})).json()
                seen += [r["request_id"] for r in page["requests"]]
                if page["next_before"] is None:
                    break
                cursor = {"before": page["next_before"], "before_id": page["next_before_id"]}
            assert seen == expected, limit  # each once, in order, none skipped
        # a time alone still pages as before (strictly older); an id without a time is refused, naming it
        older = (await http.get("/dashboard/api/requests", params={"range": "1h", "before": tie})).json()
        assert [r["request_id"] for r in older["requests"]] == ["oldest"]
        refused = await http.get("/dashboard/api/requests", params={"range": "1h", "before_id": "tie-a"})
        assert refused.status_code == 400 and "before_id" in refused.text

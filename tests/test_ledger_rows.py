"""One request's bad row costs no other request its rows; who made a request; schema upgrades.

Every test here runs on SQLite and on PostgreSQL (skipped with the reason when it is not running,
failed under CI=true)."""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from podium.ledger import CallRow, InvalidRow, RequestEnd, RequestStart, SQLiteLedger
from podium.ledger.schema import INSERT_FEEDBACK, LATEST, MIGRATIONS
from podium.ledger.writes import SqlLedger


@dataclass
class Store:
    name: str
    open: Callable[[], SqlLedger]
    query: Callable[[str], list[tuple[Any, ...]]]
    execute: Callable[[list[str]], None]
    integrity_error: type[Exception]


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        path = tmp_path / "l.sqlite3"

        def query(sql: str) -> list[tuple[Any, ...]]:
            with sqlite3.connect(path) as conn:
                return conn.execute(sql).fetchall()

        def execute(statements: list[str]) -> None:
            with sqlite3.connect(path) as conn:
                for statement in statements:
                    conn.execute(statement)

        yield Store("sqlite", lambda: SQLiteLedger(path), query, execute, sqlite3.IntegrityError)
        return
    dsn = request.getfixturevalue("dsn")
    import psycopg

    from podium.ledger.postgres import PostgresLedger

    def pg_query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn) as conn:
            return conn.execute(sql).fetchall()

    def pg_execute(statements: list[str]) -> None:
        with psycopg.connect(dsn) as conn:
            for statement in statements:
                conn.execute(statement)

    yield Store("postgres", lambda: PostgresLedger(dsn), pg_query, pg_execute, psycopg.IntegrityError)


async def one_request(ledger: SqlLedger, rid: str, calls: int = 2, key_id: str | None = None) -> None:
    await ledger.start_request(RequestStart(rid, time.time(), "m", key_id=key_id, team="t" if key_id else None))
    for _ in range(calls):
        await ledger.record_call(CallRow(rid, time.time(), "p", "m", "ok", 1.0, 10, 5, cost=0.001))
        await asyncio.sleep(0)
    await ledger.finish_request(RequestEnd(rid, time.time(), "ok", "m", "p", 10 * calls, 5 * calls, 0.001 * calls,
                                           2.0, calls))


def assert_whole(store: Store, rids: list[str], calls: int = 2) -> None:
    rows = dict(store.query("SELECT request_id, status FROM requests"))
    assert all(rows.get(rid) == "ok" for rid in rids), rows
    per_request = dict(store.query("SELECT request_id, COUNT(*) FROM calls GROUP BY request_id"))
    assert all(per_request.get(rid) == calls for rid in rids), per_request


async def test_a_bad_feedback_among_concurrent_requests_fails_only_its_caller(store: Store):
    ledger = store.open()
    rids = [f"r{i}" for i in range(30)]
    jobs = [one_request(ledger, rid) for rid in rids]
    jobs.insert(10, ledger.record_feedback("r3", 1.0, {"nested": "label"}, None))  # type: ignore[arg-type]
    jobs.insert(20, ledger.record_feedback("r4", 0.5, "good", "fine", key_id="key_1"))
    results = await asyncio.gather(*jobs, return_exceptions=True)
    await ledger.aclose()
    failed = [r for r in results if isinstance(r, BaseException)]
    assert len(failed) == 1 and isinstance(failed[0], InvalidRow) and "label" in str(failed[0])
    assert isinstance(failed[0], ValueError)
    assert_whole(store, rids)
    assert store.query("SELECT request_id, label, key_id FROM feedback") == [("r4", "good", "key_1")]


async def test_a_row_the_database_refuses_is_retried_alone_and_fails_only_its_caller(
        store: Store, caplog: pytest.LogCaptureFixture):
    """Past the checks (a store's own refusal): the batch is retried row by row, the rest commit."""
    ledger = store.open()
    rids = [f"r{i}" for i in range(20)]
    for rid in rids[:10]:  # buffered: they travel in the same batch as the bad row
        await ledger.start_request(RequestStart(rid, time.time(), "m"))
    bad = ledger._write(INSERT_FEEDBACK, ("r1", time.time(), 1.0, {"secret": "row text"}, None, None), "r1")
    with caplog.at_level(logging.ERROR, logger="podium.ledger"):
        results = await asyncio.gather(bad, *(one_request(ledger, rid) for rid in rids[10:]), return_exceptions=True)
        for rid in rids[:10]:
            await ledger.finish_request(RequestEnd(rid, time.time(), "ok", "m", "p", 0, 0, 0.0, 1.0, 0))
    await ledger.aclose()
    assert isinstance(results[0], Exception) and not isinstance(results[0], InvalidRow)
    assert results[1:] == [None] * 10
    assert_whole(store, rids[10:])
    assert sorted(store.query("SELECT request_id FROM requests WHERE status = 'ok'")) == sorted((r,) for r in rids)
    assert store.query("SELECT COUNT(*) FROM feedback") == [(0,)]
    logged = [r for r in caplog.records if r.name == "podium.ledger"]
    assert len(logged) == 1 and "request r1" in logged[0].getMessage()
    assert "row text" not in logged[0].getMessage() and "secret" not in logged[0].getMessage()


async def test_a_duplicate_request_id_fails_only_that_request(store: Store, caplog: pytest.LogCaptureFixture):
    ledger = store.open()
    await ledger.start_request(RequestStart("dup", time.time(), "m"))
    await ledger.flush()
    await ledger.start_request(RequestStart("a", time.time(), "m"))
    await ledger.start_request(RequestStart("dup", time.time(), "m"))  # the primary key refuses it
    await ledger.start_request(RequestStart("b", time.time(), "m"))
    with caplog.at_level(logging.ERROR, logger="podium.ledger"):
        await asyncio.gather(*(ledger.finish_request(RequestEnd(rid, time.time(), "ok", "m", "p", 1, 1, 0.0, 1.0, 0))
                               for rid in ("a", "b")))
        with pytest.raises(store.integrity_error):
            await ledger.flush("dup")
    await ledger.flush("dup")  # reported once
    await ledger.aclose()
    assert sorted(store.query("SELECT request_id, status FROM requests")) == [
        ("a", "ok"), ("b", "ok"), ("dup", "running")]
    logged = [r.getMessage() for r in caplog.records if r.name == "podium.ledger"]
    assert len(logged) == 1 and logged[0].startswith("ledger row not stored (request dup): ")


async def test_a_buffered_rows_failure_is_raised_by_its_own_finish(store: Store):
    ledger = store.open()
    await ledger.start_request(RequestStart("dup", time.time(), "m"))
    await ledger.flush()
    await ledger.start_request(RequestStart("dup", time.time(), "m"))
    await one_request(ledger, "other")
    with pytest.raises(store.integrity_error):
        await ledger.finish_request(RequestEnd("dup", time.time(), "ok", "m", "p", 1, 1, 0.0, 1.0, 0))
    await ledger.aclose()
    assert_whole(store, ["other"])


async def test_a_cancelled_caller_does_not_cancel_the_shared_commit(store: Store):
    ledger = store.open()
    rids = [f"r{i}" for i in range(20)]
    tasks = [asyncio.ensure_future(one_request(ledger, rid, calls=1)) for rid in rids]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    tasks[0].cancel()  # waiting for its finish row's commit, shared with the others
    results = await asyncio.gather(*tasks, return_exceptions=True)
    await ledger.aclose()
    assert all(r is None for r in results[1:]), results
    assert_whole(store, rids[1:], calls=1)


async def test_text_is_mended_the_same_way_on_both_stores(store: Store):
    """NUL (PostgreSQL refuses it), a lone surrogate (no encoding takes it), text past its cap."""
    ledger = store.open()
    await ledger.start_request(RequestStart("r", time.time(), "m", user="a\x00b", tags=("x", "y\udc80")))
    await ledger.finish_request(RequestEnd("r", time.time(), "error", None, None, 0, 0, 0.0, 1.0, 0,
                                           error="E" * 10_000, notes="ok"))
    await ledger.aclose()
    [(user, tags, error, notes)] = store.query("SELECT user_id, tags, error, notes FROM requests")
    assert (user, tags, notes) == ("a\ufffdb", "x,y\ufffd", "ok")
    assert len(error) == 4_000 and error.endswith("…")


async def test_request_owner_finds_buffered_and_committed_requests(store: Store):
    ledger = store.open()
    await ledger.start_request(RequestStart("buffered", time.time(), "m", key_id="key_a", team="red"))
    assert await ledger.request_owner("buffered") == (True, "key_a")  # flushed first, then read
    await one_request(ledger, "committed", key_id="key_b")
    await ledger.start_request(RequestStart("anonymous", time.time(), "m"))
    assert await ledger.request_owner("committed") == (True, "key_b")
    assert await ledger.request_owner("anonymous") == (True, None)
    assert await ledger.request_owner("unknown") == (False, None)
    assert await ledger.request_owner("") == (False, None)
    assert await ledger.request_owner("x" * 500) == (False, None)
    await ledger.aclose()
    assert sorted(store.query("SELECT request_id, key_id, team FROM requests")) == [
        ("anonymous", None, None), ("buffered", "key_a", "red"), ("committed", "key_b", "t")]


async def test_flush_commits_what_is_buffered_and_is_free_when_nothing_is(store: Store):
    ledger = store.open()
    await ledger.flush()  # nothing buffered: returns at once
    await ledger.start_request(RequestStart("r", time.time(), "m"))
    await ledger.record_call(CallRow("r", time.time(), "p", "m", "ok", 1.0))
    await ledger.flush()
    assert store.query("SELECT request_id, status FROM requests") == [("r", "running")]
    assert store.query("SELECT request_id, seq FROM calls") == [("r", 1)]
    await ledger.flush()
    await ledger.aclose()


async def test_migration_from_the_previous_version(store: Store, tmp_path: Path):
    """A ledger written by the previous release (migrations up to LATEST - 1) opens, upgrades, keeps its rows."""
    previous = [script for version, script in MIGRATIONS if version < LATEST]
    statements = [s.strip() for script in previous for s in script.split(";") if s.strip()]
    statements += ["CREATE TABLE schema_version (version INTEGER NOT NULL)",
                   *(f"INSERT INTO schema_version VALUES ({v})" for v, _ in MIGRATIONS if v < LATEST),
                   "INSERT INTO requests (request_id, started_at, strategy, status) VALUES ('old', 1, 'single', 'ok')",
                   "INSERT INTO feedback (request_id, created_at, score) VALUES ('old', 2, 1)"]
    store.execute(statements)
    ledger = store.open()
    assert await ledger.request_owner("old") == (True, None)
    await one_request(ledger, "new", key_id="key_1")
    await ledger.record_feedback("new", 1.0, None, None, key_id="key_2")
    await ledger.aclose()
    again = store.open()  # a second open migrates nothing
    assert await again.request_owner("new") == (True, "key_1")
    await again.aclose()
    assert [v for (v,) in store.query("SELECT version FROM schema_version ORDER BY version")] == list(
        range(1, LATEST + 1))
    assert sorted(store.query("SELECT request_id, status, key_id, team FROM requests")) == [
        ("new", "ok", "key_1", "t"), ("old", "ok", None, None)]
    assert sorted(store.query("SELECT request_id, key_id FROM feedback")) == [("new", "key_2"), ("old", None)]


def test_two_processes_opening_an_old_file_together_migrate_it_once(tmp_path: Path):
    path = tmp_path / "l.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.executescript(MIGRATIONS[0][1])
        conn.execute("INSERT INTO schema_version VALUES (1)")
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            SQLiteLedger(path).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with sqlite3.connect(path) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, LATEST + 1))


BAD_ROWS: list[tuple[Callable[[], object], str]] = [
    (lambda: RequestStart("r", "now", "m").values(), "started_at"),  # type: ignore[arg-type]
    (lambda: RequestStart("r", math.inf, "m").values(), "started_at"),
    (lambda: RequestStart("", 1.0, "m").values(), "request_id"),
    (lambda: RequestStart("r" * 201, 1.0, "m").values(), "request_id"),
    (lambda: RequestStart("r\x00", 1.0, "m").values(), "request_id"),
    (lambda: RequestStart(7, 1.0, "m").values(), "request_id"),  # type: ignore[arg-type]
    (lambda: RequestStart("r", 1.0, {"m": 1}).values(), "requested_model"),  # type: ignore[arg-type]
    (lambda: RequestStart("r", 1.0, "m", tags="a,b").values(), "tags"),  # type: ignore[arg-type]
    (lambda: RequestStart("r", 1.0, "m", tags=("a", 1)).values(), "tags"),  # type: ignore[arg-type]
    (lambda: RequestStart("r", 1.0, "m", key_id="k" * 201).values(), "key_id"),
    (lambda: RequestStart("r", 1.0, "m", team=["t"]).values(), "team"),  # type: ignore[arg-type]
    (lambda: CallRow("r", 1.0, "p", "m", "ok", math.nan).values(1), "latency_ms"),
    (lambda: CallRow("r", 1.0, "p", "m", "ok", 1.0, input_tokens=-1).values(1), "input_tokens"),
    (lambda: CallRow("r", 1.0, "p", "m", "ok", 1.0, output_tokens=True).values(1), "output_tokens"),
    (lambda: CallRow("r", 1.0, "p", "m", "ok", 1.0, reasoning_tokens=2**40).values(1), "reasoning_tokens"),
    (lambda: CallRow("r", 1.0, "p", "m", "ok", 1.0, cached_input_tokens=1.5).values(1),  # type: ignore[arg-type]
     "cached_input_tokens"),
    (lambda: CallRow("r", 1.0, "p", "m", "ok", 1.0, cost="0.1").values(1), "cost"),  # type: ignore[arg-type]
    (lambda: CallRow("r", 1.0, "p", None, "ok", 1.0).values(1), "model"),  # type: ignore[arg-type]
    (lambda: CallRow("r", 1.0, "p", "m", "ok", 1.0, ttft_ms=math.inf).values(1), "ttft_ms"),
    (lambda: CallRow("r", 1.0, "p", "m", "ok", 1.0, ttft_ms="5").values(1), "ttft_ms"),  # type: ignore[arg-type]
    (lambda: RequestEnd("r", 1.0, "ok", None, None, 0, 0, 10**400, 1.0, 0).values(), "cost"),
    (lambda: RequestEnd("r", 1.0, "ok", None, None, 0, 0, 0.0, 1.0, 0, error=ValueError("x")).values(),  # type: ignore[arg-type]
     "error"),
    (lambda: RequestEnd("r", 1.0, "ok", None, None, 0, 0, 0.0, 1.0, 0, retries=None).values(),  # type: ignore[arg-type]
     "retries"),
]


@pytest.mark.parametrize(("make", "field"), BAD_ROWS)
def test_a_bad_value_raises_naming_its_field(make: Callable[[], object], field: str):
    with pytest.raises(InvalidRow, match=rf"\b{field}\b"):
        make()


def test_good_values_pass_unchanged_or_coerced():
    start = RequestStart("r", 1, "m", tags=["a", "b"], key_id="key_1", team="t")  # type: ignore[arg-type]
    assert start.values() == ("r", 1.0, "m", None, "single", None, "a,b", "key_1", "t", None, None)
    assert isinstance(start.values()[1], float)
    call = CallRow("r", 1.5, "p", "café", "ok", 2, 1, 2, 3, 4, 0, error="e" * 5_000, step="s")
    values = call.values(3)
    assert values[:11] == ("r", 1.5, "p", "café", "ok", 2.0, 1, 2, 3, 4, 0.0)
    assert len(values[11]) == 4_000 and values[11].endswith("…")  # type: ignore[arg-type]
    assert values[12:] == ("s", None, 3)  # no time to first token: not streamed
    assert CallRow("r", 1.5, "p", "m", "ok", 2, ttft_ms=1).values(1)[13] == 1.0
    long_name = RequestEnd("r", 1.0, "ok", "m" * 2_000, "p", 0, 0, 0.0, 1.0, 0).values()[2]
    assert len(long_name) == 1_000  # type: ignore[arg-type]


async def test_a_rejected_row_queues_nothing(tmp_path: Path):
    ledger = SQLiteLedger(tmp_path / "l.sqlite3")
    with pytest.raises(InvalidRow, match="input_tokens"):
        await ledger.record_call(CallRow("r", 1.0, "p", "m", "ok", 1.0, input_tokens="3"))  # type: ignore[arg-type]
    assert ledger._buffer == [] and ledger._seq == {}
    await ledger.start_request(RequestStart("r", 1.0, "m"))
    await ledger.record_call(CallRow("r", 1.0, "p", "m", "ok", 1.0))
    await ledger.aclose()
    with sqlite3.connect(tmp_path / "l.sqlite3") as conn:
        assert conn.execute("SELECT seq FROM calls").fetchall() == [(1,)]


@pytest.mark.parametrize(("args", "field"), [
    (("", 1.0, None, None), "request_id"),
    (("r" * 201, 1.0, None, None), "request_id"),
    ((None, 1.0, None, None), "request_id"),
    (("r", "1", None, None), "score"),
    (("r", True, None, None), "score"),
    (("r", math.nan, None, None), "score"),
    (("r", math.inf, None, None), "score"),
    (("r", None, {"a": 1}, None), "label"),
    (("r", None, "l" * 201, None), "label"),
    (("r", None, None, ["c"]), "comment"),
    (("r", None, None, "c" * 4_001), "comment"),
    (("r", None, None, None, 12), "key_id"),
])
async def test_feedback_arguments_are_checked(tmp_path: Path, args: tuple[Any, ...], field: str):
    ledger = SQLiteLedger(tmp_path / "l.sqlite3")
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        await ledger.record_feedback(*args)
    await ledger.record_feedback("r", 1, "l" * 200, "c" * 4_000, "key_1")
    await ledger.aclose()
    with sqlite3.connect(tmp_path / "l.sqlite3") as conn:
        assert conn.execute("SELECT score, length(label), length(comment), key_id FROM feedback").fetchall() == [
            (1.0, 200, 4_000, "key_1")]

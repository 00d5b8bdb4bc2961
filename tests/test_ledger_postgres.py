"""The PostgreSQL ledger against the real server (127.0.0.1:5432, trust auth, database ``test``)."""

from __future__ import annotations

import asyncio
import time

from podium.ledger import CallRow, RequestEnd, RequestStart
from podium.ledger.schema import LATEST


async def test_rows_migrations_and_concurrency(dsn: str):
    from podium.ledger.postgres import PostgresLedger

    ledger = PostgresLedger(dsn)

    async def one(i: int) -> None:
        rid = f"r{i}"
        await ledger.start_request(RequestStart(rid, time.time(), "m"))
        for _ in range(2):
            await ledger.record_call(CallRow(rid, time.time(), "p", "m", "ok", 1.0, 10, 5, cost=0.001))
        await ledger.finish_request(RequestEnd(rid, time.time(), "ok", "m", "p", 20, 10, 0.002, 2.0, 2, retries=1))

    await asyncio.gather(*(one(i) for i in range(20)))
    await ledger.record_feedback("r1", 1.0, "good", None)
    await ledger.aclose()
    again = PostgresLedger(dsn)  # a second instance: migrations are not re-applied
    await again.start_request(RequestStart("late", time.time(), "m"))
    await again.aclose()
    import psycopg

    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 40
        assert conn.execute("SELECT COUNT(*), SUM(retries) FROM requests WHERE status = 'ok'").fetchone() == (20, 20)
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        assert versions == list(range(1, LATEST + 1))
        assert conn.execute("SELECT label FROM feedback").fetchall() == [("good",)]

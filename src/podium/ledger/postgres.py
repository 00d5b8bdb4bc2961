"""The PostgreSQL ledger: one ledger for several gateway instances.

Same tables and migrations as SQLite (``schema.MIGRATIONS``); migrations run under an advisory
lock so two instances starting together do not race. Every write is its own short transaction
from a small async pool: ``await`` returns once the row is committed, as with SQLite.
"""

from __future__ import annotations

import time
from typing import Any

from psycopg_pool import AsyncConnectionPool

from podium.ledger.rows import CallRow, RequestEnd, RequestStart
from podium.ledger.schema import MIGRATIONS

_LOCK_ID = 0x70_6F_64_69_75_6D  # "podium"


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class PostgresLedger:
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 8) -> None:
        self.dsn = dsn
        self._pool = AsyncConnectionPool(dsn, min_size=min_size, max_size=max_size, open=False)
        self._seq: dict[str, int] = {}
        self._ready = False

    async def _open(self) -> None:
        if self._ready:
            return
        await self._pool.open()
        async with self._pool.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
            try:
                await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = await (await conn.execute("SELECT MAX(version) FROM schema_version")).fetchone()
                current = (row[0] if row else None) or 0
                for version, script in MIGRATIONS:
                    if version > current:
                        for statement in (s.strip() for s in script.split(";")):
                            if statement:
                                await conn.execute(statement.replace("ADD COLUMN ", "ADD COLUMN IF NOT EXISTS "))
                        await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
                await conn.commit()
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
                await conn.commit()
        self._ready = True

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        await self._open()
        async with self._pool.connection() as conn:
            await conn.execute(_pg(sql), params)

    async def start_request(self, row: RequestStart) -> None:
        await self._write(
            "INSERT INTO requests (request_id, started_at, requested_model, task_type, strategy, user_id, tags,"
            " status) VALUES (?, ?, ?, ?, ?, ?, ?, 'running')",
            (row.request_id, row.started_at, row.requested_model, row.task_type, row.strategy, row.user,
             ",".join(row.tags)))

    async def record_call(self, row: CallRow) -> None:
        seq = self._seq[row.request_id] = self._seq.get(row.request_id, 0) + 1
        await self._write(
            "INSERT INTO calls (request_id, started_at, provider, model, status, latency_ms, input_tokens,"
            " output_tokens, cached_input_tokens, reasoning_tokens, cost, error, step, seq)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.request_id, row.started_at, row.provider, row.model, row.status, row.latency_ms, row.input_tokens,
             row.output_tokens, row.cached_input_tokens, row.reasoning_tokens, row.cost, row.error, row.step, seq))

    async def finish_request(self, row: RequestEnd) -> None:
        self._seq.pop(row.request_id, None)
        await self._write(
            "UPDATE requests SET finished_at = ?, status = ?, model = ?, provider = ?, input_tokens = ?,"
            " output_tokens = ?, cost = ?, latency_ms = ?, calls = ?, error = ?, rationale = ?, retries = ?,"
            " fallbacks = ?, deployment = ?, notes = ? WHERE request_id = ?",
            (row.finished_at, row.status, row.model, row.provider, row.input_tokens, row.output_tokens, row.cost,
             row.latency_ms, row.calls, row.error, row.rationale, row.retries, row.fallbacks, row.deployment,
             row.notes, row.request_id))

    async def record_feedback(self, request_id: str, score: float | None, label: str | None,
                              comment: str | None) -> None:
        await self._write("INSERT INTO feedback (request_id, created_at, score, label, comment) VALUES (?, ?, ?, ?, ?)",
                          (request_id, time.time(), score, label, comment))

    async def aclose(self) -> None:
        if self._ready:
            await self._pool.close()

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
from podium.ledger.schema import FINISH_REQUEST, INSERT_CALL, INSERT_FEEDBACK, INSERT_REQUEST, MIGRATIONS

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
        await self._write(INSERT_REQUEST, row.values())

    async def record_call(self, row: CallRow) -> None:
        seq = self._seq[row.request_id] = self._seq.get(row.request_id, 0) + 1
        await self._write(INSERT_CALL, row.values(seq))

    async def finish_request(self, row: RequestEnd) -> None:
        self._seq.pop(row.request_id, None)
        await self._write(FINISH_REQUEST, row.values())

    async def record_feedback(self, request_id: str, score: float | None, label: str | None,
                              comment: str | None) -> None:
        """Feedback arrives later, keyed by the request id the response carried (TensorZero's shape)."""
        await self._write(INSERT_FEEDBACK, (request_id, time.time(), score, label, comment))

    async def aclose(self) -> None:
        if self._ready:
            await self._pool.close()

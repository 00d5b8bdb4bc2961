"""The PostgreSQL ledger: one ledger for several gateway instances.

Same tables and migrations as SQLite (``schema.MIGRATIONS``); migrations run under an advisory
lock so two instances starting together do not race.

Writes follow the SQLite ledger's contract: a request's start and call rows are not waited for —
they collect in a buffer and are committed with the next awaited write (its finish row) or after
``FLUSH_AFTER`` seconds — and ``finish_request`` returns once everything up to its row is
committed. Commits happen one after the other under a lock, each taking everything buffered so far
(group commit): rows land in order, so a finish never overtakes its own start, and a one-call
request costs one round trip and one transaction instead of three.
"""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg_pool import AsyncConnectionPool

from podium.ledger.schema import MIGRATIONS
from podium.ledger.writes import SqlLedger

_LOCK_ID = 0x70_6F_64_69_75_6D  # "podium"
FLUSH_AFTER = 0.02
_Job = tuple[str, tuple[Any, ...], asyncio.Future[None] | None]


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class PostgresLedger(SqlLedger):
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 8) -> None:
        super().__init__()
        self.dsn = dsn
        self._pool = AsyncConnectionPool(dsn, min_size=min_size, max_size=max_size, open=False)
        self._ready = False
        self._buffer: list[_Job] = []
        self._commit_lock: asyncio.Lock | None = None  # made in the loop that first writes
        self._timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[None]] = set()

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

    async def _flush(self) -> None:
        """Commit everything buffered so far in one transaction, after any commit still running."""
        if self._commit_lock is None:
            self._commit_lock = asyncio.Lock()
        async with self._commit_lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            batch, self._buffer = self._buffer, []
            if not batch:
                return
            error: BaseException | None = None
            try:
                await self._open()
                async with self._pool.connection() as conn, conn.transaction(), conn.pipeline():
                    for sql, params, _ in batch:  # pipelined: one round trip for the whole batch, not one each
                        await conn.execute(_pg(sql), params)
            except BaseException as exc:  # every waiter of the batch hears of it
                error = exc
            for _, _, future in batch:
                if future is not None and not future.done():
                    future.set_exception(error) if error is not None else future.set_result(None)
            if error is not None and not any(future is not None for _, _, future in batch):
                self._deferred_error = error  # buffered rows failed: the next awaited write reports it

    def _enqueue(self, sql: str, params: tuple[Any, ...]) -> None:
        self._buffer.append((sql, params, None))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_AFTER, self._flush_later)

    def _flush_later(self) -> None:
        self._timer = None
        task = asyncio.ensure_future(self._flush())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer.append((sql, params, future))
        await self._flush()
        await future
        self._raise_deferred()

    async def aclose(self) -> None:
        if self._buffer:
            await self._flush()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        if self._ready:
            await self._pool.close()

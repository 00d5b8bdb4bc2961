"""The PostgreSQL ledger: one ledger for several gateway instances.

Same tables and migrations as SQLite (``schema.MIGRATIONS``); migrations run under an advisory
lock so two instances starting together do not race.

Writes follow the SQLite ledger's contract: a request's start and call rows are not waited for —
they collect in a buffer and are committed with the next awaited write (its finish row), after
``FLUSH_AFTER`` seconds, or by ``flush()`` — and ``finish_request`` returns once everything up to
its row is committed. One committer task commits the buffer one batch after the other, each taking
everything buffered so far in one pipelined transaction (group commit): rows land in order, so a
finish never overtakes its own start, and a one-call request costs one round trip and one
transaction instead of three. Callers only wait for their row's future, so a caller that is
cancelled (a client gone) cancels its wait, never the commit that other requests' rows share.

A batch that fails is retried row by row on one connection (``writes``), except when no connection
can be had (the server is down or the pool exhausted): that is no row's fault, and every row of the
batch hears of it without a second wait.
"""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg_pool import AsyncConnectionPool, PoolTimeout

from podium.ledger.schema import MIGRATIONS, REQUEST_OWNER
from podium.ledger.writes import SqlLedger

_LOCK_ID = 0x70_6F_64_69_75_6D  # "podium"
FLUSH_AFTER = 0.02
_Job = tuple[str, tuple[Any, ...], asyncio.Future[None] | None, str | None]  # statement, values, waiter, request id


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


class PostgresLedger(SqlLedger):
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 8) -> None:
        super().__init__()
        self.dsn = dsn
        # Autocommit: a batch of one row (a flush right after a start row) is one statement and one
        # round trip, without BEGIN and COMMIT around it; larger batches open a transaction.
        self._pool = AsyncConnectionPool(dsn, min_size=min_size, max_size=max_size, open=False,
                                         kwargs={"autocommit": True})
        self._ready = False
        self._open_lock = asyncio.Lock()
        self._buffer: list[_Job] = []
        self._due = False  # an awaited write, a flush or the timer wants the buffer committed
        self._committer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def _open(self) -> None:
        if self._ready:
            return
        async with self._open_lock:
            if not self._ready:
                await self._migrate()
                self._ready = True

    async def _migrate(self) -> None:
        await self._pool.open()
        async with self._pool.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
            try:
                async with conn.transaction():  # all migrations or none
                    await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                    row = await (await conn.execute("SELECT MAX(version) FROM schema_version")).fetchone()
                    current = (row[0] if row else None) or 0
                    for version, script in MIGRATIONS:
                        if version > current:
                            for statement in (s.strip() for s in script.split(";")):
                                if statement:
                                    await conn.execute(statement.replace("ADD COLUMN ", "ADD COLUMN IF NOT EXISTS "))
                            await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))

    def _kick(self) -> None:
        """Have the buffer committed now: by the committer task, started if it is not running."""
        self._due = True
        if self._committer is None or self._committer.done():
            self._committer = asyncio.get_running_loop().create_task(self._commit_loop())

    def _on_timer(self) -> None:
        self._timer = None
        self._kick()

    async def _commit_loop(self) -> None:
        while self._due:
            self._due = False
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            batch, self._buffer = self._buffer, []
            if batch:
                await self._commit_batch(batch)

    async def _commit_batch(self, batch: list[_Job]) -> None:
        errors: list[BaseException | None] | None = None
        try:
            rows = [(sql, params) for sql, params, _, _ in batch if sql]  # not the flush markers
            if rows:
                try:
                    await self._open()
                    async with self._pool.connection() as conn:
                        if len(rows) == 1:  # one statement is its own transaction (autocommit)
                            await conn.execute(_pg(rows[0][0]), rows[0][1])
                        else:
                            async with conn.transaction(), conn.pipeline():  # one round trip for the batch
                                for sql, params in rows:
                                    await conn.execute(_pg(sql), params)
                except Exception as exc:
                    errors = await self._one_by_one(batch, exc)
        except BaseException as exc:  # cancelled (the loop is closing): the batch's fate is unknown
            for _, _, future, request_id in batch:
                if future is not None:
                    future.cancel()
                elif request_id is not None:
                    self._row_failed(request_id, exc, buffered=True)
            raise
        for (_, _, future, request_id), error in zip(batch, errors or [None] * len(batch), strict=True):
            if error is not None:
                self._row_failed(request_id, error, buffered=future is None)
            if future is not None and not future.done():
                future.set_exception(error) if error is not None else future.set_result(None)

    async def _one_by_one(self, batch: list[_Job], first: Exception) -> list[BaseException | None]:
        """Each row of a failed batch in its own transaction, on one connection (each row's error).

        Not when no connection can be had (waiting for one per row would only multiply the wait),
        nor for a single row (its error is already its own): then every row gets ``first``."""
        errors: list[BaseException | None] = []
        rest: BaseException | None = None  # the error of every row not tried yet
        if not self._ready or isinstance(first, PoolTimeout) or sum(1 for job in batch if job[0]) == 1:
            rest = first
        else:
            try:
                async with self._pool.connection() as conn:
                    for sql, params, _, _ in batch:
                        error = rest if sql else None
                        if sql and rest is None:
                            try:
                                await conn.execute(_pg(sql), params)  # autocommit: a transaction of its own
                            except Exception as exc:
                                error = exc
                                rest = exc if conn.broken or conn.closed else None
                        errors.append(error)
            except Exception as exc:
                rest = exc
        return errors + [rest if sql else None for sql, _, _, _ in batch[len(errors):]]

    def _enqueue(self, sql: str, params: tuple[Any, ...], request_id: str) -> None:
        self._buffer.append((sql, params, None, request_id))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_AFTER, self._on_timer)

    async def _write(self, sql: str, params: tuple[Any, ...], request_id: str | None) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer.append((sql, params, future, request_id))
        self._kick()
        await future

    async def _commit_buffered(self) -> None:
        if not self._buffer and (self._committer is None or self._committer.done()):
            return  # nothing buffered, nothing being committed: no task switch at all
        await self._write("", (), None)  # a marker after everything so far: done when they are

    async def _read_owner(self, request_id: str) -> tuple[bool, str | None]:
        await self._open()
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_pg(REQUEST_OWNER), (request_id,))).fetchone()
        return (False, None) if row is None else (True, row[0])

    async def aclose(self) -> None:
        await self._commit_buffered()
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._ready:
            await self._pool.close()

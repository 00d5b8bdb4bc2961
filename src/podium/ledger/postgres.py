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

A server that cannot be reached fails fast: the first connection is waited for ``OPEN_TIMEOUT``
seconds at most (each attempt ``CONNECT_TIMEOUT``), then ``StoreUnavailableError`` names the
server's host:port and the reason (never the password); the pool keeps trying in the background,
so the next write after the server is back succeeds.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from podium.errors import ConfigError, StoreUnavailableError, redact
from podium.ledger.schema import MIGRATIONS
from podium.ledger.writes import SqlLedger

_LOCK_ID = 0x70_6F_64_69_75_6D  # "podium"
FLUSH_AFTER = 0.02
OPEN_TIMEOUT = 3.0  # seconds the first connection may take before the server counts as unreachable
CONNECT_TIMEOUT = 3  # libpq's connect_timeout (whole seconds, 2 at least), unless the DSN or PGCONNECT_TIMEOUT sets one
_Job = tuple[str, tuple[Any, ...], asyncio.Future[None] | None, str | None]  # statement, values, waiter, request id


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


def _params(dsn: str) -> dict[str, Any]:
    """The DSN's parameters; a DSN that is not one is a config error (without the DSN: it may hold a password)."""
    try:
        return conninfo_to_dict(dsn)
    except psycopg.Error:
        raise ConfigError("not a valid PostgreSQL connection string; write it as "
                          "postgresql://user:password@host:5432/dbname", key_path="ledger.postgres_dsn") from None


def connect_kwargs(dsn: str) -> dict[str, Any]:
    """A connect timeout unless the DSN or the environment sets one: a host that never answers fails in seconds."""
    if "connect_timeout" in _params(dsn) or os.environ.get("PGCONNECT_TIMEOUT"):
        return {}
    return {"connect_timeout": CONNECT_TIMEOUT}


def where(dsn: str) -> str:
    """The DSN's host:port, for messages: never the user or the password."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "(an invalid DSN)"
    host = params.get("host") or params.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    return f"{host}:{port}"


def unreachable(dsn: str, what: str, error: BaseException | None = None) -> StoreUnavailableError:
    """The one line that says the PostgreSQL ``what`` (ledger, key store) cannot be had: where, why
    (psycopg's reason, the password taken out) and what to do."""
    try:
        password = str(conninfo_to_dict(dsn).get("password") or "") or None
    except psycopg.Error:
        password = None
    reason = f"no connection within {OPEN_TIMEOUT:g} s"
    if error is not None:
        lines = [line for line in str(error).splitlines() if line.strip()]
        line = next((line for line in reversed(lines) if "failed: " in line), lines[0] if lines else "")
        text = " ".join(line.rsplit("failed: ", 1)[-1].replace("FATAL:", "").split())
        if text:
            reason = redact(text[:1].lower() + text[1:200], password, dsn)
    credentials = any(word in reason for word in ("password", "authentication", "does not exist", "permission"))
    fix = ("check the user, password and database in ledger.postgres_dsn" if credentials
           else "start PostgreSQL there or point ledger.postgres_dsn at a running server")
    return StoreUnavailableError(f"cannot connect to the PostgreSQL {what} at {where(dsn)} ({reason}): {fix}")


async def _why(dsn: str) -> BaseException | None:
    """Why a connection cannot be made (the pool does not say): one attempt of our own."""
    try:
        conn = await psycopg.AsyncConnection.connect(dsn, **connect_kwargs(dsn))
    except Exception as exc:
        return exc
    await conn.close()
    return None


def new_pool(dsn: str, **options: Any) -> AsyncConnectionPool[Any]:
    """A pool, not opened, whose connection attempts time out (``connect_kwargs``)."""
    kwargs = {**connect_kwargs(dsn), **options.pop("kwargs", {})}
    return AsyncConnectionPool(dsn, open=False, kwargs=kwargs, **options)


async def open_pool(pool: AsyncConnectionPool[Any], dsn: str, what: str) -> None:
    """Open ``pool`` and wait ``OPEN_TIMEOUT`` seconds at most for its first connection; else raise
    ``StoreUnavailableError`` (the pool stays open and keeps trying, for the next call)."""
    await pool.open()
    try:
        conn = await pool.getconn(timeout=OPEN_TIMEOUT)
    except PoolTimeout:
        raise unreachable(dsn, what, await _why(dsn)) from None
    await pool.putconn(conn)


class PostgresLedger(SqlLedger):
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 8) -> None:
        super().__init__()
        self.dsn = dsn
        # Autocommit: a batch of one row (a flush right after a start row) is one statement and one
        # round trip, without BEGIN and COMMIT around it; larger batches open a transaction.
        self._pool = new_pool(dsn, min_size=min_size, max_size=max_size, kwargs={"autocommit": True})
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
        await open_pool(self._pool, self.dsn, "ledger")
        async with self._pool.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
            try:
                async with conn.transaction():  # all migrations or none
                    await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                    rows = await (await conn.execute("SELECT version FROM schema_version")).fetchall()
                    applied = {int(v) for (v,) in rows}  # a set: migrations may land out of order (see sqlite)
                    for version, script in MIGRATIONS:
                        if version not in applied:
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

    async def _read_row(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        await self._open()
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_pg(sql), params)).fetchone()
        return tuple(row) if row is not None else None

    async def aclose(self) -> None:
        await self._commit_buffered()
        if self._committer is not None:
            await asyncio.gather(self._committer, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pool.closed:  # opened, even if it never connected
            await self._pool.close()

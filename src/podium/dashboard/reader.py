"""Reading the ledger for the dashboard without ever blocking the event loop.

Every page's statements run together in one job on a thread pool of the dashboard's own (two
threads: a burst of page loads queues there, and never takes the threads the gateway's own ledger
reads and key writes use). SQLite reads through a read-only connection per thread (WAL: readers
never block the gateway's writer, nor it them; the ``sqlite3`` module releases the GIL while a
statement runs); PostgreSQL through a small pool of autocommit connections with a statement timeout.

The schema is looked up, not assumed (``Schema``), and looked up again every ``SCHEMA_SECONDS``: a
gateway started later may have migrated the ledger since. A SQLite ledger from before a migration that
added columns is read through temporary views (on the reader's own connection; the file is never
written) that show each missing column as its default: the queries name columns freely, and a viewer
must open an old copy without migrating it. ``Schema`` still describes the file as it is, so the
pages leave out what it does not record.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

from podium.dashboard.queries import Dialect, Schema
from podium.errors import PodiumError

T = TypeVar("T")
Run = Callable[[str, tuple[Any, ...]], Sequence[Sequence[Any]]]
Job = Callable[[Run, Schema], T]
TABLES = ("requests", "calls", "feedback", "request_embeddings", "shadow_trials", "virtual_keys")
SCHEMA_SECONDS = 10.0
THREADS = 2
STATEMENT_TIMEOUT_MS = 15_000


@cache
def latest_tables() -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Each ledger table at the latest migration: its CREATE statement, and its columns with the SQL of
    their defaults."""
    from podium.ledger.schema import MIGRATIONS

    conn = sqlite3.connect(":memory:")
    try:
        for _, script in MIGRATIONS:
            conn.executescript(script)
        found = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
        tables = [(str(name), str(sql)) for name, sql in found]
        return {t: (sql, [(str(r[1]), str(r[4]) if r[4] is not None else "NULL")
                          for r in conn.execute(f"PRAGMA table_info({t})")]) for t, sql in tables}
    finally:
        conn.close()


def present_as_latest(conn: sqlite3.Connection) -> None:
    """Make an older ledger look like the latest to this connection's queries, without writing the file:
    a table an older migration left without some columns is shadowed by a temporary view (temporary
    objects come first in name lookup) adding them as their defaults, and a table it did not have yet is
    an empty temporary one. A plain view over one table is flattened by SQLite's planner: the table's
    indexes still serve the queries."""
    for table, (create, columns) in latest_tables().items():
        found = {str(r[1]) for r in conn.execute(f"PRAGMA main.table_info({table})")}
        missing = [(name, default) for name, default in columns if name not in found]
        if not found:
            conn.execute(create.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
        elif missing:
            added = ", ".join(f"{default} AS {name}" for name, default in missing)
            conn.execute(f"CREATE TEMP VIEW {table} AS SELECT *, {added} FROM main.{table}")


class LedgerReader(Protocol):
    dialect: Dialect

    async def read(self, job: Job[T]) -> T:
        """Run ``job(run, schema)`` off the event loop; ``run(sql, params)`` executes one statement."""
        ...

    def describe(self) -> str: ...

    async def aclose(self) -> None: ...


class _Pooled:
    """The thread pool and the schema cache every reader shares."""

    dialect: Dialect

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="podium-dashboard")
        self._schema: tuple[float, Schema] | None = None

    def _schema_now(self, run: Run) -> Schema:
        cached = self._schema
        if cached is not None and time.monotonic() - cached[0] < SCHEMA_SECONDS:
            return cached[1]
        schema = self._inspect(run)
        self._schema = (time.monotonic(), schema)
        return schema

    def _inspect(self, run: Run) -> Schema:
        raise NotImplementedError

    def _with_connection(self, job: Callable[[Run], T]) -> T:
        raise NotImplementedError

    async def read(self, job: Job[T]) -> T:
        def work() -> T:
            return self._with_connection(lambda run: job(run, self._schema_now(run)))

        return await asyncio.get_running_loop().run_in_executor(self._pool, work)

    def _shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class SQLiteReader(_Pooled):
    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"SQLite {self.path}"

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if not self.path.exists():
                raise PodiumError(f"no ledger at {self.path}")
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False,
                                   timeout=30)
            present_as_latest(conn)
            conn.execute("PRAGMA query_only = ON")
            try:
                conn.execute("SELECT ln(2)")
            except sqlite3.OperationalError:  # a library built without math functions
                conn.create_function("ln", 1, lambda x: math.log(x) if x and x > 0 else None, deterministic=True)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _with_connection(self, job: Callable[[Run], T]) -> T:
        conn = self._connection()
        return job(lambda sql, params: conn.execute(sql, params).fetchall())

    def _inspect(self, run: Run) -> Schema:
        columns = {}
        for table in TABLES:  # the file's own tables (``main``), not ``present_as_latest``'s stand-ins: what
            # the schema says is missing stays missing on the pages (no TTFT column for an old ledger, say)
            found = frozenset(str(row[1]) for row in run(f"PRAGMA main.table_info({table})", ()))
            if found:
                columns[table] = found
        return Schema(columns)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._shutdown)
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()


class PostgresReader(_Pooled):
    dialect: Dialect = "postgres"

    def __init__(self, dsn: str) -> None:
        super().__init__()
        from psycopg_pool import ConnectionPool

        from podium.ledger.postgres import connect_kwargs

        self.dsn = dsn

        def configure(conn: Any) -> None:
            conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")

        self._connections = ConnectionPool(dsn, min_size=0, max_size=THREADS, open=False, configure=configure,
                                           kwargs={"autocommit": True, **connect_kwargs(dsn)})
        self._opened = False
        self._open_lock = threading.Lock()

    def describe(self) -> str:
        from podium.ledger.postgres import where

        return f"PostgreSQL {where(self.dsn)}"

    def _with_connection(self, job: Callable[[Run], T]) -> T:
        import psycopg
        from psycopg_pool import PoolTimeout

        from podium.ledger.postgres import OPEN_TIMEOUT, unreachable

        with self._open_lock:
            if not self._opened:
                self._connections.open()
                self._opened = True
        try:
            with self._connections.connection(timeout=OPEN_TIMEOUT) as conn:
                return job(lambda sql, params: conn.execute(sql.replace("?", "%s"), params).fetchall())
        except PoolTimeout:
            raise unreachable(self.dsn, "ledger") from None
        except psycopg.OperationalError as exc:
            raise unreachable(self.dsn, "ledger", exc) from None

    def _inspect(self, run: Run) -> Schema:
        rows = run("SELECT table_name, column_name FROM information_schema.columns"
                   " WHERE table_schema = current_schema() AND table_name = ANY(?)", (list(TABLES),))
        columns: dict[str, set[str]] = {}
        for table, column in rows:
            columns.setdefault(str(table), set()).add(str(column))
        return Schema({table: frozenset(found) for table, found in columns.items()})

    async def aclose(self) -> None:
        def close() -> None:
            self._shutdown()
            self._connections.close()

        await asyncio.to_thread(close)


def open_reader(*, path: Path | None = None, dsn: str | None = None) -> LedgerReader:
    if dsn:
        return PostgresReader(dsn)
    if path is None:
        raise PodiumError("the dashboard needs a ledger: a SQLite file or a PostgreSQL DSN")
    return SQLiteReader(path)

"""The SQLite ledger: durable rows without blocking the event loop.

All writes go to one writer thread through a queue. The thread takes everything waiting, writes
it in one transaction and commits (group commit: many concurrent requests share one fsync), then
wakes the coroutines that asked. The loop never waits on SQLite; reads (``request_owner``) use a
connection of their own in a worker thread.

Durability: ``finish_request`` returns once its row is committed, and everything is committed in
order, so by then the request's start row and every call row are committed too: an answered
request is always whole in the ledger. The start row and call rows are not waited for: they collect
in a buffer on the event loop and go to the writer with the next awaited write or after
``FLUSH_AFTER`` seconds, whichever comes first. So a one-call request costs one hand-off to the
writer thread and one transaction instead of three (on a gateway pinned to one core each hand-off
cost ~0.3 ms of CPU and the awaited start row 0.9 ms of latency; benchmarks/gateway). A process
killed within those ``FLUSH_AFTER`` seconds loses the buffered rows, so ``flush()`` commits them
on demand: the client calls it before a request's first upstream call, and a request that reached
a provider is always in the ledger (benchmarks/ledger_flush.py measures what that costs).

A batch that fails is retried row by row (``writes``), except when the file is locked by another
process past the 30 s timeout: that is no row's fault, and every row of the batch hears of it.

The fast path: when the writer thread has nothing in hand, the awaited writes (flushes, finish
rows) of one turn of the event loop commit together on the loop's own thread, through a second
connection that never waits — its busy timeout is 0, so a file locked by anyone else sends the
batch to the writer thread as before. A small commit in WAL mode without fsync takes ~25 µs; the
round trip through the thread took ~130 µs of latency and two thread switches
(benchmarks/ledger_flush.py). That connection never
checkpoints (a checkpoint syncs the file): the writer thread does, every ``CHECKPOINT_EVERY``
commits made this way.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any

from podium.ledger.schema import LATEST, MIGRATIONS
from podium.ledger.writes import SqlLedger

_Waiter = asyncio.Future[None] | threading.Event | None
_Job = tuple[str, tuple[Any, ...], _Waiter, str | None]  # statement, values, who waits, request id
_STOP: _Job = ("", (), None, None)
FLUSH_AFTER = 0.02  # seconds a start or call row may wait in the loop-side buffer
CHECKPOINT_EVERY = 256  # inline commits between two checkpoints of the WAL by the writer thread
_CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"
_BUSY, _LOCKED = 5, 6  # SQLite result codes: another connection holds the lock


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _applied(conn: sqlite3.Connection) -> set[int]:
    """The migrations applied so far. A set, not the highest: migrations written in parallel may land out
    of order (6 before 5), and a file migrated to 6 must still get 5 when it arrives."""
    return {int(v) for (v,) in conn.execute("SELECT version FROM schema_version")}


def connect(path: Path) -> sqlite3.Connection:
    """A connection with the ledger's schema applied. Each migration runs in one transaction with
    its version row, under the write lock, after reading the version again: a process killed
    mid-migration leaves the file as it was, and two processes opening an old file together
    migrate it once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    conn.commit()
    for version, script in MIGRATIONS:
        if version in _applied(conn):
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version not in _applied(conn):
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return conn


def _busy(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and (error.sqlite_errorcode & 0xFF) in (_BUSY, _LOCKED)


class SQLiteLedger(SqlLedger):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._conn = connect(path)
        self._reader: sqlite3.Connection | None = None  # made by the first read, in a worker thread
        self._reader_lock = threading.Lock()
        self._queue: queue.SimpleQueue[list[_Job]] = queue.SimpleQueue()
        self._buffer: list[_Job] = []  # touched only by the event loop's thread
        self._flush_timer: asyncio.TimerHandle | None = None
        self._submitted = 0  # batches handed to the writer …
        self._done = 0  # … and written by it (committed, or failed and reported): equal when idle
        self._inline = sqlite3.connect(path, check_same_thread=False, timeout=0, isolation_level=None)
        self._inline.execute("PRAGMA synchronous=NORMAL")
        self._inline.execute("PRAGMA wal_autocheckpoint=0")
        self._inline_commits = 0
        self._commit_soon: asyncio.Handle | None = None
        self._thread = threading.Thread(target=self._writer, name="podium-ledger", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def schema_version(self) -> int:
        return LATEST

    def _writer(self) -> None:
        while True:
            batches = [self._queue.get()]
            while True:
                try:
                    batches.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batch = [job for jobs in batches for job in jobs]
            if any(job[0] is _CHECKPOINT for job in batch):
                batch = [job for job in batch if job[0] is not _CHECKPOINT]
                with contextlib.suppress(sqlite3.Error):  # busy readers: the next one will do
                    self._conn.execute(_CHECKPOINT)
            errors = self._commit(batch)
            for (_, _, waiter, request_id), error in zip(batch, errors or [None] * len(batch), strict=True):
                if error is not None:
                    self._row_failed(request_id, error, buffered=waiter is None)
                if isinstance(waiter, threading.Event):
                    waiter.set()
                elif waiter is not None:
                    self._resolve(waiter, error)
            self._done += len(batches)
            if any(job is _STOP for job in batch):
                self._conn.close()
                return

    def _commit(self, batch: list[_Job]) -> list[BaseException | None] | None:
        """Commit the batch in one transaction (``None``); if that fails, each row in its own
        (each row's error, ``None`` for rows stored)."""
        try:
            with self._conn:
                for sql, params, _, _ in batch:
                    if sql:
                        self._conn.execute(sql, params)
        except BaseException as exc:
            systemic: BaseException | None = exc if _busy(exc) else None
        else:
            return None
        errors: list[BaseException | None] = []
        for sql, params, _, _ in batch:
            error = systemic if sql else None
            if sql and systemic is None:
                try:
                    with self._conn:
                        self._conn.execute(sql, params)
                except BaseException as exc:
                    error = exc
                    systemic = exc if _busy(exc) else None  # locked again: the rest would wait 30 s each
            errors.append(error)
        return errors

    @staticmethod
    def _resolve(future: asyncio.Future[None], error: BaseException | None) -> None:
        def settle() -> None:
            if not future.done():
                future.set_exception(error) if error else future.set_result(None)
        with contextlib.suppress(RuntimeError):  # the caller's loop has closed; the row is written all the same
            future.get_loop().call_soon_threadsafe(settle)

    def _submit(self, job: _Job | None = None) -> None:
        """Hand the buffer (and ``job``) to the writer in one piece: one wake-up, one transaction."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._commit_soon is not None:
            self._commit_soon.cancel()
            self._commit_soon = None
        batch, self._buffer = self._buffer, []
        if job is not None:
            batch.append(job)
        if batch:
            self._submitted += 1
            self._queue.put(batch)

    def _commit_now(self) -> None:
        """Commit everything buffered, on this thread if the writer has nothing in hand and the file is
        free at once, else through the writer; then wake whoever waits. Scheduled once per loop turn,
        so the awaited writes of every request that turn share one commit (group commit here too)."""
        self._commit_soon = None
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if not self._buffer:
            return
        if self._closed or self._done != self._submitted or not self._commit_inline():
            self._submit()  # earlier rows are on their way (order first), or the file is busy or failing
            return
        batch, self._buffer = self._buffer, []
        for _, _, waiter, _ in batch:
            if isinstance(waiter, asyncio.Future) and not waiter.done():
                waiter.set_result(None)
        self._inline_commits += 1
        if self._inline_commits % CHECKPOINT_EVERY == 0:
            self._submit((_CHECKPOINT, (), None, None))

    def _commit_inline(self) -> bool:
        """The buffer in one transaction on the loop's connection; False (nothing written) when the
        lock is held elsewhere or a row fails — the writer then retries row by row and says which."""
        conn = self._inline
        try:
            conn.execute("BEGIN IMMEDIATE")  # busy timeout 0: a lock held elsewhere fails here, now
        except sqlite3.Error:
            return False
        try:
            for sql, params, _, _ in self._buffer:
                if sql:
                    conn.execute(sql, params)
            conn.execute("COMMIT")
        except sqlite3.Error:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            return False
        return True

    async def _write(self, sql: str, params: tuple[Any, ...], request_id: str | None) -> None:
        if self._closed:
            raise RuntimeError("the ledger is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._buffer.append((sql, params, future, request_id))
        if self._commit_soon is None:
            self._commit_soon = loop.call_soon(self._commit_now)
        await future

    def _enqueue(self, sql: str, params: tuple[Any, ...], request_id: str) -> None:
        """Buffer a write without waiting for it; it is committed before any later awaited write."""
        if self._closed:
            raise RuntimeError("the ledger is closed")
        self._buffer.append((sql, params, None, request_id))
        if self._flush_timer is None:
            try:
                self._flush_timer = asyncio.get_running_loop().call_later(FLUSH_AFTER, self._commit_now)
            except RuntimeError:  # no event loop (a synchronous caller): hand it over now
                self._submit()

    async def _commit_buffered(self) -> None:
        if not self._buffer and self._done == self._submitted:
            return  # nothing buffered, nothing on its way: no hand-off at all
        if self._closed:  # closing: the writer commits everything before it stops
            await asyncio.to_thread(self._thread.join)
            return
        await self._write("", (), None)  # an empty job after everything so far: done when they are

    def _read_row_now(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._reader_lock:
            if self._closed:
                raise RuntimeError("the ledger is closed")
            if self._reader is None:
                self._reader = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
                self._reader.execute("PRAGMA query_only = ON")
            row = self._reader.execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    async def _read_row(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        return await asyncio.to_thread(self._read_row_now, sql, params)

    def drain(self, timeout: float = 10.0) -> bool:
        """Block until everything queued so far is committed (from any thread, loop or not)."""
        done = threading.Event()
        self._submit(("", (), done, None))
        return done.wait(timeout)

    def close(self) -> None:
        """Flush everything queued, then stop the writer. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._submit(_STOP)
        self._thread.join()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None
        self._inline.close()

    async def aclose(self) -> None:
        self._submit()  # the buffer belongs to the loop's thread: hand it over from here
        await asyncio.to_thread(self.close)

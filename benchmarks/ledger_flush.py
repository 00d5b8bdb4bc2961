"""What ``flush()`` costs: the client flushes a request's buffered start row right before its first
upstream call, so a request that reached a provider is in the ledger even if the gateway is killed.

One request at a time, for SQLite (a temporary file) and PostgreSQL (a temporary schema):

1. one flush of one buffered start row: wall µs (median, p90, p99) and CPU µs of the whole
   process (the SQLite writer thread included: on a gateway pinned to one core that is the cost);
2. a flush with nothing buffered (the no-op the client pays when the rows are already committed);
3. a whole one-call request (start, call, finish) without and with the flush: what the flush adds;
4. the row checks: µs to check a start, a call and a finish row.

    python benchmarks/ledger_flush.py [--n 2000] [--dsn "host=127.0.0.1 port=5432 dbname=test user=postgres"]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import timeit
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from podium.ledger import CallRow, RequestEnd, RequestStart, SQLiteLedger
from podium.ledger.writes import SqlLedger


def start_row(rid: str) -> RequestStart:
    return RequestStart(rid, time.time(), "gpt-4o-mini", "chat", "single", "user-1", ("a", "b"), "key_1", "team")


def call_row(rid: str) -> CallRow:
    return CallRow(rid, time.time(), "openai", "gpt-4o-mini", "ok", 12.5, 120, 40, cost=0.00012)


def end_row(rid: str) -> RequestEnd:
    return RequestEnd(rid, time.time(), "ok", "gpt-4o-mini", "openai", 120, 40, 0.00012, 13.0, 1,
                      rationale="default model")


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return f"median {statistics.median(ordered):7.1f}  p90 {at(0.9):7.1f}  p99 {at(0.99):7.1f}"


async def timed(n: int, step: Callable[[str], Awaitable[None]],
                before: Callable[[str], Awaitable[None]] | None = None) -> tuple[list[float], float]:
    """Wall µs of each ``step`` (``before`` untimed), and the process's CPU µs per step overall."""
    samples: list[float] = []
    cpu = 0.0
    for _ in range(n):
        rid = f"req_{uuid.uuid4().hex}"
        if before is not None:
            await before(rid)
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        await step(rid)
        samples.append((time.perf_counter() - wall_start) * 1e6)
        cpu += time.process_time() - cpu_start
    return samples, cpu / n * 1e6


async def measure(name: str, ledger: SqlLedger, n: int) -> None:
    async def start(rid: str) -> None:
        await ledger.start_request(start_row(rid))

    async def flush(rid: str) -> None:
        await ledger.flush()

    async def request(rid: str, flushed: bool) -> None:
        await ledger.start_request(start_row(rid))
        if flushed:
            await ledger.flush()
        await ledger.record_call(call_row(rid))
        await ledger.finish_request(end_row(rid))

    async def plain(rid: str) -> None:
        await request(rid, False)

    async def with_flush(rid: str) -> None:
        await request(rid, True)

    await timed(50, with_flush)  # warm up: connections, migrations, caches
    one, one_cpu = await timed(n, flush, before=start)
    idle, idle_cpu = await timed(n, flush)
    without, without_cpu = await timed(n, plain)
    flushed, flushed_cpu = await timed(n, with_flush)
    print(f"\n{name}")
    print(f"  flush of one start row      {summary(one)} µs   cpu {one_cpu:6.1f} µs")
    print(f"  flush, nothing buffered     {summary(idle)} µs   cpu {idle_cpu:6.1f} µs")
    print(f"  request without flush       {summary(without)} µs   cpu {without_cpu:6.1f} µs")
    print(f"  request with flush          {summary(flushed)} µs   cpu {flushed_cpu:6.1f} µs")
    print(f"  the flush adds per request  {statistics.median(flushed) - statistics.median(without):7.1f} µs wall,"
          f" {flushed_cpu - without_cpu:6.1f} µs cpu")
    await ledger.aclose()


@asynccontextmanager
async def postgres(dsn: str) -> AsyncIterator[str | None]:
    try:
        import psycopg

        with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            conn.execute(f"CREATE SCHEMA {schema}")
    except Exception as exc:
        print(f"\nPostgreSQL: skipped ({exc})")
        yield None
        return
    try:
        yield f"{dsn} options=-csearch_path={schema}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def checks() -> None:
    start, call, end = start_row("req_1"), call_row("req_1"), end_row("req_1")
    print("\nrow checks (values(), checked)")
    for label, make in [("start", start.values), ("call", lambda: call.values(1)), ("finish", end.values)]:
        each = min(timeit.repeat(make, number=20_000, repeat=5)) / 20_000 * 1e6
        print(f"  {label:8s} {each:5.2f} µs")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 dbname=test user=postgres")
    args = parser.parse_args()
    print(f"one request at a time, {args.n} each; wall µs per operation, CPU µs of the whole process")
    with tempfile.TemporaryDirectory() as tmp:
        await measure("SQLite (WAL, synchronous=NORMAL)", SQLiteLedger(Path(tmp) / "ledger.sqlite3"), args.n)
    async with postgres(args.dsn) as dsn:
        if dsn is not None:
            from podium.ledger.postgres import PostgresLedger

            await measure("PostgreSQL (127.0.0.1, pipelined batch)", PostgresLedger(dsn), args.n)
    checks()


if __name__ == "__main__":
    asyncio.run(main())

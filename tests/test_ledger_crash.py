"""A ledger killed with SIGKILL mid-stream, without a drain or close, loses no row it promised.

A child process writes requests as the client does — start row, ``flush()`` (before the request
would reach a provider), call rows, and a finish row for most — and prints each request id as soon
as the ``flush`` or ``finish_request`` for it has returned. The parent reads those lines and kills
the child at a random moment, then checks the store: every request printed as started has its row
(running or finished), every request printed as finished is ``ok``, and every finished request has
all its call rows. The kill is repeated a few times on the same file or schema, so the child also
reopens a ledger that was killed under it.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CALLS = 3
KILLS = 4

CHILD = textwrap.dedent(f"""
    import asyncio, random, sys, time
    from pathlib import Path
    from podium.ledger import CallRow, RequestEnd, RequestStart

    CALLS = {CALLS}

    async def main(kind, target, prefix):
        if kind == "sqlite":
            from podium.ledger import SQLiteLedger
            ledger = SQLiteLedger(Path(target))
        else:
            from podium.ledger.postgres import PostgresLedger
            ledger = PostgresLedger(target)

        async def worker(w):
            for n in range(10**9):
                rid = f"{{prefix}}-{{w}}-{{n}}"
                await ledger.start_request(RequestStart(rid, time.time(), "m"))
                await ledger.flush()  # the client's flush before the first upstream call
                print("started", rid, flush=True)
                for _ in range(CALLS):
                    await asyncio.sleep(random.random() / 1000)  # the upstream call
                    await ledger.record_call(CallRow(rid, time.time(), "p", "m", "ok", 1.0, 10, 5, cost=0.001))
                if n % 4 != 3:  # every fourth request is abandoned: never finished
                    await ledger.finish_request(RequestEnd(rid, time.time(), "ok", "m", "p", 10 * CALLS, 5 * CALLS,
                                                           0.001 * CALLS, 3.0, CALLS))
                    print("finished", rid, flush=True)

        await asyncio.gather(*(worker(w) for w in range(4)))

    asyncio.run(main(*sys.argv[1:]))
""")


def crash_repeatedly(kind: str, target: str, query: Callable[[str], list[tuple[Any, ...]]]) -> None:
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    for attempt in range(KILLS):
        lines_before_kill = rng.randint(1, 200)
        child = subprocess.Popen([sys.executable, "-c", CHILD, kind, target, f"a{attempt}"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert child.stdout is not None and child.stderr is not None
        started: list[str] = []
        finished: list[str] = []
        try:
            while len(started) + len(finished) < lines_before_kill:
                line = child.stdout.readline().decode()
                if not line:
                    break
                what, rid = line.split()
                (started if what == "started" else finished).append(rid)
            time.sleep(rng.random() / 200)  # anywhere in the next few milliseconds of writes
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait(10)
        stderr = child.stderr.read().decode()
        context = f"seed {seed}, attempt {attempt}, killed after {lines_before_kill} lines: {stderr}"
        assert child.returncode == -signal.SIGKILL, context
        assert len(started) + len(finished) == lines_before_kill, context
        statuses = dict(query("SELECT request_id, status FROM requests"))
        missing = [rid for rid in started if rid not in statuses]
        assert not missing, f"started requests without a row: {missing}; {context}"
        assert all(statuses[rid] in {"running", "ok"} for rid in started), context
        unfinished = [rid for rid in finished if statuses.get(rid) != "ok"]
        assert not unfinished, f"finished requests not ok: {unfinished}; {context}"
        calls = dict(query("SELECT request_id, COUNT(*) FROM calls GROUP BY request_id"))
        short = [rid for rid, status in statuses.items() if status == "ok" and calls.get(rid) != CALLS]
        assert not short, f"finished requests missing call rows: {short}; {context}"


def test_sqlite_ledger_killed_mid_stream_keeps_every_flushed_row(tmp_path: Path):
    path = tmp_path / "ledger.sqlite3"

    def query(sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    crash_repeatedly("sqlite", str(path), query)


def test_postgres_ledger_killed_mid_stream_keeps_every_flushed_row(dsn: str):
    import psycopg

    def query(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn) as conn:
            return conn.execute(sql).fetchall()

    crash_repeatedly("postgres", dsn, query)

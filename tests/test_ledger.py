import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from podium.catalogue import bundled_catalogue
from podium.client import Podium
from podium.config import load_settings
from podium.ledger import CallRow, RequestEnd, RequestStart, SQLiteLedger, build_report


async def test_concurrent_writes_all_land(tmp_path: Path):
    ledger = SQLiteLedger(tmp_path / "l.sqlite3")

    async def one(i: int) -> None:
        rid = f"r{i}"
        await ledger.start_request(RequestStart(rid, time.time(), "m"))
        for _ in range(3):
            await ledger.record_call(CallRow(rid, time.time(), "p", "m", "ok", 1.0, 10, 5, cost=0.001))
        await ledger.finish_request(RequestEnd(rid, time.time(), "ok", "m", "p", 30, 15, 0.003, 3.0, 3))

    await asyncio.gather(*(one(i) for i in range(50)))
    await ledger.aclose()
    with sqlite3.connect(tmp_path / "l.sqlite3") as conn:
        assert conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 150
        assert conn.execute("SELECT COUNT(*) FROM requests WHERE status = 'ok'").fetchone()[0] == 50
        assert conn.execute("SELECT MAX(seq) FROM calls").fetchone()[0] == 3


async def test_a_locked_database_does_not_block_the_event_loop(tmp_path: Path):
    """While the file is locked by someone else, the write waits in the writer thread, not on the loop."""
    path = tmp_path / "l.sqlite3"
    ledger = SQLiteLedger(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    await ledger.start_request(RequestStart("r1", time.time(), "m"))  # queued: returns at once
    write = asyncio.create_task(ledger.record_feedback("r1", 1.0, None, None))  # awaited: waits for the commit
    loop_turns = 0
    for _ in range(20):
        await asyncio.sleep(0.005)
        loop_turns += 1
    assert loop_turns == 20
    assert not write.done()
    blocker.execute("ROLLBACK")
    blocker.close()
    await asyncio.wait_for(write, 10)
    await ledger.aclose()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT status FROM requests").fetchall() == [("running",)]
        assert conn.execute("SELECT score FROM feedback").fetchall() == [(1.0,)]


def test_rows_survive_a_crash_mid_request(tmp_path: Path):
    """The process is killed (SIGKILL) inside a model call: earlier rows and the open request remain.

    The start row is queued, not awaited, so the writer thread must have had its moment: the kill
    waits until the ledger's queue is drained (as it is within milliseconds in a live process)."""
    ledger_path = tmp_path / "l.sqlite3"
    config = tmp_path / "podium.yaml"
    config.write_text(textwrap.dedent(f"""
        providers:
          canned: {{kind: scripted, options: {{answers: {{m1: ok}}}}}}
        models:
          m: {{provider: canned, model_id: m1, context_window: 1000, input_price: 1, output_price: 1,
              tier: fast, region: us}}
        ledger: {{path: {ledger_path}}}
    """))
    script = textwrap.dedent(f"""
        import asyncio, os, signal
        from podium.client import Podium
        from podium.config import load_settings

        async def main():
            podium = Podium(load_settings({str(config)!r}))
            await podium.chat("first", model="m")
            def crash(request):
                podium.ledger.drain()
                os.kill(os.getpid(), signal.SIGKILL)

            podium.registry.get_provider("canned").set_script("m1", crash)
            await podium.chat("second", model="m")

        asyncio.run(main())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == -9, result.stderr.decode()
    with sqlite3.connect(ledger_path) as conn:
        statuses = [s for (s,) in conn.execute("SELECT status FROM requests ORDER BY started_at")]
        calls = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    assert statuses == ["ok", "running"]
    assert calls == 1


async def test_report_groups_by_model_and_task_and_computes_savings(scripted_config: Path, tmp_path: Path):
    async with Podium(load_settings(scripted_config)) as podium:
        for _ in range(3):
            await podium.chat("hello")
        await podium.chat("plan it", metadata={"task_type": "planning"})
    baseline = bundled_catalogue().get("gpt-4o")
    report = build_report(tmp_path / "ledger.sqlite3", baseline)
    by_model = {r.key: r for r in report.by_model}
    assert by_model["cheap"].calls == 3 and by_model["pricey"].calls == 1
    by_task = {r.key: r for r in report.by_task_type}
    assert by_task["(none)"].calls == 3 and by_task["planning"].calls == 1
    assert report.requests == 4 and report.requests_failed == 0
    assert report.retries == 0 and report.requests_with_fallback == 0
    assert report.total_cost == pytest.approx(sum(r.cost for r in report.by_model))
    tokens_in = sum(r.input_tokens for r in report.by_model)
    tokens_out = sum(r.output_tokens for r in report.by_model)
    assert report.baseline_cost == pytest.approx(baseline.estimated_cost(tokens_in, tokens_out))
    assert report.savings == pytest.approx(report.baseline_cost - report.total_cost)


def test_schema_migrations_run_once_each_and_upgrade_old_files(tmp_path: Path):
    from podium.ledger.schema import LATEST, MIGRATIONS

    path = tmp_path / "l.sqlite3"
    with sqlite3.connect(path) as old:  # a ledger written by the first release: migration 1 only
        old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        old.executescript(MIGRATIONS[0][1])
        old.execute("INSERT INTO schema_version VALUES (1)")
        old.execute("INSERT INTO requests (request_id, started_at, strategy, status) VALUES ('old', 1, 'single', 'ok')")
    SQLiteLedger(path).close()
    SQLiteLedger(path).close()
    with sqlite3.connect(path) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        assert versions == list(range(1, LATEST + 1))
        assert conn.execute("SELECT request_id, retries, fallbacks FROM requests").fetchall() == [("old", 0, 0)]

"""The CLI and the services a config points at: the PostgreSQL ledger `podium report` reads, and
what every command says when PostgreSQL or Redis cannot be reached (one line, exit 2, in seconds,
never the password)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import SCRIPTED_CONFIG, require_redis
from podium.catalogue import bundled_catalogue
from podium.errors import StoreUnavailableError
from podium.ledger import CallRow, RequestEnd, RequestStart, SQLiteLedger, build_report
from podium.ledger.postgres import PostgresLedger
from podium.ledger.report import build_report_postgres
from podium.server.keys_postgres import PostgresKeyStore
from test_cli import run

PASSWORD = "s3cret-pw"


def closed_port() -> int:
    """A port nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_file(directory: Path, **sections: Any) -> Path:
    path = directory / "podium.yaml"
    path.write_text(yaml.safe_dump({**SCRIPTED_CONFIG, **sections}), encoding="utf-8")
    return path


async def write_requests(ledger: Any, now: float) -> None:
    """The same requests for either store: two task types, an error, a fallback, retries, a request
    never finished, a call that failed, two models that cost the same, and one old request."""
    async def request(rid: str, started: float, task_type: str | None, calls: list[tuple[str, str, float]],
                      status: str | None, retries: int = 0, fallbacks: int = 0) -> None:
        await ledger.start_request(RequestStart(rid, started, "auto", task_type=task_type))
        for model, call_status, cost in calls:
            await ledger.record_call(CallRow(rid, started, "canned", model, call_status, 12.5, 100, 20,
                                             cost=cost, error=None if call_status == "ok" else "boom"))
        if status is not None:
            await ledger.finish_request(RequestEnd(
                rid, started + 1, status, calls[-1][0] if calls else None, "canned", 100 * len(calls),
                20 * len(calls), sum(c for _, _, c in calls), 40.0, len(calls), retries=retries,
                fallbacks=fallbacks))
        else:
            await ledger.flush()

    await request("r1", now - 60, "planning", [("pricey", "ok", 0.002)], "ok")
    await request("r2", now - 50, None, [("cheap", "error", 0.0), ("pricey", "ok", 0.002)], "ok", retries=1,
                  fallbacks=1)
    await request("r3", now - 40, "code", [("cheap", "error", 0.0)], "error", retries=2)
    await request("r4", now - 30, "code", [("eu-model", "ok", 0.0005), ("cheap", "ok", 0.0005)], "ok")
    await request("r5", now - 20, None, [("cheap", "ok", 0.0001)], None)  # still running
    # a tie in cost and calls between names a binary and a linguistic collation order differently
    await request("r6", now - 15, "Review", [("Bx", "ok", 0.0003)], "ok")
    await request("r7", now - 14, "analysis", [("ax", "ok", 0.0003)], "ok")
    await request("old", now - 10 * 3600, "planning", [("pricey", "ok", 0.5)], "ok")
    await ledger.aclose()


def same(a: Any, b: Any) -> None:
    """Equal, floats up to rounding (the stores sum in their own order)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            same(x, y)
    elif isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12)
    else:
        assert a == b


def test_report_reads_the_ledger_the_config_names_with_the_same_numbers(tmp_path: Path, dsn: str):
    now = time.time()
    asyncio.run(write_requests(SQLiteLedger(tmp_path / "ledger.sqlite3"), now))
    asyncio.run(write_requests(PostgresLedger(dsn), now))
    (tmp_path / "sqlite").mkdir()
    (tmp_path / "pg").mkdir()
    on_sqlite = config_file(tmp_path / "sqlite", ledger={"path": str(tmp_path / "ledger.sqlite3")})
    on_postgres = config_file(tmp_path / "pg", ledger={"postgres_dsn": dsn, "path": str(tmp_path / "other.sqlite3")})

    for extra in ((), ("--since-hours", "1")):
        from_sqlite = run("report", "--json", "--config", str(on_sqlite), *extra, cwd=tmp_path)
        from_postgres = run("report", "--json", "--config", str(on_postgres), *extra, cwd=tmp_path)
        assert from_sqlite.returncode == 0 and from_postgres.returncode == 0, from_postgres.stderr
        sqlite_report, postgres_report = json.loads(from_sqlite.stdout), json.loads(from_postgres.stdout)
        same(postgres_report, sqlite_report)
        recent = extra != ()
        assert postgres_report["requests"] == (7 if recent else 8)  # not the SQLite file `path` names
        assert (postgres_report["requests_failed"], postgres_report["requests_unfinished"]) == (1, 1)
        assert (postgres_report["retries"], postgres_report["requests_with_fallback"]) == (3, 1)
        by_model = {row["key"]: row for row in postgres_report["by_model"]}
        assert by_model["cheap"]["errors"] == 2 and by_model["cheap"]["calls"] == 4
        models = [row["key"] for row in postgres_report["by_model"]]
        assert models.index("Bx") + 1 == models.index("ax")  # a tie: by name, the same on both stores
        tasks = {row["key"]: row["calls"] for row in postgres_report["by_task_type"]}
        assert tasks == {"code": 2, "planning": 1 if recent else 2, "(none)": 2, "Review": 1, "analysis": 1}

    table = run("report", "--config", str(on_postgres), cwd=tmp_path)
    assert table.returncode == 0 and "per model" in table.stdout
    assert "ledger: PostgreSQL at 127.0.0.1:5432" in table.stdout


def test_build_report_postgres_matches_build_report_and_an_empty_database_is_an_empty_report(
        tmp_path: Path, dsn: str):
    baseline = bundled_catalogue().find("gpt-4o")
    empty = build_report_postgres(dsn, baseline)  # nothing recorded yet: no tables
    assert empty.requests == 0 and empty.by_model == [] and empty.savings == 0.0
    now = time.time()
    asyncio.run(write_requests(SQLiteLedger(tmp_path / "ledger.sqlite3"), now))
    asyncio.run(write_requests(PostgresLedger(dsn), now))
    same(build_report_postgres(dsn, baseline).to_dict(), build_report(tmp_path / "ledger.sqlite3", baseline).to_dict())
    same(build_report_postgres(dsn, None, now - 3600).to_dict(),
         build_report(tmp_path / "ledger.sqlite3", None, now - 3600).to_dict())


def test_ask_writes_to_the_postgres_ledger_and_report_reads_it(tmp_path: Path, dsn: str):
    config = config_file(tmp_path, ledger={"postgres_dsn": dsn})
    assert run("ask", "one", "--config", str(config), cwd=tmp_path).returncode == 0
    data = json.loads(run("report", "--json", "--config", str(config), cwd=tmp_path).stdout)
    assert data["requests"] == 1 and [row["key"] for row in data["by_model"]] == ["cheap"]


def one_clear_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    assert PASSWORD not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr and "error connecting" not in result.stderr


@pytest.mark.parametrize("command", [
    ("keys", "create", "x"), ("keys", "list"), ("keys", "revoke", "key_123"), ("report",), ("ask", "hi"),
    ("serve", "--port", "0"),
])
def test_an_unreachable_postgres_is_one_line_within_seconds(tmp_path: Path, command: tuple[str, ...]):
    port = closed_port()
    config = config_file(tmp_path, ledger={"postgres_dsn": f"postgresql://podium:{PASSWORD}@127.0.0.1:{port}/podium"})
    started = time.monotonic()
    result = run(*command, "--config", str(config), cwd=tmp_path)
    assert time.monotonic() - started < 10
    one_clear_line(result, f"127.0.0.1:{port}", "connection refused", "ledger.postgres_dsn")


def test_a_postgres_that_refuses_the_login_says_what_to_check(tmp_path: Path, dsn: str):
    wrong = dsn.replace("dbname=test", "dbname=no_such_database")
    config = config_file(tmp_path, ledger={"postgres_dsn": wrong})
    one_clear_line(run("keys", "list", "--config", str(config), cwd=tmp_path),
                   "127.0.0.1:5432", 'database "no_such_database" does not exist', "check the user, password")


def test_an_invalid_dsn_is_a_config_error(tmp_path: Path):
    config = config_file(tmp_path, ledger={"postgres_dsn": f"postgresql://u:{PASSWORD}@[bad"})
    one_clear_line(run("keys", "list", "--config", str(config), cwd=tmp_path), "ledger.postgres_dsn",
                   "not a valid PostgreSQL connection string")


def test_serve_with_an_unreachable_redis_is_one_line(tmp_path: Path):
    port = closed_port()
    config = config_file(tmp_path, gateway={"state": "redis", "redis_url": f"redis://:{PASSWORD}@127.0.0.1:{port}/0"},
                         ledger={"enabled": False})
    started = time.monotonic()
    result = run("serve", "--port", "0", "--config", str(config), cwd=tmp_path)
    assert time.monotonic() - started < 10
    one_clear_line(result, f"Redis at 127.0.0.1:{port}", "gateway.redis_url")


def test_serve_checks_a_reachable_redis_and_postgres_and_starts(tmp_path: Path, dsn: str):
    require_redis()
    config = config_file(tmp_path, gateway={"state": "redis"}, ledger={"postgres_dsn": dsn})
    process = subprocess.Popen([sys.executable, "-m", "podium.cli", "serve", "--port", "0", "--config", str(config)],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        lines = [process.stderr.readline() for _ in range(1)]
        while "listening on" not in lines[-1] and lines[-1] and len(lines) < 20:
            lines.append(process.stderr.readline())
        line = lines[-1]
        assert "listening on http://127.0.0.1:" in line and "ledger PostgreSQL at 127.0.0.1:5432" in line, lines
    finally:
        process.terminate()
        process.wait(10)


async def test_the_stores_themselves_fail_fast_with_a_clear_error():
    """Without the CLI's own check first: the pool waits OPEN_TIMEOUT, not 30 s, and says why."""
    port = closed_port()
    dsn = f"postgresql://podium:{PASSWORD}@127.0.0.1:{port}/podium"
    keys, ledger = PostgresKeyStore(dsn), PostgresLedger(dsn)
    for store, what, first_use in ((keys, "key store", keys.list), (ledger, "ledger",
                                                                    lambda: ledger.request_owner("req_1"))):
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            await first_use()
        assert time.monotonic() - started < 8
        await store.aclose()
        error = caught.value
        assert error.status == 503 and error.code == "store_unavailable" and error.error_type == "service_unavailable"
        assert f"PostgreSQL {what} at 127.0.0.1:{port} (connection refused)" in error.message
        assert PASSWORD not in error.message


def test_the_pool_s_connection_warnings_stay_off_the_terminal(tmp_path: Path):
    """psycopg_pool logs each failed attempt on ``psycopg.pool``; the CLI silences that logger."""
    port = closed_port()
    script = (
        "import asyncio\n"
        "from podium.cli.entry import quiet_pool_logs\n"
        "from podium.server.keys_postgres import PostgresKeyStore\n"
        "quiet_pool_logs()\n"
        "async def main():\n"
        f"    store = PostgresKeyStore('postgresql://u@127.0.0.1:{port}/x')\n"
        "    try:\n"
        "        await store.list()\n"
        "    except Exception as exc:\n"
        "        print(type(exc).__name__)\n"
        "    await store.aclose()\n"
        "asyncio.run(main())\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.stdout.strip() == "StoreUnavailableError"
    assert result.stderr == ""

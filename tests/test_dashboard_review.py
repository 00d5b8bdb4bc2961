"""The outside review's findings on the dashboard, each as the test that would have caught it.

The standalone viewer only reads (a keys file, an empty file or an old ledger given as ``--ledger``
is left byte for byte as it was), and every bad start is one line and exit 2.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from dashboard_helpers import ADMIN, bearer, config, open_gateway
from podium.dashboard.reader import open_reader
from podium.dashboard.standalone import create_dashboard_app
from podium.ledger.schema import MIGRATIONS
from podium.server.keys import KeyStore
from servers.http_server import Reply, Request, WireServer
from test_dashboard_cli import dashboard, env, free_port

RUN = [sys.executable, "-m", "podium.cli", "dashboard"]


def start(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RUN, *args], capture_output=True, text=True, timeout=60, env=env(), cwd=tmp)


def one_line_exit_2(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "Traceback" not in said and len(said.strip().splitlines()) == 1, said
    for needle in needles:
        assert needle in said, said


def old_ledger(path: Path) -> None:
    """A ledger as migration 1 left it: one request and its call, nothing newer."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.executescript(MIGRATIONS[0][1])
    conn.execute("INSERT INTO schema_version VALUES (1)")
    now = time.time()
    conn.execute("INSERT INTO requests (request_id, started_at, finished_at, requested_model, model, provider,"
                 " task_type, strategy, status, input_tokens, output_tokens, cost, latency_ms, calls)"
                 " VALUES ('r1', ?, ?, 'auto', 'echo', 'canned', 'chat', 'single', 'ok', 10, 5, 0.01, 120, 1)",
                 (now - 60, now - 59))
    conn.execute("INSERT INTO calls (request_id, seq, started_at, provider, model, status, input_tokens,"
                 " output_tokens, cost, latency_ms) VALUES ('r1', 0, ?, 'canned', 'echo', 'ok', 10, 5, 0.01, 120)",
                 (now - 60,))
    conn.commit()
    conn.close()


def test_files_that_are_not_ledgers_are_refused_and_left_as_they_were(tmp_path: Path):
    keys = tmp_path / "keys.sqlite3"
    KeyStore(keys).create("alice")
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all\n" * 50)
    for path in (keys, empty, text):
        before = path.read_bytes()
        one_line_exit_2(start(tmp_path, "--ledger", str(path)), "is not a Podium ledger")
        assert path.read_bytes() == before  # nothing migrated, nothing created
    assert not (tmp_path / "empty.sqlite3-wal").exists()


def test_an_old_ledger_is_shown_read_only_without_migrating_it(tmp_path: Path):
    ledger = tmp_path / "old.sqlite3"
    old_ledger(ledger)
    before = ledger.read_bytes()
    with dashboard(tmp_path, "--ledger", str(ledger)) as url:
        for page in ("overview", "models", "task-types", "routing", "keys", "requests", "requests/r1"):
            answered = httpx.get(f"{url}/dashboard/api/{page}", params={"range": "24h"})
            assert answered.status_code == 200, (page, answered.text)
        assert httpx.get(f"{url}/dashboard/api/overview", params={"range": "24h"}).json()["totals"]["requests"] == 1
    assert ledger.read_bytes() == before
    assert sqlite3.connect(ledger).execute("SELECT max(version) FROM schema_version").fetchone() == (1,)


def test_an_unreachable_postgresql_is_one_line_at_start_without_the_password(tmp_path: Path):
    port = free_port()
    done = start(tmp_path, "--ledger", f"postgresql://u:secretpw-77@127.0.0.1:{port}/x")
    one_line_exit_2(done, f"127.0.0.1:{port}")
    assert "secretpw-77" not in done.stdout + done.stderr


def test_a_keys_file_that_is_not_one_is_refused(tmp_path: Path):
    ledger = tmp_path / "old.sqlite3"
    old_ledger(ledger)
    one_line_exit_2(start(tmp_path, "--ledger", str(ledger), "--keys", str(ledger)), "is not a Podium keys file")
    one_line_exit_2(start(tmp_path, "--ledger", str(ledger), "--keys", str(tmp_path / "nope")), "no keys file")


def test_bad_ports_and_refreshes_are_one_line(tmp_path: Path):
    ledger = tmp_path / "old.sqlite3"
    old_ledger(ledger)
    for port in ("0", "65536", "-1"):
        one_line_exit_2(start(tmp_path, "--ledger", str(ledger), "--port", port), "--port")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        one_line_exit_2(start(tmp_path, "--ledger", str(ledger), "--port", port), f"127.0.0.1:{port}")
    for refresh in ("-3", "3601"):
        one_line_exit_2(start(tmp_path, "--ledger", str(ledger), "--refresh", refresh), "--refresh")


def test_a_postgresql_database_without_a_ledger_is_refused(tmp_path: Path, dsn: str):
    one_line_exit_2(start(tmp_path, "--ledger", dsn), "is not a Podium ledger")


# --- the API's parameters ------------------------------------------------------------------------------------
@contextmanager
def api_over_old_ledger(tmp: Path) -> Iterator[TestClient]:
    ledger = tmp / "old.sqlite3"
    if not ledger.exists():
        old_ledger(ledger)
    app = create_dashboard_app(open_reader(path=ledger), None)
    with TestClient(app) as client:
        yield client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["limit", "before", "from", "to"]), value=st.text(min_size=1, max_size=8))
def test_numeric_parameters_take_ascii_digits_only(tmp_path: Path, name: str, value: str):
    with api_over_old_ledger(tmp_path) as client:
        params = {name: value, **({"range": "all"} if name == "before" else {})}
        answered = client.get("/dashboard/api/requests", params=params)
        assert answered.status_code in (200, 400), answered.text
        if not value.strip().replace(".", "", 1).isascii() or not any(c.isdigit() for c in value):
            assert answered.status_code == 400 and f"'{name}'" in answered.json()["error"]["message"]


def test_unicode_digits_are_refused_naming_the_parameter(tmp_path: Path):
    with api_over_old_ledger(tmp_path) as client:
        for name, value in (("limit", "²"), ("limit", "٣"), ("limit", "1_0"), ("before", "٣"), ("from", "\u0661\u0660"),
                            ("to", "1e9"), ("before", "inf")):
            answered = client.get("/dashboard/api/requests", params={name: value, "range": "all"}
                                  if name == "before" else {name: value})
            assert answered.status_code == 400 and f"'{name}'" in answered.json()["error"]["message"], (name, value)
        assert client.get("/dashboard/api/requests", params={"limit": "3"}).status_code == 200


def test_a_status_must_be_one_the_ledger_writes_and_unknown_parameters_are_refused(tmp_path: Path):
    with api_over_old_ledger(tmp_path) as client:
        bogus = client.get("/dashboard/api/requests", params={"status": "bogus"})
        assert bogus.status_code == 400
        assert all(word in bogus.json()["error"]["message"] for word in ("'status'", "ok", "error", "cancelled"))
        assert client.get("/dashboard/api/requests", params={"status": "ok", "range": "all"}).json()["requests"]
        for path in ("overview", "models", "requests", "requests/r1"):
            answered = client.get(f"/dashboard/api/{path}", params={"range": "all", "nocache": "1"})
            assert answered.status_code == 400 and "'nocache'" in answered.json()["error"]["message"], path
        twice = client.get("/dashboard/api/overview?range=all&range=24h")
        assert twice.status_code == 400 and "'range'" in twice.text


# --- no prompt in the ledger, even when a vendor echoes it in an error -------------------------------------------
ECHOED = "Summarise my diary: ostrich-lantern-4471 met me at noon"


def echoing_upstream(request: Request) -> Reply:
    """An upstream that refuses every request with its prompt quoted in the error, as vendors do."""
    prompt = json.loads(request.body)["messages"][-1]["content"]
    return Reply.json({"error": {"message": f"Invalid prompt: '{prompt}' violates the usage policy",
                                 "type": "invalid_request_error", "code": "invalid_prompt"}}, 400)


async def test_a_prompt_echoed_in_a_vendor_error_reaches_neither_ledger_nor_dashboard(tmp_path: Path):
    upstream = WireServer(echoing_upstream).start()
    data = config(tmp_path)
    data.update(providers={"up": {"kind": "openai", "base_url": upstream.url + "/v1", "api_key": "sk-upstream-test"},
                           "local": {"enabled": False}},
                models={"fast": {"provider": "up", "model_id": "gpt-4o-mini", "context_window": 128000,
                                 "max_output_tokens": 1000, "input_price": 0.15, "output_price": 0.6,
                                 "tier": "fast", "region": "us"}},
                routing={"default": "fast"}, strategies={})
    gw = await open_gateway(tmp_path, data)
    try:
        made = await gw.http.post("/admin/keys", json={"name": "app"}, headers=bearer(ADMIN))
        refused = await gw.chat(made.json()["key"], model="fast", messages=[{"role": "user", "content": ECHOED}])
        assert refused.status_code == 400 and "ostrich-lantern" in refused.text  # the client's answer is whole
        request_id = refused.headers["x-request-id"]
        await gw.podium.ledger.flush()  # type: ignore[union-attr]
        pages = [await gw.api(page, range="all") for page in
                 ("overview", "models", "task-types", "routing", "keys", "requests", f"requests/{request_id}")]
        assert [page.status_code for page in pages] == [200] * 7, [page.text[:200] for page in pages]
        detail = pages[-1].json()
        assert detail["calls"] and "Invalid prompt: […]" in str(detail)  # the error is still there, prompt-less
        for page in pages:
            assert "ostrich-lantern" not in page.text
    finally:
        await gw.aclose()
        upstream.stop()
    assert_not_stored(tmp_path)


def assert_not_stored(tmp_path: Path) -> None:
    stored = b"".join(p.read_bytes() for p in sorted(tmp_path.iterdir()) if p.name.startswith("ledger.sqlite3"))
    assert b"ostrich-lantern" not in stored and b"Invalid prompt" in stored


def test_standalone_unknown_urls_are_json_404s_and_the_footer_names_the_file_only(tmp_path: Path):
    with api_over_old_ledger(tmp_path) as client:
        missing = client.get("/nope/at/all")
        assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
        session = client.get("/dashboard/api/session").json()
        assert session["ledger"] == "SQLite old.sqlite3" and str(tmp_path) not in str(session)


async def test_dashboard_refusals_are_in_the_gateways_request_log_without_the_key(
        tmp_path: Path, caplog: pytest.LogCaptureFixture):
    gw = await open_gateway(tmp_path, config(tmp_path))
    try:
        made = await gw.http.post("/admin/keys", json={"name": "app"}, headers=bearer(ADMIN))
        app_key = made.json()["key"]
        with caplog.at_level(logging.INFO, logger="podium.gateway"):
            assert (await gw.api("overview", auth="wrong-key-zz-123")).status_code == 401
            assert (await gw.api("models", auth=app_key)).status_code == 403
            assert (await gw.api("requests/abc", auth="wrong-key-zz-123")).status_code == 401
    finally:
        await gw.aclose()
    said = caplog.text
    assert "/dashboard/api/overview status=401" in said and "/dashboard/api/models status=403" in said
    assert "/dashboard/api/requests/abc status=401" in said
    assert "wrong-key-zz" not in said and app_key not in said and app_key[:12] not in said

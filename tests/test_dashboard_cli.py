"""`podium dashboard --ledger FILE_OR_DSN`: the same pages without a gateway, as a real process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from dashboard_helpers import config, open_gateway, traffic
from podium.config import load_settings
from podium.dashboard.reader import open_reader
from podium.dashboard.standalone import create_dashboard_app
from podium.errors import ConfigError
from podium.server.keys import KeyStore


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "PODIUM_CONFIG"}, **extra}


@contextmanager
def dashboard(tmp: Path, *args: str, **extra: str) -> Iterator[str]:
    port = free_port()
    log = tmp / f"dashboard-{port}.log"
    process = subprocess.Popen([sys.executable, "-m", "podium.cli", "dashboard", "--port", str(port), *args],
                               stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=tmp, env=env(**extra))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/dashboard/", timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"podium dashboard did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
async def ledger(tmp_path: Path) -> Path:
    gw = await open_gateway(tmp_path, config(tmp_path))
    try:
        await traffic(gw)
    finally:
        await gw.aclose()
    return tmp_path / "ledger.sqlite3"


def test_a_ledger_file_on_loopback_needs_no_key(ledger: Path, tmp_path: Path):
    with dashboard(tmp_path, "--ledger", str(ledger)) as url:
        overview = httpx.get(f"{url}/dashboard/api/overview", params={"range": "all"}).json()
        assert overview["totals"]["requests"] == 6 and overview["live"] is None
        keys = httpx.get(f"{url}/dashboard/api/keys", params={"range": "all"}).json()
        assert {k["name"] for k in keys["keys"]} >= {"alice", "bob"}  # from keys.sqlite3 beside the ledger
        session = httpx.get(f"{url}/dashboard/api/session").json()
        assert session["mode"] == "ledger" and session["ledger"].startswith("SQLite")
        assert httpx.get(f"{url}/", follow_redirects=True).url.path == "/dashboard/"


def test_with_a_key_the_endpoints_want_it(ledger: Path, tmp_path: Path):
    with dashboard(tmp_path, "--ledger", str(ledger), PODIUM_DASHBOARD_KEY="let-me-in-0123") as url:
        assert httpx.get(f"{url}/dashboard/api/overview").status_code == 401
        wrong = httpx.get(f"{url}/dashboard/api/overview", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = httpx.get(f"{url}/dashboard/api/overview", headers={"authorization": "Bearer let-me-in-0123"})
        assert right.status_code == 200
        assert httpx.get(f"{url}/dashboard/").status_code == 200  # the page itself holds nothing


def test_refuses_an_open_dashboard_off_loopback_and_a_missing_ledger(tmp_path: Path, ledger: Path):
    run = [sys.executable, "-m", "podium.cli", "dashboard"]
    open_wide = subprocess.run([*run, "--ledger", str(ledger), "--host", "0.0.0.0"], capture_output=True, text=True,
                               timeout=60, env=env(), cwd=tmp_path)
    assert open_wide.returncode != 0 and "give it a key" in open_wide.stdout + open_wide.stderr
    missing = subprocess.run([*run, "--ledger", str(tmp_path / "nope.sqlite3")], capture_output=True, text=True,
                             timeout=60, env=env(), cwd=tmp_path)
    assert missing.returncode != 0 and "no ledger at" in missing.stdout + missing.stderr
    assert not (tmp_path / "nope.sqlite3").exists()  # nothing created on the way


async def test_a_postgresql_ledger_by_dsn(tmp_path: Path, dsn: str):
    gw = await open_gateway(tmp_path, config(tmp_path, dsn=dsn, keys_in_postgres=True))
    try:
        await traffic(gw)
    finally:
        await gw.aclose()
    app = create_dashboard_app(open_reader(dsn=dsn), None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d") as http:
        overview = (await http.get("/dashboard/api/overview", params={"range": "all"})).json()
        assert overview["totals"]["requests"] == 6 and overview["totals"]["baseline_model"] is None
        keys = (await http.get("/dashboard/api/keys", params={"range": "all"})).json()
        assert {k["name"] for k in keys["keys"]} >= {"alice", "bob"}  # keys live in the same database
        assert "key_hash" not in str(keys)
    await app.state.dashboard.aclose()


async def test_an_unreachable_postgresql_is_a_503_naming_where(tmp_path: Path):
    port = free_port()
    app = create_dashboard_app(open_reader(dsn=f"postgresql://u:secretpw@127.0.0.1:{port}/x"), None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://d") as http:
        answered = await http.get("/dashboard/api/overview")
    await app.state.dashboard.aclose()
    assert answered.status_code == 503 and f"127.0.0.1:{port}" in answered.text and "secretpw" not in answered.text


def test_podium_keys_create_takes_the_dashboard_scope(tmp_path: Path):
    path = tmp_path / "podium.yaml"
    path.write_text(json.dumps(config(tmp_path)))
    made = subprocess.run([sys.executable, "-m", "podium.cli", "keys", "create", "ops", "--models", "dashboard",
                           "--config", str(path)], capture_output=True, text=True, timeout=60, env=env(), cwd=tmp_path)
    assert made.returncode == 0, made.stdout + made.stderr
    [key] = KeyStore(tmp_path / "keys.sqlite3").list()
    assert key.name == "ops" and key.models == ("dashboard",)


def test_the_dashboard_section_is_checked_like_any_other(tmp_path: Path):
    for bad in ({"refresh_seconds": -1}, {"refresh_seconds": 99999}, {"enabled": "maybe"}, {"colour": "blue"}):
        path = tmp_path / "podium.yaml"
        path.write_text(json.dumps({**config(tmp_path), "dashboard": bad}))
        with pytest.raises(ConfigError, match="dashboard"):
            load_settings(path)

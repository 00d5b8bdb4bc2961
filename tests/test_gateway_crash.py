"""A gateway killed with SIGKILL mid-request loses no ledger row of a request that reached a provider.

A real ``podium serve`` talks to a real OpenAI-wire server on loopback (each answer takes a little
while, so requests are always in flight); clients send requests from threads; the gateway is killed
at a random moment — no drain, no shutdown. Every request the upstream received must then have its
row in the ledger (running or finished), and every request a client saw answered must be there as
'ok' with its call row. Repeated at different moments.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx
import pytest

from servers.http_server import Reply, Request, WireServer
from servers.wires import OpenAIWire, Scenario
from test_gateway import start


def upstream() -> WireServer:
    wire, scenario = OpenAIWire(), Scenario(text="Paris", input_tokens=9, output_tokens=2)

    def handle(request: Request) -> Reply:
        # each answer's body comes 50-100 ms after its request (waited without blocking the server): at any
        # moment several requests are in flight, some in their first 20 ms, when a start row nobody flushed
        # would still wait in the gateway's buffer
        reply = wire.handle(request, scenario)
        reply.chunks, reply.chunk_delay = [reply.body], random.uniform(0.05, 0.1)
        return reply

    return WireServer(handle)


def config_for(tmp_path: Path, server: WireServer, **provider: object) -> Path:
    """podium.yaml for one OpenAI-wire upstream (one attempt per call, a SQLite ledger under tmp_path)."""
    config = tmp_path / "podium.yaml"
    config.write_text(json.dumps({
        "providers": {"mock": {"kind": "openai", "base_url": f"{server.url}/v1", "api_key": "sk-upstream-0123",
                               **provider},
                      "local": {"enabled": False}},
        "models": {"m": {"provider": "mock", "model_id": "gpt-4o-mini", "context_window": 8000,
                         "input_price": 1.0, "output_price": 2.0, "tier": "fast", "region": "us"}},
        "resilience": {"retries": {"max_attempts": 1}},
        "gateway": {"auth": "optional", "keys_path": str(tmp_path / "keys.sqlite3")},
        "ledger": {"path": str(tmp_path / "ledger.sqlite3")}}))
    return config


@pytest.mark.parametrize("moment", [0.3, 0.55, 0.8])
def test_a_sigkill_mid_request_loses_no_row_of_a_request_that_reached_the_provider(tmp_path: Path, moment: float):
    with upstream() as server:
        process, url, _ = start(tmp_path, config_for(tmp_path, server))
        answered: list[str] = []
        stop = threading.Event()

        def client() -> None:
            with httpx.Client(timeout=5) as http:
                while not stop.is_set():
                    try:
                        response = http.post(f"{url}/v1/chat/completions", json={
                            "model": "m", "messages": [{"role": "user", "content": "Capital of France?"}]})
                    except httpx.HTTPError:
                        return  # the gateway is gone
                    if response.status_code == 200:
                        answered.append(response.headers["x-request-id"])

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        warm = time.monotonic() + 30  # a loaded machine may take a while to answer the first one
        while not answered and time.monotonic() < warm:
            time.sleep(0.01)
        time.sleep(moment)  # then kill with requests in every stage of flight
        os.kill(process.pid, signal.SIGKILL)  # no drain, no shutdown: whatever is buffered now is lost
        process.wait(10)
        stop.set()
        for thread in threads:
            thread.join(10)
        reached = len([r for r in server.requests if r.path.endswith("/chat/completions")])
    assert reached > 0 and answered
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        rows = dict(conn.execute("SELECT request_id, status FROM requests").fetchall())
        with_calls = {r for (r,) in conn.execute("SELECT DISTINCT request_id FROM calls")}
    assert len(rows) >= reached, f"{reached} requests reached the provider, {len(rows)} are in the ledger"
    missing = [r for r in answered if rows.get(r) != "ok" or r not in with_calls]
    assert not missing, f"answered but not whole in the ledger: {missing[:5]}"


def test_sigterm_stops_a_gateway_whose_request_hangs_within_the_grace_period(tmp_path: Path):
    """An upstream that never answers must not keep a stopping gateway alive: after the shutdown grace the
    request is cancelled (and recorded as cancelled), and the process exits."""
    from podium.cli.serve import SHUTDOWN_GRACE

    with WireServer(lambda request: Reply(fault="hang")) as server:
        process, url, _ = start(tmp_path, config_for(tmp_path, server, timeout=600))

        def client() -> None:
            with httpx.Client(timeout=120) as http, contextlib.suppress(httpx.HTTPError):
                http.post(f"{url}/v1/chat/completions", json={"model": "m", "messages": [
                    {"role": "user", "content": "Capital of France?"}]})

        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.requests and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.requests, "the request never reached the upstream"
        stopped = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(SHUTDOWN_GRACE + 15)
        except Exception:
            process.kill()
            raise
        took = time.monotonic() - stopped
    assert took < SHUTDOWN_GRACE + 15
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as conn:
        statuses = [s for (s,) in conn.execute("SELECT status FROM requests")]
    assert statuses == ["cancelled"], statuses

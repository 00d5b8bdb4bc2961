"""Peak memory of a real gateway process while a client uploads a body far over gateway.max_body_bytes.

Two gateways on free ports, one fresh process per upload: ``podium serve`` as this checkout builds it,
and the same app wrapped in ``BodyLimit`` (what app.py does once wired; the rows agree from then on).
Chat goes without a key (it reads the body before auth); feedback with one. Figures: growth of the
process's peak RSS (VmHWM, Linux) over its idle peak, the status, and how long the client waited.
Also the middleware's cost per request, in process.

    python benchmarks/body_limit.py [--mb 200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from podium.server.keys import KeyStore

MB = 1 << 20
WRAPPED = """
import sys, uvicorn
from podium.cli.serve import uvicorn_options
from podium.config import load_settings
from podium.server.app import create_app
from podium.server.http_limits import BodyLimit
settings = load_settings(sys.argv[1])
app = BodyLimit(create_app(settings), max_body_bytes=settings.gateway.max_body_bytes)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), **uvicorn_options(header_timeout=10, idle_timeout=15))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(directory: Path) -> Path:
    data = {"providers": {"canned": {"kind": "scripted", "options": {"answers": {"echo-1": "hi"}}}},
            "models": {"echo": {"provider": "canned", "model_id": "echo-1", "context_window": 8000,
                                "input_price": 1, "output_price": 1, "tier": "fast", "region": "us"}},
            "ledger": {"path": str(directory / "ledger.sqlite3")},
            "gateway": {"keys_path": str(directory / "keys.sqlite3")}}
    path = directory / "podium.yaml"
    path.write_text(json.dumps(data))
    return path


def peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


def start(kind: str, path: Path, port: int) -> subprocess.Popen[bytes]:
    if kind == "podium serve":
        argv = [sys.executable, "-m", "podium.cli", "serve", "--port", str(port), "--config", str(path)]
    else:
        argv = [sys.executable, "-c", WRAPPED, str(path), str(port)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=path.parent)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{kind} did not start")


def upload(url: str, mb: int, chunked: bool, key: str | None) -> tuple[str, float]:
    body: bytes | Iterator[bytes] = (b"x" * MB for _ in range(mb)) if chunked else b"x" * (mb * MB)
    headers = {"authorization": f"Bearer {key}"} if key else {}
    started = time.monotonic()
    try:
        status = str(httpx.post(url, content=body, headers=headers, timeout=120).status_code)
    except httpx.HTTPError as exc:
        status = type(exc).__name__
    return status, time.monotonic() - started


async def overhead(n: int) -> tuple[float, float]:
    """µs per request for a trivial ASGI app, bare and wrapped, called directly (no HTTP)."""
    from podium.server.http_limits import BodyLimit

    async def app(scope: object, receive: object, send: object) -> None:
        await receive()  # type: ignore[operator]
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: object) -> None:
        return None

    scope = {"type": "http", "headers": [(b"host", b"x"), (b"content-length", b"2"), (b"content-type", b"json")]}
    out = []
    for target in (app, BodyLimit(app, max_body_bytes=4_000_000)):
        started = time.perf_counter()
        for _ in range(n):
            await target(scope, receive, send)
        out.append((time.perf_counter() - started) / n * 1e6)
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    args = parser.parse_args()
    cases = [("/v1/chat/completions", False), ("/v1/chat/completions", True), ("/v1/feedback", False)]
    with tempfile.TemporaryDirectory() as tmp:
        path = config(Path(tmp))
        store = KeyStore(Path(tmp) / "keys.sqlite3")
        key, _ = store.create("bench")  # feedback checks the key before it reads; chat goes without one
        store.close()
        print(f"{'gateway':<24} {'upload':<34} {'status':>8} {'peak RSS +':>11} {'client wait':>12}")
        for kind in ("podium serve", "wrapped in BodyLimit"):
            for route, chunked in cases:
                port = free_port()
                process = start(kind, path, port)
                try:
                    idle = peak_rss(process.pid)
                    status, seconds = upload(f"http://127.0.0.1:{port}{route}", args.mb, chunked,
                                             key if route == "/v1/feedback" else None)
                    grown = (peak_rss(process.pid) - idle) / MB
                finally:
                    process.terminate()
                    process.wait(10)
                label = f"{args.mb} MB {'chunked' if chunked else 'declared'} {route}"
                print(f"{kind:<24} {label:<34} {status:>8} {grown:>8.1f} MB {seconds:>10.2f} s")
    bare, wrapped = asyncio.run(overhead(200_000))
    print(f"BodyLimit per request, in process: {wrapped - bare:.2f} µs ({bare:.2f} → {wrapped:.2f} µs)")


if __name__ == "__main__":
    main()

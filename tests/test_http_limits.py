"""Body size, header and body time, and header size limits: through the ASGI app, and against a real uvicorn
process with raw sockets."""

from __future__ import annotations

import logging
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from conftest import SCRIPTED_CONFIG, write_config
from podium.cli import serve
from podium.config import load_settings
from podium.errors import BadRequestError
from podium.server.app import create_app
from podium.server.http_limits import (
    BODY_CLOCK,
    BodyClock,
    BodyLimit,
    BodyTimeout,
    HeaderTimeoutProtocol,
    with_header_timeout,
)

LIMIT = 1000
MB = 1 << 20


def echo_app(calls: list[str]) -> Starlette:
    async def echo(request: Request) -> Response:
        calls.append("echo")
        return JSONResponse({"size": len(await request.body())})

    async def swallow(request: Request) -> Response:
        try:
            await request.body()
        except Exception:  # a route that answers every failure itself
            return JSONResponse({"error": "mine"}, 400)
        return JSONResponse({"ok": True})

    async def boom(request: Request) -> Response:
        raise RuntimeError("not the body's fault")

    return Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/swallow", swallow, methods=["POST"]),
                             Route("/boom", boom, methods=["POST"])])


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def chunks(total: int, size: int = 300) -> AsyncIterator[bytes]:
    while total > 0:
        yield b"x" * min(size, total)
        total -= size


def error_of(response: httpx.Response) -> dict[str, Any]:
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] is None
    return dict(error)


# --- through the ASGI app -------------------------------------------------------------------------


async def test_content_length_over_the_limit_is_a_413_before_the_app_runs():
    calls: list[str] = []
    async with client(BodyLimit(echo_app(calls), max_body_bytes=LIMIT)) as http:
        response = await http.post("/echo", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413 and calls == []
    error = error_of(response)
    assert error["code"] == "request_too_large"
    assert "1,001 bytes" in error["message"] and "1,000" in error["message"]
    assert "gateway.max_body_bytes" in error["message"]
    assert response.headers["connection"] == "close" and response.headers["x-request-id"].startswith("req_")


async def test_a_chunked_body_over_the_limit_is_a_413_and_the_app_sees_no_more_than_the_limit():
    calls: list[str] = []
    async with client(BodyLimit(echo_app(calls), max_body_bytes=LIMIT)) as http:
        response = await http.post("/echo", content=chunks(LIMIT * 5))
    assert response.status_code == 413 and calls == ["echo"]
    assert "limit of 1,000 bytes (gateway.max_body_bytes)" in error_of(response)["message"]


async def test_exactly_the_limit_passes_declared_or_chunked():
    async with client(BodyLimit(echo_app([]), max_body_bytes=LIMIT)) as http:
        declared = await http.post("/echo", content=b"x" * LIMIT)
        streamed = await http.post("/echo", content=chunks(LIMIT))
        empty = await http.post("/echo")
    assert declared.json() == streamed.json() == {"size": LIMIT}
    assert empty.json() == {"size": 0}


async def test_a_route_that_catches_the_error_still_answers_413():
    async with client(BodyLimit(echo_app([]), max_body_bytes=LIMIT)) as http:
        response = await http.post("/swallow", content=chunks(LIMIT + 1))
    assert response.status_code == 413 and error_of(response)["code"] == "request_too_large"


async def test_other_errors_are_not_the_middleware_s_business():
    with pytest.raises(RuntimeError, match="not the body"):
        async with client(BodyLimit(echo_app([]), max_body_bytes=LIMIT)) as http:
            await http.post("/boom", content=b"{}")


class Recorder:
    def __init__(self, body: list[bytes]) -> None:
        self.body, self.sent = list(body), []

    async def receive(self) -> dict[str, Any]:
        chunk = self.body.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.body)}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def scope(*headers: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": "/", "headers": list(headers)}


async def test_a_lying_content_length_is_cut_at_the_limit():
    seen: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            seen.append(len(message["body"]))
            if not message["more_body"]:
                break

    io = Recorder([b"x" * 600] * 10)
    await BodyLimit(app, max_body_bytes=LIMIT)(scope((b"content-length", b"10")), io.receive, io.send)
    assert seen == [600]  # the chunk crossing the limit never reached the app
    assert io.sent[0]["status"] == 413 and len(io.sent) == 2


@pytest.mark.parametrize("value", [b"abc", b"-1", b"1e3", b"", b" 12 3"])
async def test_a_malformed_content_length_is_a_400(value: bytes):
    io = Recorder([b""])

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not run")

    await BodyLimit(app, max_body_bytes=LIMIT)(scope((b"content-length", value)), io.receive, io.send)
    assert io.sent[0]["status"] == 400
    assert orjson.loads(io.sent[1]["body"])["error"]["code"] == "invalid_content_length"


async def test_two_different_content_lengths_are_a_400_and_a_huge_one_a_413():
    io = Recorder([b""])

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not run")

    limit = BodyLimit(app, max_body_bytes=LIMIT)
    await limit(scope((b"content-length", b"5"), (b"content-length", b"6")), io.receive, io.send)
    await limit(scope((b"content-length", b"9" * 5000)), io.receive, io.send)
    assert [m["status"] for m in io.sent if "status" in m] == [400, 413]


async def test_over_the_limit_after_the_response_started_sends_nothing_more():
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive())["more_body"]:
            pass

    io = Recorder([b"x" * 600] * 3)
    await BodyLimit(app, max_body_bytes=LIMIT)(scope(), io.receive, io.send)
    assert [m["type"] for m in io.sent] == ["http.response.start"]


async def test_lifespan_and_other_scopes_pass_through():
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await BodyLimit(app, max_body_bytes=LIMIT)({"type": "lifespan"}, Recorder([]).receive, Recorder([]).send)
    assert seen == ["lifespan"]


async def test_every_gateway_route_is_limited_and_a_declared_length_before_auth(scripted_config: Path):
    settings = load_settings(scripted_config)
    settings.gateway.max_body_bytes = 10_000
    big = orjson.dumps({"request_id": "chatcmpl-x", "score": 1, "comment": "x" * 50_000})
    routes = ("/v1/feedback", "/admin/keys", "/v1/chat/completions", "/v1/embeddings")
    async with client(BodyLimit(create_app(settings), max_body_bytes=settings.gateway.max_body_bytes)) as http:
        for path in routes:  # no key at all: the 413 comes first
            assert (await http.post(path, content=big)).status_code == 413, path
        small = await http.post("/v1/feedback", content=b'{"request_id": "x", "score": 1}')
    assert small.status_code == 401  # under the limit, the route (and its auth) runs as before

    settings.gateway.auth = "optional"  # routes that get as far as reading a streamed body
    settings.gateway.admin_key = SecretStr("admin-key")
    async with client(BodyLimit(create_app(settings), max_body_bytes=settings.gateway.max_body_bytes)) as http:
        for path in routes:
            streamed = await http.post(path, content=chunks(len(big), 4096), headers={"x-api-key": "admin-key"})
            assert streamed.status_code == 413 and error_of(streamed)["code"] == "request_too_large", path


class Disconnects(Recorder):
    """A body that stops after its first part: then ``http.disconnect``, as uvicorn says once the connection closed."""

    async def receive(self) -> dict[str, Any]:
        if self.body:
            return {"type": "http.request", "body": self.body.pop(0), "more_body": True}
        return {"type": "http.disconnect"}


async def test_a_disconnect_after_the_body_timeout_raises_body_timeout_and_is_swallowed():
    raised: list[BodyTimeout] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            while (await receive())["type"] == "http.request":
                pass
        except BodyTimeout as exc:
            raised.append(exc)
            await send({"type": "http.response.start", "status": 500, "headers": []})  # dropped: the 408 is out
            raise RuntimeError("what a route makes of it") from exc

    clock = BodyClock(0.0, 2.5)
    clock.expired = True
    io = Disconnects([b"{"])
    await BodyLimit(app, max_body_bytes=LIMIT)({**scope(), BODY_CLOCK: clock}, io.receive, io.send)
    assert io.sent == [] and len(raised) == 1
    assert raised[0].status == 408 and raised[0].code == "request_timeout"
    assert "2.5 s" in raised[0].message and "gateway.body_timeout" in raised[0].message


async def test_a_disconnect_before_the_body_timeout_is_the_app_s_business():
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await Request(scope, receive).body()

    for clock in (BodyClock(0.0, 30), None):  # the client left on its own: Starlette's ClientDisconnect, as before
        io = Disconnects([b"{"])
        with pytest.raises(ClientDisconnect):
            await BodyLimit(app, max_body_bytes=LIMIT)({**scope(), BODY_CLOCK: clock}, io.receive, io.send)


# --- a real uvicorn process -----------------------------------------------------------------------

CHILD = """
import asyncio, socket, sys
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from podium.cli.serve import configure_logging, uvicorn_options
from podium.server.http_limits import BODY_CLOCK, BodyLimit

limit, header_timeout, idle_timeout, body_timeout, max_header_bytes, config = sys.argv[1:7]
if config:
    from podium.config import load_settings
    from podium.server.app import create_app
    configure_logging("info")
    app = create_app(load_settings(config))
else:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"size": len(await request.body())})
    async def clock(request: Request) -> JSONResponse:
        return JSONResponse({"size": len(await request.body()), "clock": BODY_CLOCK in request.scope})
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})
    async def slow(request: Request) -> JSONResponse:
        await asyncio.sleep(1)
        return JSONResponse({"status": "ok"})
    app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/clock", clock, methods=["POST"]),
                            Route("/health", health), Route("/slow", slow)])
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(sock.getsockname()[1], flush=True)
options = uvicorn_options(header_timeout=float(header_timeout), idle_timeout=float(idle_timeout),
                          body_timeout=float(body_timeout), max_header_bytes=int(max_header_bytes))
uvicorn.Server(uvicorn.Config(BodyLimit(app, max_body_bytes=int(limit)), **options)).run(sockets=[sock])
"""


class Server:
    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process, self.port, self.log = process, port, log
        self.url = f"http://127.0.0.1:{port}"

    def peak_rss(self) -> int:
        """Bytes: the process's high-water mark of resident memory (VmHWM)."""
        return self._status("VmHWM:")

    def rss(self) -> int:
        """Bytes: the process's resident memory now (VmRSS)."""
        return self._status("VmRSS:")

    def _status(self, field: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field}")

    def assert_no_traceback(self) -> str:
        """The server's log so far, which must hold no traceback and no error."""
        time.sleep(0.3)  # the log handler writes out every quarter second
        log = self.log.read_text()
        assert "Traceback" not in log and "Exception in ASGI" not in log and "ERROR" not in log, log[-3000:]
        return log

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(limit: int = LIMIT, header_timeout: float = 0.5, idle_timeout: float = 0.5, body_timeout: float = 0.5,
              max_header_bytes: int = 65536, config: str = "") -> Server:
        log = tmp_path / "server.log"
        process = subprocess.Popen([sys.executable, "-c", CHILD, str(limit), str(header_timeout), str(idle_timeout),
                                    str(body_timeout), str(max_header_bytes), config],
                                   stdout=subprocess.PIPE, stderr=log.open("wb"))
        started.append(process)
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        deadline = time.monotonic() + 30
        while port.isdigit() and time.monotonic() < deadline:
            server = Server(process, int(port), log)
            try:
                if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                    return server
            except httpx.HTTPError:
                time.sleep(0.05)
        pytest.fail(f"the server did not start: {log.read_text()[-2000:]}")

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # connections it never let go keep uvicorn's shutdown waiting
            process.kill()
            process.wait(10)


def closed_after(sock: socket.socket, limit: float, trickle: bytes = b"", every: float = 0.1) -> float:
    """Seconds until the server closes ``sock`` (sending ``trickle`` a byte at a time meanwhile); fails past
    ``limit``."""
    return answer_and_close(sock, limit, trickle, every)[0]


def answer_and_close(sock: socket.socket, limit: float, trickle: bytes = b"",
                     every: float = 0.1) -> tuple[float, bytes]:
    """Seconds until the server closes ``sock``, and what it sent before (see ``closed_after``)."""
    started, received = time.monotonic(), b""
    while time.monotonic() - started < limit:
        if trickle:
            try:
                sock.sendall(trickle[:1])
            except OSError:
                return time.monotonic() - started, received + drained(sock)
            trickle = trickle[1:]
        readable, _, _ = select.select([sock], [], [], every)
        if readable:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                return time.monotonic() - started, received
            received += data
    pytest.fail(f"the connection was still open after {limit} s")


def drained(sock: socket.socket) -> bytes:
    """What is left to read on a socket the server has closed."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return data
        if not chunk:
            return data
        data += chunk


def error_in(raw: bytes, status: int, code: str) -> str:
    """The message of the OpenAI-style error a raw response carries, after checking its status and code."""
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode()), raw[:200]
    assert b"\r\nconnection: close\r\n" in head and b"\r\nx-request-id: req_" in head
    error = orjson.loads(body)["error"]
    assert error == {"message": error["message"], "type": "invalid_request_error", "param": None, "code": code}
    return str(error["message"])


def exchange(sock: socket.socket, path: str = "/health") -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
    return read_ok(sock)


def read_ok(sock: socket.socket, count: int = 1) -> bytes:
    """Responses until ``count`` /health bodies have come."""
    data = b""
    while data.count(b'"ok"}') < count:
        chunk = sock.recv(65536)
        assert chunk, f"closed mid-response: {data!r}"
        data += chunk
    return data


needs_proc = pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc")


def test_real_server_413s_declared_and_chunked_and_passes_the_limit(start_server: Callable[..., Server]):
    server = start_server()
    declared = httpx.post(f"{server.url}/echo", content=b"x" * (LIMIT + 1))
    streamed = httpx.post(f"{server.url}/echo", content=(b"x" * 100 for _ in range(50)))
    exact = httpx.post(f"{server.url}/echo", content=(b"x" * 100 for _ in range(10)))
    assert declared.status_code == streamed.status_code == 413
    assert "gateway.max_body_bytes" in error_of(streamed)["message"]
    assert exact.json() == {"size": LIMIT}


@needs_proc
def test_a_200_mb_upload_does_not_grow_the_gateway(start_server: Callable[..., Server], tmp_path: Path):
    config = write_config(tmp_path, SCRIPTED_CONFIG, ledger=tmp_path / "ledger.sqlite3")
    server = start_server(limit=4_000_000, header_timeout=10, idle_timeout=10, config=str(config))
    before = server.peak_rss()
    url = f"{server.url}/v1/chat/completions"
    key = {"Authorization": "Bearer pk-x"}  # with no key at all the answer is a 401 before any body is read
    declared = httpx.post(url, content=b"x" * (200 * MB), timeout=60, headers=key)
    streamed = httpx.post(url, content=(b"x" * MB for _ in range(200)), timeout=60, headers=key)
    growth = server.peak_rss() - before
    assert declared.status_code == streamed.status_code == 413
    assert growth < 50 * MB, f"the server grew by {growth / MB:.0f} MB"


def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(start_server: Callable[..., Server]):
    server = start_server()
    with server.connect() as sock:
        assert 0.3 < closed_after(sock, 5) < 2


def test_headers_a_byte_at_a_time_are_cut_at_the_header_timeout(start_server: Callable[..., Server]):
    server = start_server()
    request = b"GET /health HTTP/1.1\r\nHost: t\r\nUser-Agent: slow\r\n\r\n"
    with server.connect() as sock:
        assert 0.3 < closed_after(sock, 5, trickle=request) < 2  # 50 bytes at 10 a second would take 5 s


def test_keep_alive_works_and_an_idle_connection_is_closed(start_server: Callable[..., Server]):
    server = start_server(idle_timeout=0.6)
    with server.connect() as sock:
        assert b"200 OK" in exchange(sock)
        time.sleep(0.2)
        assert b"200 OK" in exchange(sock)  # the same connection, within the idle timeout
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        time.sleep(0.2)  # headers in two parts, both within the header timeout
        sock.sendall(b"Host: t\r\n\r\n")
        assert b"200 OK" in sock.recv(65536)
        assert 0.4 < closed_after(sock, 5) < 2


def test_a_later_request_s_headers_are_timed_too(start_server: Callable[..., Server]):
    server = start_server(idle_timeout=30)
    with server.connect() as sock:
        assert b"200 OK" in exchange(sock)
        # Each byte would cancel the 30 s keep-alive timer; the header clock must not be reset by them.
        assert 0.3 < closed_after(sock, 5, trickle=b"\r\n" * 40) < 2


def post_head(length: int, path: str = "/echo") -> bytes:
    # a key (any: it is checked after the body) so that the gateway reads the body instead of answering 401 first
    return f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer pk-x\r\nContent-Length: {length}\r\n\r\n".encode()


def test_a_stalled_body_gets_a_408_at_the_body_timeout(start_server: Callable[..., Server]):
    server = start_server(header_timeout=3, idle_timeout=5)
    with server.connect() as sock:
        sock.sendall(post_head(100) + b"{")
        seconds, answer = answer_and_close(sock, 5)
    assert 0.4 < seconds < 1.5
    message = error_in(answer, 408, "request_timeout")
    assert "0.5 s" in message and "gateway.body_timeout" in message
    server.assert_no_traceback()


def test_a_body_a_byte_at_a_time_is_cut_at_the_body_timeout(start_server: Callable[..., Server]):
    server = start_server(header_timeout=3, idle_timeout=5)
    with server.connect() as sock:
        sock.sendall(post_head(100))
        # 100 bytes at 10 a second would take 10 s, each well within any per-byte timeout.
        seconds, answer = answer_and_close(sock, 5, trickle=b"x" * 100)
    assert 0.4 < seconds < 1.5
    error_in(answer, 408, "request_timeout")
    server.assert_no_traceback()


def test_bodies_in_time_pass_in_one_piece_in_parts_and_on_keep_alive(start_server: Callable[..., Server]):
    server = start_server(idle_timeout=5, header_timeout=3)

    def answer(sock: socket.socket) -> dict[str, Any]:
        data = b""
        while not data.endswith(b"}"):
            chunk = sock.recv(65536)
            assert chunk, f"closed mid-response: {data!r}"
            data += chunk
        assert data.startswith(b"HTTP/1.1 200 "), data
        return dict(orjson.loads(data.partition(b"\r\n\r\n")[2]))

    with server.connect() as sock:
        sock.sendall(post_head(10, "/clock") + b"0123456789")
        assert answer(sock) == {"size": 10, "clock": False}  # a body that came with its headers: no clock at all
        sock.sendall(post_head(10, "/clock") + b"012")
        for part in (b"345", b"6789"):  # parts, all within the body timeout
            time.sleep(0.1)
            sock.sendall(part)
        assert answer(sock) == {"size": 10, "clock": True}
        time.sleep(0.8)  # past the body timeout: the clock stopped with the body, the connection stays
        sock.sendall(post_head(3) + b"abc")
        assert answer(sock) == {"size": 3}
        assert b"200 OK" in exchange(sock)
    chunked = httpx.post(f"{server.url}/echo", content=(b"x" * 100 for _ in range(10)))
    assert chunked.json() == {"size": LIMIT}
    server.assert_no_traceback()


def test_a_pipelined_body_s_clock_waits_for_its_turn(start_server: Callable[..., Server]):
    server = start_server(idle_timeout=5, header_timeout=3)
    with server.connect() as sock:
        # uvicorn reads no more of the POST until /slow (1 s) is answered: that second is not the client's.
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n" + post_head(10) + b"01234")
        time.sleep(1.2)
        sock.sendall(b"56789")
        data = b""
        while not data.endswith(b'{"size":10}'):
            chunk = sock.recv(65536)
            assert chunk, f"closed: {data!r}"
            data += chunk
    assert data.count(b"HTTP/1.1 200 OK") == 2
    server.assert_no_traceback()


def big_head(size: int) -> bytes:
    """A GET /health whose headers take ``size`` bytes in all."""
    head = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Big: \r\n\r\n"
    return head[:-4] + b"a" * (size - len(head)) + b"\r\n\r\n"


def send_until_refused(sock: socket.socket, data: bytes) -> None:
    view = memoryview(data)
    try:
        for start in range(0, len(view), MB):
            sock.sendall(view[start:start + MB])
    except OSError:  # the server answered and closed before it all went
        pass


def test_headers_over_the_limit_get_a_431_and_headers_up_to_it_pass(start_server: Callable[..., Server]):
    server = start_server(header_timeout=3, idle_timeout=5)
    with server.connect() as sock:
        send_until_refused(sock, big_head(200_000))
        seconds, answer = answer_and_close(sock, 5)
    assert seconds < 1
    message = error_in(answer, 431, "headers_too_large")
    assert "65,536 bytes" in message and "gateway.max_header_bytes" in message
    with server.connect() as sock:
        sock.sendall(big_head(65537))
        error_in(answer_and_close(sock, 5)[1], 431, "headers_too_large")
    with server.connect() as sock:
        request = big_head(65536)  # exactly the limit, in two parts
        sock.sendall(request[:40_000])
        time.sleep(0.1)
        sock.sendall(request[40_000:])
        read_ok(sock)
        sock.sendall(big_head(65536) * 2)  # each request counts for itself, two in one read too
        read_ok(sock, 2)
        assert b"200 OK" in exchange(sock)
    server.assert_no_traceback()


@needs_proc
def test_huge_headers_are_not_held(start_server: Callable[..., Server]):
    server = start_server(header_timeout=10, idle_timeout=10)
    before = server.peak_rss()
    socks = [server.connect() for _ in range(10)]
    with ThreadPoolExecutor(10) as pool:  # ten 20 MB headers at once, then one of 50 MB
        list(pool.map(send_until_refused, socks, [big_head(20 * MB)] * 10))
    socks.append(server.connect())
    send_until_refused(socks[-1], big_head(50 * MB))
    for sock in socks:
        with sock:
            answer = answer_and_close(sock, 5)[1]
            assert answer.startswith(b"HTTP/1.1 431 ") or answer == b"", answer[:100]  # a reset may beat the 431
    growth = server.peak_rss() - before
    assert growth < 20 * MB, f"the server grew by {growth / MB:.0f} MB"
    assert httpx.get(f"{server.url}/health").status_code == 200
    server.assert_no_traceback()


@needs_proc
def test_stalled_bodies_are_let_go_at_the_body_timeout(start_server: Callable[..., Server], tmp_path: Path):
    config = write_config(tmp_path, SCRIPTED_CONFIG, ledger=tmp_path / "ledger.sqlite3")
    server = start_server(limit=4_000_000, header_timeout=10, idle_timeout=10, body_timeout=1, config=str(config))
    before = server.peak_rss()
    peaks = []
    for _ in range(3):  # fifty 3.9 MB bodies, stalled after 3.8 MB; three times over
        socks = []
        started = time.monotonic()
        for _ in range(50):
            sock = server.connect()
            sock.sendall(post_head(3_900_000, "/v1/chat/completions") + b"x" * 3_800_000)
            socks.append(sock)
        for sock in socks:
            with sock:
                error_in(answer_and_close(sock, 5)[1], 408, "request_timeout")
        assert time.monotonic() - started < 4
        peaks.append(server.peak_rss() - before)
    # While they stall the bodies are held (~190 MB); once they are closed the next fifty reuse that memory.
    assert peaks[-1] - peaks[0] < 40 * MB, f"peak growth per round: {[round(p / MB) for p in peaks]} MB"
    log = server.assert_no_traceback()
    assert log.count("status=408 error=BodyTimeout") == 150


# --- podium serve ---------------------------------------------------------------------------------


@pytest.fixture
def podium_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("podium")
    handlers, level = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = handlers
    logger.setLevel(level)


def test_run_serve_passes_the_limits_to_uvicorn(monkeypatch: pytest.MonkeyPatch, scripted_config: Path,
                                                podium_logger: logging.Logger):
    import uvicorn

    import podium.server.app

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs, app=app))
    monkeypatch.setattr(podium.server.app, "create_app", lambda settings: "the app")
    serve.run_serve(host=None, port=4100, no_auth=False, config=str(scripted_config))
    protocol = seen["http"]
    assert issubclass(protocol, HeaderTimeoutProtocol) and protocol.header_timeout == 10.0
    assert protocol.body_timeout == 30.0 and protocol.max_header_bytes == 65536
    assert seen["timeout_keep_alive"] == 15.0 and seen["loop"] == "uvloop" and seen["port"] == 4100
    assert seen["access_log"] is False and seen["log_level"] == "warning" and seen["app"] == "the app"
    assert with_header_timeout(2.5).header_timeout == 2.5 and HeaderTimeoutProtocol.header_timeout == 10.0
    other = with_header_timeout(1, body_timeout=4, max_header_bytes=2048)
    assert (other.header_timeout, other.body_timeout, other.max_header_bytes) == (1, 4, 2048)
    assert (HeaderTimeoutProtocol.body_timeout, HeaderTimeoutProtocol.max_header_bytes) == (30.0, 65536)


def test_podium_info_records_go_to_stderr_on_one_line(capsys: pytest.CaptureFixture[str],
                                                      podium_logger: logging.Logger):
    serve.configure_logging("info")
    serve.configure_logging("INFO")  # a second call replaces the handler instead of doubling lines
    logging.getLogger("podium.gateway").info("request %s done", "req_1")
    logging.getLogger("podium.gateway").debug("not shown")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "INFO podium.gateway: request req_1 done" in err
    serve.configure_logging("warning")
    logging.getLogger("podium.gateway").info("quiet now")
    assert capsys.readouterr().err == ""
    with pytest.raises(BadRequestError, match="--log-level"):
        serve.configure_logging("loud")
    assert serve.uvicorn_options(header_timeout=1, idle_timeout=1, log_level="error")["log_level"] == "error"

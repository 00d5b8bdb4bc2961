"""A small real HTTP/1.1 server on loopback, with faults a mock library cannot produce.

It runs on its own thread and event loop, so the code under test talks to it over a real socket
exactly as it would to a vendor. Each request is answered by a handler returning a ``Reply``;
replies can stream chunks (chunked transfer encoding) with delays, and can misbehave on purpose:
reset the connection before or in the middle of the body, hang, or stop a stream half-way.
The server records every request and notices when a client goes away mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Fault = Literal["reset_before_headers", "reset_mid_body", "hang"] | None


@dataclass
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    chunks: list[bytes] | None = None
    chunk_delay: float = 0.0
    fault: Fault = None
    fault_after_chunks: int = 0
    # last, so replies built positionally (status, headers, body, chunks, delay, fault) keep their meaning
    first_chunk_delay: float = 0.0  # before the first chunk only, on top of chunk_delay: a slow first token

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, {"content-type": "application/json", **(headers or {})}, json.dumps(data).encode())


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            408: "Request Timeout", 413: "Payload Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
            529: "Overloaded"}


class WireServer:
    def __init__(self, handler: Callable[[Request], Reply]) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        self.disconnected = threading.Event()
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="wire-server")
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> WireServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop)
        self._server = future.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> WireServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _read_request(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        path, _, query = target.partition("?")
        return Request(method, path, query, headers, body)

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:  # SO_LINGER 0: close sends RST, the client sees "connection reset"
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while (request := await self._read_request(reader)) is not None:
                self.requests.append(request)
                reply = self.handler(request)
                if not await self._write(reply, writer):
                    return
        except ConnectionError:
            self.disconnected.set()
        except asyncio.CancelledError:  # the server is stopping (e.g. a hanging reply): end quietly
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _write(self, reply: Reply, writer: asyncio.StreamWriter) -> bool:
        if reply.fault == "reset_before_headers":
            self._reset(writer)
            return False
        if reply.fault == "hang":
            await asyncio.sleep(3600)
        headers = {"server": "podium-wire-test", **reply.headers}
        if reply.chunks is None:
            headers["content-length"] = str(len(reply.body))
        else:
            headers["transfer-encoding"] = "chunked"
        head = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        writer.write(head.encode("latin-1"))
        if reply.chunks is None:
            if reply.fault == "reset_mid_body":
                writer.write(reply.body[: len(reply.body) // 2])
                await writer.drain()
                self._reset(writer)
                return False
            writer.write(reply.body)
            await writer.drain()
            return True
        for index, chunk in enumerate(reply.chunks):
            if reply.fault == "reset_mid_body" and index == reply.fault_after_chunks:
                await writer.drain()
                self._reset(writer)
                return False
            if index == 0 and reply.first_chunk_delay:
                await asyncio.sleep(reply.first_chunk_delay)
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
            try:
                writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                await writer.drain()
            except ConnectionError:
                self.disconnected.set()
                return False
            if reader_closed(writer):
                self.disconnected.set()
                return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


def reader_closed(writer: asyncio.StreamWriter) -> bool:
    return writer.transport.is_closing()

"""What one HTTP connection may cost the gateway before any route runs: body size, time to send headers.

``BodyLimit`` wraps the whole ASGI app, so every route (chat, feedback, admin, anything added later) gets
the limit without reading the body first: a Content-Length over it is answered at once, before auth or
any other work; otherwise the body is counted as it arrives and reading stops at the limit, so no more
than ``gateway.max_body_bytes`` is ever held, whatever the client declares or streams.

``HeaderTimeoutProtocol`` is uvicorn's httptools protocol plus the one timer it lacks. uvicorn closes a
connection only when it has been idle *after* a response (``timeout_keep_alive``); a connection that
sends nothing, or its headers a byte at a time, is kept for ever, and a few thousand of those exhaust
the process's file descriptors.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from podium.errors import BadRequestError
from podium.types import new_request_id

SETTING = "gateway.max_body_bytes"


class BodyTooLarge(Exception):
    """Raised by the wrapped ``receive`` once the body passes the limit.

    A dedicated exception, not an ``http.disconnect``: Starlette turns a disconnect into ClientDisconnect,
    which a route may treat as "the client left" and which would surface as a 500, while this one is
    caught by BodyLimit alone and becomes the 413. Not a PodiumError, so no route's handler claims it.
    """


class BodyLimit:
    """Pure ASGI middleware: requests whose body is over ``max_body_bytes`` get a 413, on every route."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope["headers"])
        if declared is None:
            await _error(send, 400, "malformed Content-Length header", "invalid_content_length")
            return
        if declared > self.max_body_bytes:
            await _error(send, 413, f"request body is {declared:,} bytes; the limit is {self.max_body_bytes:,} "
                                    f"bytes ({SETTING})", "request_too_large")
            return
        guard = _Guard(receive, send, self.max_body_bytes)
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            # An ExceptionGroup, or whatever a route wrapped it in, counts too: the flag says what happened.
            if not guard.tripped:
                raise
        if guard.tripped and not guard.started:
            await _error(send, 413, f"request body is over the limit of {self.max_body_bytes:,} bytes ({SETTING})",
                         "request_too_large")
        # Tripped after the response started: nothing to say any more; uvicorn closes the unfinished response.


class _Guard:
    """One request's counting ``receive`` and the ``send`` that knows whether the response has started."""

    __slots__ = ("_receive", "_send", "limit", "received", "started", "tripped")

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive, self._send, self.limit = receive, send, limit
        self.received = 0
        self.started = self.tripped = False

    async def receive(self) -> Message:
        if self.tripped:
            raise BodyTooLarge
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:  # the chunk that crosses the limit is dropped, never handed on
                self.tripped = True
                raise BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        if self.tripped and not self.started:
            return  # a route that caught BodyTooLarge and answered itself: the 413 goes out instead
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The declared length (0 when absent), or None when a Content-Length is not one plain number."""
    value: bytes | None = None
    for name, raw in headers:
        if name.lower() == b"content-length":
            raw = raw.strip()
            if not raw.isdigit() or (value is not None and raw != value):
                return None
            value = raw
    if value is None:
        return 0
    return int(value) if len(value) <= 18 else 10**18  # a 4,000-digit number is just "too large"


async def _error(send: Send, status: int, message: str, code: str) -> None:
    """An OpenAI-style error, and ``connection: close``: the body it refers to is unread, so the connection's
    framing is no longer trusted and uvicorn must not go on reading (and discarding) what the client sends."""
    body = orjson.dumps(BadRequestError(message, code=code).to_openai())
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), (b"x-request-id", new_request_id().encode())]})
    await send({"type": "http.response.body", "body": body})


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers take over ``header_timeout``.

    The clock starts when the connection opens, and again when the first byte of a later request arrives
    (uvicorn's keep-alive timer covers the wait before it); it stops when the headers are complete. The
    body is the route's business (BodyLimit caps its size). Use ``with_header_timeout`` for uvicorn's
    ``http=``: uvicorn builds the protocol itself, so the timeout travels as a class attribute.
    """

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        # Between requests any byte cancels uvicorn's keep-alive timer, even bytes that start no request
        # (empty lines, or the rest of a body a route answered without reading): this clock takes over.
        if self._header_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # a pipelined request begins while the previous response is still being written

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_timeout_expired)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout_expired(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class to pass as uvicorn's ``http=``, with this header timeout."""

    class Protocol(HeaderTimeoutProtocol):
        header_timeout = seconds

    return Protocol

"""What one HTTP connection may cost the gateway before any route runs: body size, time to send headers and
body, header size.

``BodyLimit`` wraps the whole ASGI app, so every route (chat, feedback, admin, anything added later) gets
the limit without reading the body first: a Content-Length over it is answered at once, before auth or
any other work; otherwise the body is counted as it arrives and reading stops at the limit, so no more
than ``gateway.max_body_bytes`` is ever held, whatever the client declares or streams.

``HeaderTimeoutProtocol`` is uvicorn's httptools protocol plus the limits it lacks. uvicorn closes a
connection only when it has been idle *after* a response (``timeout_keep_alive``); a connection that
sends nothing, or its headers a byte at a time, or its headers and then part of a body, is kept for
ever (a few thousand of those exhaust the process's file descriptors, and each stalled body holds what
arrived of it); and httptools buffers headers of any size.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from podium.errors import BadRequestError
from podium.server.dialect import error_json_for
from podium.types import new_request_id

SETTING = "gateway.max_body_bytes"
TIMEOUT_SETTING = "gateway.body_timeout"
HEADER_SETTING = "gateway.max_header_bytes"
BODY_CLOCK = "podium.body_clock"  # the scope key of a request's BodyClock


class BodyTooLarge(Exception):
    """Raised by the wrapped ``receive`` once the body passes the limit.

    A dedicated exception, not an ``http.disconnect``: Starlette turns a disconnect into ClientDisconnect,
    which a route may treat as "the client left" and which would surface as a 500, while this one is
    caught by BodyLimit alone and becomes the 413. Not a PodiumError, so no route's handler claims it.
    """


class BodyTimeout(BadRequestError):
    """What the app's ``receive`` raises once the protocol gave up on the body (``gateway.body_timeout``).

    A PodiumError (408), so the gateway's routes log and count it as what it is; the 408 itself is already
    written by the protocol, and the connection closed, so whatever the app answers is dropped, and
    BodyLimit swallows it if nothing else does.
    """

    status = 408


class BodyClock:
    """A request's body deadline, put in its scope (``BODY_CLOCK``) by ``HeaderTimeoutProtocol``: it says
    that the ``http.disconnect`` the app then gets was the server's doing."""

    __slots__ = ("deadline", "expired", "seconds")

    def __init__(self, deadline: float, seconds: float) -> None:
        self.deadline, self.seconds, self.expired = deadline, seconds, False


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
            await _error(send, 400, "malformed Content-Length header", "invalid_content_length", scope["path"])
            return
        if declared > self.max_body_bytes:
            await _error(send, 413, f"request body is {declared:,} bytes; the limit is {self.max_body_bytes:,} "
                                    f"bytes ({SETTING})", "request_too_large", scope["path"])
            return
        guard = _Guard(receive, send, self.max_body_bytes, scope.get(BODY_CLOCK))
        try:
            await self.app(scope, guard.receive, guard.send)
        except Exception:
            # An ExceptionGroup, or whatever a route wrapped it in, counts too: the flags say what happened.
            if not (guard.tripped or guard.timed_out):
                raise
        if guard.tripped and not guard.started:
            await _error(send, 413, f"request body is over the limit of {self.max_body_bytes:,} bytes ({SETTING})",
                         "request_too_large", scope["path"])
        # Tripped after the response started: nothing to say any more; uvicorn closes the unfinished response.


class _Guard:
    """One request's counting ``receive`` and the ``send`` that knows whether the response has started."""

    __slots__ = ("_receive", "_send", "clock", "limit", "received", "started", "timed_out", "tripped")

    def __init__(self, receive: Receive, send: Send, limit: int, clock: BodyClock | None) -> None:
        self._receive, self._send, self.limit, self.clock = receive, send, limit, clock
        self.received = 0
        self.started = self.tripped = self.timed_out = False

    async def receive(self) -> Message:
        if self.tripped:
            raise BodyTooLarge
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:  # the chunk that crosses the limit is dropped, never handed on
                self.tripped = True
                raise BodyTooLarge
        elif self.clock is not None and self.clock.expired:  # the disconnect is the body timeout's
            self.timed_out = True
            raise BodyTimeout(f"the request body did not arrive within {self.clock.seconds:g} s of its headers "
                              f"({TIMEOUT_SETTING})", code="request_timeout")
        return message

    async def send(self, message: Message) -> None:
        if self.timed_out or (self.tripped and not self.started):
            return  # a route that caught the error and answered itself: the 413 goes out instead (the 408 is out)
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


async def _error(send: Send, status: int, message: str, code: str, path: str = "") -> None:
    """An error in the route's API's shape (OpenAI's, or Anthropic's under /v1/messages), and ``connection:
    close``: the body it refers to is unread, so the connection's framing is no longer trusted and uvicorn
    must not go on reading (and discarding) what the client sends."""
    body = orjson.dumps(error_json_for(path, message, status, code))
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"), (b"x-request-id", new_request_id().encode())]})
    await send({"type": "http.response.body", "body": body})


def _raw_error(status: int, message: str, code: str, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The same error as ``_error``, as the bytes a protocol writes itself when no ASGI response can carry it."""
    body = orjson.dumps(BadRequestError(message, code=code).to_openai())
    head = [STATUS_LINE[status]]
    for name, value in default_headers:
        head += [name, b": ", value, b"\r\n"]
    head += [b"content-type: application/json\r\ncontent-length: ", str(len(body)).encode(),
             b"\r\nconnection: close\r\nx-request-id: ", new_request_id().encode(), b"\r\n\r\n", body]
    return b"".join(head)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus three limits: time to send the headers, time to send the body, and
    the size of the headers.

    Header timeout: the clock starts when the connection opens, and again when the first byte of a later
    request arrives (uvicorn's keep-alive timer covers the wait before it); it stops when the headers are
    complete. Past ``header_timeout`` the connection is closed.

    Body timeout: a request whose body did not come with its headers must have all of it within
    ``body_timeout`` of the end of the headers (``on_message_complete``), however it trickles in. Past it
    the protocol writes the 408 itself (unless a response has started: then it only closes) and closes the
    connection; the app, if it is still reading, gets ``http.disconnect``, which ``BodyLimit`` turns into
    ``BodyTimeout`` and then swallows (the request's ``BodyClock`` in the scope says why). Time the server
    itself is not reading the body (a pipelined request waiting its turn, ``Expect: 100-continue`` not yet
    answered) is not the client's: the clock starts afresh once it is (checked every second at most).

    Header size: what arrives for a request before its headers are complete is counted before the parser
    sees it (httptools would buffer any amount); past ``max_header_bytes`` the answer is a 431 and the
    connection is closed. (A request that begins inside a read with the previous one is counted from the
    next read: it may get up to one read, 256 KiB, more.)

    Use ``with_header_timeout`` for uvicorn's ``http=``: uvicorn builds the protocol itself, so the limits
    travel as class attributes.
    """

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_header_bytes: int = 65536
    _header_timer: asyncio.TimerHandle | None = None
    _body_timer: asyncio.TimerHandle | None = None
    _body_clock: BodyClock | None = None  # the request whose body is arriving, once a read ended without all of it
    _body_pending = False  # from the end of a request's headers to the end of its body
    _body_held = False  # the server is not reading the body (see _body_timeout_expired)
    _in_head = True  # from the end of a request (or the connection's start) to the end of the next one's headers
    _head_bytes = 0  # received since then

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes | memoryview) -> None:
        # Between requests any byte cancels uvicorn's keep-alive timer, even bytes that start no request
        # (empty lines, or the rest of a body a route answered without reading): the header clock takes over.
        if self._header_timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()
        if self._in_head:
            room = self.max_header_bytes - self._head_bytes
            if len(data) > room:
                self._head_over(memoryview(data), room)
                return
            self._head_bytes += len(data)
        self._feed(data)

    def _feed(self, data: bytes | memoryview) -> None:
        super().data_received(data)  # type: ignore[arg-type]  # httptools takes any buffer
        if self._body_pending and self._body_clock is None and not self.transport.is_closing():
            # Headers complete, body not: the clock starts (a body that came with its headers costs nothing).
            clock = self._body_clock = BodyClock(self.loop.time() + self.body_timeout, self.body_timeout)
            self._body_held = False
            self.cycle.scope[BODY_CLOCK] = clock  # type: ignore[literal-required]  # before the app's task runs
            self._body_timer = self.loop.call_at(clock.deadline, self._body_timeout_expired)

    def _head_over(self, data: memoryview, room: int) -> None:
        """A read that takes the request's head past the limit: the parser sees only what fits. If the headers
        end in it, the rest goes on as a read of its own; if not, the 431."""
        self._head_bytes = self.max_header_bytes
        self._feed(data[:room])
        if self.transport.is_closing():
            return
        if self._in_head and self._head_bytes == self.max_header_bytes:  # the same head (a new one starts at 0)
            if self.cycle is None or self.cycle.response_complete:  # else a response is being written: just close
                self.transport.write(_raw_error(
                    431, f"the request's headers are over the limit of {self.max_header_bytes:,} bytes "
                         f"({HEADER_SETTING})", "headers_too_large", self.server_state.default_headers))
            self.transport.close()
            return
        self.data_received(data[room:])

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()  # a pipelined request begins while the previous response is still being written

    def on_headers_complete(self) -> None:
        self._disarm()
        self._in_head = False
        super().on_headers_complete()
        # uvicorn made a cycle for this request unless it upgrades it (then another protocol takes the transport).
        self._body_pending = self.cycle is not None and self.cycle.scope is self.scope

    def on_message_complete(self) -> None:
        self._in_head, self._head_bytes = True, 0
        if self._body_pending:
            self._body_pending = False
            self._stop_body_clock()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._stop_body_clock()
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

    def _stop_body_clock(self) -> None:
        self._body_clock = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _body_timeout_expired(self) -> None:
        self._body_timer = None
        clock, cycle = self._body_clock, self.cycle
        if clock is None or self.transport.is_closing():
            return
        if self.pipeline or cycle.waiting_for_100_continue:
            # Not the client's delay: uvicorn reads no more of a pipelined request until its turn comes, and a
            # client that sent ``Expect: 100-continue`` waits until the route asks for the body. Look again
            # in a while; the clock starts afresh once the server is reading.
            self._body_held = True
            self._body_timer = self.loop.call_later(min(self.body_timeout, 1.0), self._body_timeout_expired)
            return
        if self._body_held:
            self._body_held = False
            clock.deadline = self.loop.time() + self.body_timeout
            self._body_timer = self.loop.call_at(clock.deadline, self._body_timeout_expired)
            return
        self._body_clock, self._body_pending = None, False
        clock.expired = True
        if cycle.response_started:  # nothing more to say: a finished response goes out, one cut short does not
            (self.transport.close if cycle.response_complete else self.transport.abort)()
            return
        self.transport.write(_raw_error(
            408, f"the request body did not arrive within {clock.seconds:g} s of its headers ({TIMEOUT_SETTING})",
            "request_timeout", self.server_state.default_headers))
        # The app's own answer, if it makes one, is dropped; a receive it awaits returns http.disconnect now.
        cycle.disconnected = True
        cycle.message_event.set()
        self.transport.close()


def with_header_timeout(seconds: float, *, body_timeout: float = HeaderTimeoutProtocol.body_timeout,
                        max_header_bytes: int = HeaderTimeoutProtocol.max_header_bytes) -> type[HeaderTimeoutProtocol]:
    """The protocol class to pass as uvicorn's ``http=``, with these limits."""

    class Protocol(HeaderTimeoutProtocol):
        header_timeout = seconds

    Protocol.body_timeout, Protocol.max_header_bytes = body_timeout, max_header_bytes
    return Protocol

"""An inbound API the gateway speaks: how its requests become a ``ChatRequest``, and how answers, streams and
errors go back in its own JSON.

Chat Completions (``openai_schema``), Anthropic's Messages API and OpenAI's Responses API are three
dialects over one call path: the same middleware, policy, routing, strategies and ledger serve them,
and only the shapes at the edge differ. A new inbound API is one module implementing this protocol
and one route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from podium.errors import PodiumError
from podium.types import ChatRequest, ChatResponse, StreamChunk

Final = Callable[[], ChatResponse | None]  # the stream's whole answer, once its last chunk is out


async def every_chunk(first: StreamChunk | None, chunks: AsyncIterator[StreamChunk]) -> AsyncIterator[StreamChunk]:
    """The stream again from its first chunk (which the gateway took early to choose the status); nothing when
    the stream had none."""
    if first is None:
        return
    yield first
    async for chunk in chunks:
        yield chunk


@dataclass
class Exchange:
    """One request in a dialect: the ``ChatRequest`` it became and what the dialect keeps for its answer.

    Passed back to the dialect with the answer, the stream and a late error, so a dialect needs no
    hidden per-request state (what its answer repeats of the request, a stream's event count)."""

    request: ChatRequest
    include_usage: bool = False  # end a stream with usage, where the API makes that optional
    notes: list[str] = field(default_factory=list)  # what the request asked for that had no effect
    state: Any = None  # the dialect's own


class Dialect(Protocol):
    name: str

    def parse(self, body: Any, headers: Mapping[str, str]) -> Exchange:
        """The request (a 400 in the dialect's terms for what it cannot take)."""
        ...

    def answer(self, exchange: Exchange, response: ChatResponse) -> dict[str, Any]:
        """A whole answer as the API's JSON body."""
        ...

    def events(self, exchange: Exchange, request_id: str, first: StreamChunk | None,
               chunks: AsyncIterator[StreamChunk], final: Final) -> AsyncIterator[bytes]:
        """A stream's body as server-sent events, ending the way the API ends a stream. ``first`` was
        already taken from ``chunks`` (so a failure before it got its own status)."""
        ...

    def error_body(self, exc: PodiumError) -> dict[str, Any]:
        """An error as the API's JSON (the status is the error's)."""
        ...

    def stream_error(self, exchange: Exchange, exc: PodiumError) -> bytes:
        """An error after the first byte of a stream (the status is already sent): the API's error event(s)."""
        ...



def error_json_for(path: str, message: str, status: int, code: str | None) -> dict[str, Any]:
    """An error in the JSON of the API ``path`` belongs to, for errors raised before any route runs (an
    unknown route or method, a body over the limit): Anthropic's clients read Anthropic's error shape."""
    if path.startswith("/v1/messages"):
        from podium.server.anthropic_messages_api import ERROR_TYPES

        return {"type": "error", "error": {"type": ERROR_TYPES.get(status, "invalid_request_error"),
                                           "message": message}}
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}

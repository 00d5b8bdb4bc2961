"""Anthropic's Messages API as a gateway dialect (``POST /v1/messages``, ``POST /v1/messages/count_tokens``).

The Anthropic SDK and tools built on it (``ANTHROPIC_BASE_URL`` set to the gateway, the Podium key as
``ANTHROPIC_API_KEY``; it arrives as ``x-api-key``, which the gateway reads like a bearer key) reach every
Podium model, alias and strategy through the same middleware, policy and ledger as Chat Completions.
The request side is ``anthropic_messages_request``; this module answers in Anthropic's shapes:

- a ``message`` whose ``id`` is ``msg_`` + Podium's request id (``x-request-id`` and Anthropic's
  ``request-id`` header carry the bare id; ``/v1/feedback`` takes either), text and ``tool_use``
  blocks with parsed ``input``, Anthropic's stop reasons and usage (``input_tokens`` without the
  cached part, which is ``cache_read_input_tokens``, as Anthropic counts);
- the typed stream: ``message_start``, ``ping``, ``content_block_start``/``_delta`` (``text_delta``,
  ``input_json_delta``)/``_stop`` per block in order, ``message_delta`` (stop reason and the whole
  usage: ``message_start`` carries zeros, since no provider reports input tokens before the end),
  ``message_stop``; a failure after the first byte is one ``event: error``;
- errors as ``{"type": "error", "error": {"type", "message"}}`` with the error's own status.

A whole answer also carries Podium's own ``podium`` object (provider, cost, route, notes), as Chat
Completions answers do; the SDK keeps fields it does not know. Podium's stop reasons are coarser than
Anthropic's: a matched stop sequence reads as ``end_turn`` (``stop_sequence`` is always null), and no
thinking blocks are returned (``ChatResponse`` carries no reasoning text).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from podium.catalogue.tokens import count_message_tokens, count_tokens
from podium.client import Podium
from podium.errors import BadRequestError, PodiumError, ProviderUnavailableError
from podium.server.anthropic_messages_request import parse_messages
from podium.server.dialect import Exchange, Final, every_chunk
from podium.server.keys import Keys
from podium.server.middleware.auth import check_scope, identify
from podium.strategies.names import is_strategy
from podium.types import ChatResponse, StreamChunk, ToolCall, Usage

Endpoint = Callable[[Request], Awaitable[Response]]
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal",
         "error": "end_turn"}
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               504: "timeout_error", 529: "overloaded_error"}


def usage_json(usage: Usage) -> dict[str, int]:
    cached = usage.cached_input_tokens
    return {"input_tokens": max(usage.input_tokens - cached, 0), "output_tokens": usage.output_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": cached}


def tool_input(call: ToolCall) -> Any:
    """The call's arguments as the object Anthropic's ``input`` is; text a model got wrong stays visible."""
    try:
        value = orjson.loads(call.function.arguments or "{}")
    except orjson.JSONDecodeError:
        return {"_raw": call.function.arguments}
    return value if isinstance(value, dict) else {"_raw": call.function.arguments}


def message_json(response: ChatResponse, notes: tuple[str, ...] = ()) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": response.text}] if response.text else []
    for call in response.tool_calls or ():
        content.append({"type": "tool_use", "id": call.id, "name": call.function.name, "input": tool_input(call)})
    trace = response.trace
    return {
        "id": f"msg_{response.id}", "type": "message", "role": "assistant", "model": response.model,
        "content": content, "stop_reason": _STOP.get(response.finish_reason, "end_turn"), "stop_sequence": None,
        "usage": usage_json(response.usage),
        "podium": {"provider": response.provider, "cost": response.cost,
                   "route": trace.decision.rationale if trace and trace.decision else None,
                   "notes": [*notes, *(trace.notes if trace else ())]},
    }


def error_json(exc: PodiumError) -> dict[str, Any]:
    kind = "overloaded_error" if isinstance(exc, ProviderUnavailableError) else ERROR_TYPES.get(exc.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": exc.message}}


def _event(name: bytes, data: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class EventWriter:
    """Podium's stream chunks as Anthropic's content blocks: one block open at a time, indexes in order.

    Text opens a text block; a tool call's first piece (its id) opens a ``tool_use`` block, and its
    argument pieces are ``input_json_delta``s on that block (a provider that sends a call whole sends one)."""

    def __init__(self) -> None:
        self.blocks = 0
        self.open: int | None = None  # index of the open block
        self.open_text = False
        self.tools: dict[int, int] = {}  # tool call index -> block index
        self.finish: str | None = None
        self.usage: Usage | None = None

    def _start(self, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self.open, self.blocks = self.blocks, self.blocks + 1
        out.append(_event(b"content_block_start", {"type": "content_block_start", "index": self.open,
                                                   "content_block": block}))
        return out

    def _close(self) -> list[bytes]:
        if self.open is None:
            return []
        index, self.open, self.open_text = self.open, None, False
        return [_event(b"content_block_stop", {"type": "content_block_stop", "index": index})]

    def chunk(self, chunk: StreamChunk) -> list[bytes]:
        out: list[bytes] = []
        if chunk.index:  # Anthropic has no n: only choice 0 exists
            return out
        if chunk.text:
            if not self.open_text:
                out += self._start({"type": "text", "text": ""})
                self.open_text = True
            out.append(_event(b"content_block_delta", {"type": "content_block_delta", "index": self.open,
                                                       "delta": {"type": "text_delta", "text": chunk.text}}))
        for delta in chunk.tool_calls or ():
            block = self.tools.get(delta.index)
            if block is None:
                out += self._start({"type": "tool_use", "id": delta.id or f"toolu_{delta.index}",
                                    "name": delta.name or "", "input": {}})
                block = self.tools[delta.index] = self.blocks - 1
            if delta.arguments:
                out.append(_event(b"content_block_delta", {
                    "type": "content_block_delta", "index": block,
                    "delta": {"type": "input_json_delta", "partial_json": delta.arguments}}))
        if chunk.finish_reason is not None:
            self.finish = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        return out

    def end(self, response: ChatResponse | None) -> list[bytes]:
        out = self._close()
        usage = response.usage if response is not None else self.usage or Usage()
        finish = response.finish_reason if response is not None else self.finish or "stop"
        out.append(_event(b"message_delta", {"type": "message_delta",
                                             "delta": {"stop_reason": _STOP.get(finish, "end_turn"),
                                                       "stop_sequence": None},
                                             "usage": usage_json(usage)}))
        out.append(_event(b"message_stop", {"type": "message_stop"}))
        return out


class AnthropicMessages:
    """The Messages dialect (``POST /v1/messages``)."""

    name = "anthropic.messages"

    def parse(self, body: Any, headers: Mapping[str, str]) -> Exchange:
        request, notes = parse_messages(body, headers)
        return Exchange(request, include_usage=True, notes=list(notes))

    def answer(self, exchange: Exchange, response: ChatResponse) -> dict[str, Any]:
        return message_json(response, tuple(exchange.notes))

    async def events(self, exchange: Exchange, request_id: str, first: StreamChunk | None,
                     chunks: AsyncIterator[StreamChunk], final: Final) -> AsyncIterator[bytes]:
        model = (first.model if first is not None else None) or "podium"
        yield _event(b"message_start", {"type": "message_start", "message": {
            "id": f"msg_{request_id}", "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage_json(Usage())}})
        yield _event(b"ping", {"type": "ping"})
        writer = EventWriter()
        async for chunk in every_chunk(first, chunks):
            for data in writer.chunk(chunk):
                yield data
        for data in writer.end(final()):
            yield data

    def error_body(self, exc: PodiumError) -> dict[str, Any]:
        return error_json(exc)

    def stream_error(self, exchange: Exchange, exc: PodiumError) -> bytes:
        return _event(b"error", error_json(exc))


ANTHROPIC_MESSAGES = AnthropicMessages()


def with_request_id(handler: Endpoint) -> Endpoint:
    """The endpoint, with Anthropic's ``request-id`` header beside ``x-request-id`` (the SDK reads it
    as ``message._request_id``)."""

    async def run(request: Request) -> Response:
        response = await handler(request)
        found = response.headers.get("x-request-id")
        if found is not None:
            response.headers["request-id"] = found
        return response

    return run


class CountTokens:
    """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}`` by Podium's own count for the model
    (``catalogue.tokens``: exact where a tokenizer is on disk, else its documented estimate; images are
    not counted). A routed model or a strategy is counted without a model's tokenizer. The key is checked
    as on chat: required where the gateway requires one, and its scope must allow the model."""

    def __init__(self, podium: Podium, keys: Keys) -> None:
        g = podium.settings.gateway
        self.podium, self.keys = podium, keys
        self.required = g.auth == "required" and "auth" in g.middleware

    async def __call__(self, request: Request) -> Response:
        request.state.dialect = ANTHROPIC_MESSAGES  # errors in Anthropic's JSON
        from podium.server.app import bearer  # app imports this module: its helpers are looked up late

        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise BadRequestError(f"the body is not valid JSON: {exc}") from None
        key = await identify(self.keys, bearer(request) or None, required=self.required)
        chat, _ = parse_messages(body, request.headers, counting=True)
        check_scope(key, chat.model, self.podium.policies.allows)
        catalogue = self.podium.settings.catalogue
        model = None
        if chat.model is not None and not is_strategy(chat.model, self.podium.settings.strategies):
            model = catalogue.find(chat.model)
            if model is None:
                catalogue.refuse(chat.model)
        tokens = count_message_tokens(chat.messages, model)
        for message in chat.messages:
            for call in message.tool_calls or ():
                tokens += count_tokens(call.function.name + call.function.arguments, model)
        if chat.tools:
            tokens += count_tokens(orjson.dumps([t.model_dump(exclude_none=True) for t in chat.tools]).decode(), model)
        return Response(orjson.dumps({"input_tokens": tokens}), media_type="application/json",
                        headers={"x-request-id": request.state.request_id, "request-id": request.state.request_id})

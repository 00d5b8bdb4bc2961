"""OpenAI's Responses API (``POST /v1/responses``) as a gateway dialect, stateless.

Requests are read by ``responses_input`` into the one ``ChatRequest`` every dialect makes; answers
go back as the Responses ``response`` object (platform.openai.com/docs/api-reference/responses/object):
``output`` holds a ``message`` item with ``output_text`` content and one ``function_call`` item per
tool call (its ``call_id`` is the upstream's tool call id, which the client sends back in its
``function_call_output``), ``status`` is ``incomplete`` with ``incomplete_details`` when the answer
was cut (``max_output_tokens``, ``content_filter``), ``usage`` counts input, output, cached and
reasoning tokens. The id is ``resp_`` + Podium's request id, so ``/v1/feedback`` and the ledger
know it.

A stream is the API's typed events, numbered by ``sequence_number``: ``response.created``,
``response.in_progress``, per item ``response.output_item.added`` … ``done`` (a message's
``content_part`` and ``output_text`` deltas, a call's ``function_call_arguments`` deltas), and one
terminal event carrying the whole response with its usage: ``response.completed``,
``response.incomplete``, or, for a failure after the first byte, an ``error`` event followed by
``response.failed``. Items are opened and closed in order, as OpenAI sends them: text, then each
tool call.

The response object echoes the request's parameters (instructions, tools, tool choice, sampling,
text format, …) while ``Dialect.answer`` is given only the answer. ``parse`` therefore leaves the
echo in a context variable: the gateway parses, answers and streams a request within one task (a
stream in a task started from it, which inherits the variable), so each request reads its own.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from podium.errors import BadRequestError, PodiumError, RateLimitedError
from podium.server.dialect import Exchange, Final, every_chunk
from podium.server.responses_input import LOGPROBS, parse
from podium.server.responses_items import InvalidParameter
from podium.types import ChatResponse, StreamChunk, ToolCall, Usage

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass(slots=True)
class Turn:
    """One request as the response object repeats it, and its stream's position (``Exchange.state``)."""

    echo: dict[str, Any]
    logprobs: bool = False
    notes: list[str] = field(default_factory=list)  # what the request asked for without effect
    created: float = field(default_factory=time.time)
    stream: ResponseStream | None = None




# The response object's fields in the API's order, with its defaults; each answer copies it once.
_TEMPLATE: dict[str, Any] = {
    "id": "", "object": "response", "created_at": 0, "status": "completed", "background": False, "error": None,
    "incomplete_details": None, "model": "", "output": [], "instructions": None, "max_output_tokens": None,
    "max_tool_calls": None, "metadata": {}, "parallel_tool_calls": True, "previous_response_id": None,
    "reasoning": {"effort": None, "summary": None}, "service_tier": None, "store": False, "temperature": None,
    "text": {"format": {"type": "text"}, "verbosity": "medium"}, "tool_choice": "auto", "tools": [],
    "top_logprobs": None, "top_p": None, "truncation": "disabled", "user": None, "prompt_cache_key": None,
    "safety_identifier": None, "usage": None, "completed_at": None,
}
_ECHOED = frozenset({"instructions", "max_output_tokens", "max_tool_calls", "metadata", "service_tier", "temperature",
                     "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user", "prompt_cache_key",
                     "safety_identifier"})


def _echo(body: Mapping[str, Any]) -> dict[str, Any]:
    """The response object's defaults with the request's parameters over them (an answer fills in the rest)."""
    echo = dict(_TEMPLATE)
    for name in _ECHOED.intersection(body):
        if body[name] is not None:
            echo[name] = body[name]
    if body.get("parallel_tool_calls") is False:
        echo["parallel_tool_calls"] = False
    text = body.get("text")
    if text:
        echo["text"] = {"format": text.get("format") or {"type": "text"},
                        "verbosity": text.get("verbosity") or "medium"}
    reasoning = body.get("reasoning")
    if reasoning:
        echo["reasoning"] = {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")}
    return echo


def usage_json(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_input_tokens, "cache_write_tokens": 0},
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.total_tokens}


def _logprobs(chat: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Chat Completions' ``{"content": [{token, logprob, bytes, top_logprobs}]}`` as output_text's list."""
    return list((chat or {}).get("content") or [])


def _rid(request_id: str) -> str:
    return request_id.removeprefix("req_")


def _text_part(text: str, logprobs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs}


def _call_item(item_id: str, call: ToolCall) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": "completed", "call_id": call.id,
            "name": call.function.name, "arguments": call.function.arguments}


def _response(turn: Turn, request_id: str, model: str, status: str, output: list[dict[str, Any]],
              usage: Usage | None, incomplete: str | None = None,
              error: dict[str, Any] | None = None) -> dict[str, Any]:
    body = dict(turn.echo)
    body["id"] = f"resp_{request_id}"
    body["created_at"] = int(turn.created)
    body["status"] = status
    body["model"] = model
    body["output"] = output
    if error is not None:
        body["error"] = error
    if incomplete:
        body["incomplete_details"] = {"reason": incomplete}
    if usage is not None:
        body["usage"] = usage_json(usage)
    if status == "completed":
        body["completed_at"] = int(time.time())
    return body


def response_json(response: ChatResponse, turn: Turn | None = None) -> dict[str, Any]:
    """A whole answer as the Responses ``response`` object."""
    turn = turn or Turn(_echo({}))
    rid = _rid(response.id)
    incomplete = _INCOMPLETE.get(response.finish_reason)
    output: list[dict[str, Any]] = []
    refusal = response.message_extras.get("refusal")
    if response.text or refusal or not response.tool_calls:
        content = [_text_part(response.text, _logprobs(response.logprobs) if turn.logprobs else [])] \
            if response.text or not refusal else []
        if refusal:
            content.append({"type": "refusal", "refusal": refusal})
        output.append({"id": f"msg_{rid}_0", "type": "message", "role": "assistant",
                       "status": "incomplete" if incomplete else "completed", "content": content})
    for call in response.tool_calls or []:
        output.append(_call_item(f"fc_{rid}_{len(output)}", call))
    body = _response(turn, response.id, response.model, "incomplete" if incomplete else "completed", output,
                     response.usage, incomplete)
    body["podium"] = {"provider": response.provider, "cost": response.cost,
                      "route": response.trace.decision.rationale if response.trace and response.trace.decision
                      else None, "notes": [*turn.notes, *(response.trace.notes if response.trace else ())]}
    return body


def _error_code(exc: PodiumError) -> str:
    """The closest of the codes a failed response's ``error.code`` may have."""
    if isinstance(exc, RateLimitedError):
        return "rate_limit_exceeded"
    return "invalid_prompt" if isinstance(exc, BadRequestError) else "server_error"


class ResponseStream:
    """One stream's events: items opened and closed in order, every event numbered."""

    def __init__(self, turn: Turn, request_id: str, model: str) -> None:
        self.turn, self.request_id, self.model = turn, request_id, model
        self.rid = _rid(request_id)
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None  # the item whose deltas are arriving
        self.text: list[str] = []
        self.logprobs: list[dict[str, Any]] = []
        self.calls: dict[int, dict[str, Any]] = {}  # the stream's tool call index → its item
        self.finish: str | None = None

    def event(self, kind: str, data: dict[str, Any]) -> bytes:
        data["type"] = kind
        data["sequence_number"] = self.sequence
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def snapshot(self, status: str, usage: Usage | None = None, incomplete: str | None = None,
                 error: dict[str, Any] | None = None) -> dict[str, Any]:
        return _response(self.turn, self.request_id, self.model, status, list(self.output), usage, incomplete,
                         error)

    def start(self) -> list[bytes]:
        """``response.created`` and ``response.in_progress``: one snapshot, serialised once for both."""
        snapshot = orjson.dumps(self.snapshot("in_progress"))
        return [self._lifecycle(kind, snapshot) for kind in ("response.created", "response.in_progress")]

    def _lifecycle(self, kind: str, snapshot: bytes) -> bytes:
        sequence = self.sequence
        self.sequence += 1
        return (b"event: " + kind.encode() + b'\ndata: {"response":' + snapshot + b',"type":"' + kind.encode() +
                b'","sequence_number":' + str(sequence).encode() + b"}\n\n")

    def _added(self, item: dict[str, Any]) -> bytes:
        self.open = item
        self.output.append(item)
        return self.event("response.output_item.added", {"output_index": len(self.output) - 1, "item": item})

    def _open_message(self) -> list[bytes]:
        item = {"id": f"msg_{self.rid}_{len(self.output)}", "type": "message", "role": "assistant",
                "status": "in_progress", "content": []}
        self.text, self.logprobs = [], []
        events = [self._added(item)]
        events.append(self.event("response.content_part.added", {
            "item_id": item["id"], "output_index": len(self.output) - 1, "content_index": 0,
            "part": _text_part("", [])}))
        return events

    def close(self, status: str = "completed") -> list[bytes]:
        """The open item's closing events."""
        item, self.open = self.open, None
        if item is None:
            return []
        index = self.output.index(item)
        item["status"] = status
        events = []
        if item["type"] == "message":
            text = "".join(self.text)
            part = _text_part(text, self.logprobs)
            item["content"] = [part]
            events.append(self.event("response.output_text.done", {
                "item_id": item["id"], "output_index": index, "content_index": 0, "text": text,
                "logprobs": self.logprobs}))
            events.append(self.event("response.content_part.done", {
                "item_id": item["id"], "output_index": index, "content_index": 0, "part": part}))
        else:
            events.append(self.event("response.function_call_arguments.done", {
                "item_id": item["id"], "output_index": index, "name": item["name"],
                "arguments": item["arguments"]}))
        events.append(self.event("response.output_item.done", {"output_index": index, "item": item}))
        return events

    def chunk(self, chunk: StreamChunk) -> list[bytes]:
        if chunk.index:  # the Responses API has no n: only choice 0 exists
            return []
        events: list[bytes] = []
        if chunk.model:
            self.model = chunk.model
        if chunk.finish_reason is not None:
            self.finish = chunk.finish_reason
        if chunk.text:
            if self.open is None or self.open["type"] != "message":
                events += self.close()
                events += self._open_message()
            assert self.open is not None
            logprobs = _logprobs(chunk.logprobs) if self.turn.logprobs else []
            self.text.append(chunk.text)
            self.logprobs += logprobs
            events.append(self.event("response.output_text.delta", {
                "item_id": self.open["id"], "output_index": len(self.output) - 1, "content_index": 0,
                "delta": chunk.text, "logprobs": logprobs}))
        for delta in chunk.tool_calls or []:
            item = self.calls.get(delta.index)
            if item is None:
                events += self.close()
                index = len(self.output)
                item = self.calls[delta.index] = {
                    "id": f"fc_{self.rid}_{index}", "type": "function_call", "status": "in_progress",
                    "call_id": delta.id or f"call_{self.rid}_{index}", "name": delta.name or "", "arguments": ""}
                events.append(self._added(item))
            elif delta.name and not item["name"]:
                item["name"] = delta.name
            if delta.arguments:
                item["arguments"] += delta.arguments
                events.append(self.event("response.function_call_arguments.delta", {
                    "item_id": item["id"], "output_index": self.output.index(item), "delta": delta.arguments}))
        return events

    def end(self, response: ChatResponse | None) -> list[bytes]:
        """The open item closed, then the terminal event with the whole response and its usage."""
        finish = response.finish_reason if response is not None else self.finish
        incomplete = _INCOMPLETE.get(finish or "stop")
        status = "incomplete" if incomplete else "completed"
        events = []
        if not self.output:  # an empty answer is still one (empty) message, as without streaming
            events += self._open_message()
        events += self.close(status if self.open is not None and self.open["type"] == "message" else "completed")
        if response is not None:
            self.model = response.model
        body = self.snapshot(status, response.usage if response is not None else Usage(), incomplete)
        events.append(self.event(f"response.{status}", {"response": body}))
        return events

    def fail(self, exc: PodiumError) -> bytes:
        """An ``error`` event, then ``response.failed`` with the output so far."""
        error = self.event("error", {"code": exc.code or exc.error_type, "message": exc.message,
                                     "param": getattr(exc, "param", None)})
        failed = self.snapshot("failed", error={"code": _error_code(exc), "message": exc.message})
        return error + self.event("response.failed", {"response": failed})


class Responses:
    """The Responses dialect (``POST /v1/responses``)."""

    name = "responses"

    def parse(self, body: Any, headers: Mapping[str, str]) -> Exchange:
        request, notes = parse(body, headers)
        include = body.get("include") or ()
        turn = Turn(_echo(body), LOGPROBS in include or bool(body.get("top_logprobs")), notes)
        return Exchange(request, include_usage=True, notes=notes, state=turn)  # the last event carries usage

    def answer(self, exchange: Exchange, response: ChatResponse) -> dict[str, Any]:
        return response_json(response, exchange.state)

    async def events(self, exchange: Exchange, request_id: str, first: StreamChunk | None,
                     chunks: AsyncIterator[StreamChunk], final: Final) -> AsyncIterator[bytes]:
        turn: Turn = exchange.state
        stream = turn.stream = ResponseStream(turn, request_id,
                                              (first.model if first is not None else None) or "podium")
        for data in stream.start():
            yield data
        async for chunk in every_chunk(first, chunks):
            for data in stream.chunk(chunk):
                yield data
        for data in stream.end(final()):
            yield data

    def error_body(self, exc: PodiumError) -> dict[str, Any]:
        return {"error": {"message": exc.message, "type": exc.error_type,
                          "param": exc.param if isinstance(exc, InvalidParameter) else None, "code": exc.code}}

    def stream_error(self, exchange: Exchange, exc: PodiumError) -> bytes:
        turn: Turn = exchange.state
        stream = turn.stream or ResponseStream(turn, "req_unknown", "podium")
        return stream.fail(exc)


RESPONSES = Responses()

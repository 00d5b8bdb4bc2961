"""OpenAI Chat Completions JSON ⇄ Podium types, for the gateway (platform.openai.com/docs/api-reference/chat).

Podium's own request metadata (task type, sensitivity, tags, preset) rides in OpenAI's ``metadata``
object (string values) or in ``X-Podium-*`` headers, so unmodified OpenAI clients can send it.
Every field of the current API is accepted; what each outbound wire then does with it (sent,
translated, dropped with a note, refused with a 400) is ``podium.request_fields``'s table. A field
OpenAI does not define is a 400 naming it, as OpenAI itself answers.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from podium.errors import BadRequestError, PodiumError
from podium.json_depth import MAX_DEPTH, json_depth
from podium.request_fields import EXTRA_FIELDS, FIELDS
from podium.server.dialect import Exchange, Final, every_chunk
from podium.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    StreamChunk,
    ToolCallDelta,
    Usage,
    describe_validation_error,
)

KNOWN = frozenset(FIELDS)
_TYPED = ("messages", "temperature", "top_p", "stop", "seed", "n", "tools", "tool_choice", "response_format",
          "frequency_penalty", "presence_penalty", "parallel_tool_calls", "reasoning_effort", "logprobs",
          "top_logprobs")
ROUTED = frozenset({"", "auto", "podium", "default"})
_HEADERS = {"x-podium-task-type": "task_type", "x-podium-sensitivity": "sensitivity", "x-podium-tags": "tags",
            "x-podium-preset": "preset", "x-podium-router-knob": "router_knob"}

_INTS = ("n", "max_tokens", "max_completion_tokens", "seed", "top_logprobs")
_NUMBERS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")


def _check_types(body: dict[str, Any]) -> None:
    """The top-level fields' JSON types, as OpenAI checks them: ``"stream": "false"`` is not a boolean."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise BadRequestError("'model' must be a string", code="invalid_type")
    for name in ("stream", "logprobs", "parallel_tool_calls", "store"):
        if body.get(name) is not None and not isinstance(body[name], bool):
            raise BadRequestError(f"'{name}' must be a boolean (true or false), not {type(body[name]).__name__}",
                                  code="invalid_type")
    for name in _INTS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadRequestError(f"'{name}' must be an integer", code="invalid_type")
    for name in _NUMBERS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BadRequestError(f"'{name}' must be a number", code="invalid_type")
    if body.get("tool_choice") is not None and not body.get("tools"):
        raise BadRequestError("'tool_choice' is only allowed when 'tools' are specified", code="invalid_value")
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or not isinstance(options.get("include_usage", False),
                                                                                  bool)):
        raise BadRequestError("'stream_options' must be an object like {\"include_usage\": true}",
                              code="invalid_type")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise BadRequestError("'user' must be a string", code="invalid_type")
    # Only the free-form fields can nest without bound (the rest have fixed shapes that validation checks)
    for name in ("tools", "tool_choice", "response_format", *EXTRA_FIELDS):
        value = body.get(name)
        if isinstance(value, dict | list) and json_depth(value) > MAX_DEPTH:
            raise BadRequestError(f"'{name}' nests JSON deeper than {MAX_DEPTH} levels", code="too_deep")


def _without_cache_control(messages: Any) -> Any:
    """The messages without Anthropic's ``cache_control`` hints, which clients written for several vendors
    (LangChain, OpenCode, LiteLLM's users) put on Chat Completions messages and content parts. A hint
    about caching, not content: accepted and left out, as OpenAI-compatible hosts do."""
    if not isinstance(messages, list):
        return messages
    out = messages
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        marked = "cache_control" in message or (
            isinstance(content, list) and any(isinstance(p, dict) and "cache_control" in p for p in content))
        if not marked:
            continue
        if out is messages:
            out = list(messages)
        copy = {k: v for k, v in message.items() if k != "cache_control"}
        if isinstance(content, list):
            copy["content"] = [{k: v for k, v in p.items() if k != "cache_control"} if isinstance(p, dict) else p
                               for p in content]
        out[i] = copy
    return out


def parse_request(body: Any, headers: Mapping[str, str]) -> tuple[ChatRequest, bool]:
    """The ChatRequest, and whether the client asked for usage in the stream."""
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    unknown = body.keys() - KNOWN
    if unknown:
        raise BadRequestError(f"Unrecognized request argument supplied: {', '.join(sorted(unknown))[:200]}",
                              code="unknown_parameter")
    _check_types(body)
    meta: dict[str, Any] = {}
    raw_meta = body.get("metadata") or {}
    if not isinstance(raw_meta, dict) or not all(isinstance(v, str) for v in raw_meta.values()):
        raise BadRequestError("metadata must be an object of strings", code="invalid_type")
    for key in ("task_type", "sensitivity", "preset", "router_knob"):
        if raw_meta.get(key):
            meta[key] = raw_meta[key]
    if raw_meta.get("tags"):
        meta["tags"] = [t.strip() for t in str(raw_meta["tags"]).split(",") if t.strip()]
    for header, field in _HEADERS.items():
        value = headers.get(header)
        if value:
            meta[field] = [t.strip() for t in value.split(",") if t.strip()] if field == "tags" else value
    if body.get("user"):
        meta["user"] = body["user"]
    model = body.get("model")
    fields = {k: body[k] for k in _TYPED if body.get(k) is not None}
    if "messages" in fields:
        fields["messages"] = _without_cache_control(fields["messages"])
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    extra = {k: body[k] for k in EXTRA_FIELDS.intersection(body) if body[k] is not None}
    tools = body.get("tools")
    if isinstance(tools, list) and any(isinstance(t, dict) and t.get("type", "function") != "function" for t in tools):
        # custom tools: Podium's own code sees the function tools; the OpenAI wire gets the whole list
        extra["tools"] = tools
        fields["tools"] = [t for t in tools if isinstance(t, dict) and t.get("type", "function") == "function"] \
            or None
        if fields["tools"] is None:
            del fields["tools"]
    if raw_meta and body.get("store"):
        extra["metadata"] = raw_meta  # OpenAI's own use of metadata: tags on a stored completion
    if extra:
        fields["extra"] = extra
    try:
        request = ChatRequest.model_validate({**fields, "model": None if model in ROUTED or model is None else model,
                                              "stream": bool(body.get("stream")), "metadata": meta})
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error(exc)) from None
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    return request, include_usage


def usage_json(usage: Usage) -> dict[str, Any]:
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}


def _finish(reason: str) -> str:
    return "stop" if reason == "error" else reason


def _choice(index: int, text: str, tool_calls: Any, finish: str, logprobs: Any,
            extras: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, **extras}
    if tool_calls:
        message["tool_calls"] = [call.openai_json() for call in tool_calls]
        message["content"] = text or None
    return {"index": index, "message": message, "logprobs": logprobs, "finish_reason": _finish(finish)}


def completion_json(response: ChatResponse) -> dict[str, Any]:
    first = _choice(0, response.text, response.tool_calls, response.finish_reason, response.logprobs,
                    response.message_extras)
    more: list[Choice] = response.more_choices
    return {
        "id": f"chatcmpl-{response.id}", "object": "chat.completion", "created": int(response.created),
        "model": response.model, "system_fingerprint": None,
        "choices": [first, *(_choice(c.index, c.text, c.tool_calls, c.finish_reason, c.logprobs, c.message_extras)
                             for c in more)] if more else [first],
        "usage": usage_json(response.usage),
        "podium": {"provider": response.provider, "cost": response.cost,
                   "route": response.trace.decision.rationale if response.trace and response.trace.decision else None,
                   "notes": response.trace.notes if response.trace else []},
    }


def _call_delta(d: ToolCallDelta) -> dict[str, Any]:
    """A streamed piece of a tool call in OpenAI's shape: a function's arguments, a custom tool's input."""
    name = {"name": d.name} if d.name else {}
    body: dict[str, Any] = {"custom": {**name, "input": d.arguments}} if d.type == "custom" else \
        {"function": {**name, "arguments": d.arguments}}
    return {"index": d.index, **({"id": d.id, "type": d.type} if d.id else {}), **body}


class ChunkWriter:
    """Renders a stream's chunks in OpenAI's ``chat.completion.chunk`` shape."""

    def __init__(self, request_id: str, model: str) -> None:
        self.head = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": model, "system_fingerprint": None}
        self._started: set[int] = set()

    def role(self) -> dict[str, Any]:
        return {**self.head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                          "logprobs": None, "finish_reason": None}]}

    def chunk(self, chunk: StreamChunk) -> dict[str, Any] | None:
        delta: dict[str, Any] = {}
        index = chunk.index
        if index and index not in self._started:  # choice 0's role went out first; the others' with their first
            self._started.add(index)
            delta["role"] = "assistant"
        if chunk.text:
            delta["content"] = chunk.text
        if chunk.tool_calls:
            delta["tool_calls"] = [_call_delta(d) for d in chunk.tool_calls]
        if not delta and chunk.finish_reason is None and chunk.logprobs is None:
            return None
        reason = chunk.finish_reason if chunk.finish_reason != "error" else "stop"
        return {**self.head, "choices": [{"index": index, "delta": delta, "logprobs": chunk.logprobs,
                                          "finish_reason": reason}]}

    def usage(self, usage: Usage) -> dict[str, Any]:
        return {**self.head, "choices": [], "usage": usage_json(usage)}


class ChatCompletions:
    """The Chat Completions dialect (``POST /v1/chat/completions``)."""

    name = "chat.completions"

    def parse(self, body: Any, headers: Mapping[str, str]) -> Exchange:
        request, include_usage = parse_request(body, headers)
        return Exchange(request, include_usage)

    def answer(self, exchange: Exchange, response: ChatResponse) -> dict[str, Any]:
        return completion_json(response)

    async def events(self, exchange: Exchange, request_id: str, first: StreamChunk | None,
                     chunks: AsyncIterator[StreamChunk], final: Final) -> AsyncIterator[bytes]:
        writer = ChunkWriter(request_id, (first.model if first is not None else None) or "podium")
        yield b"data: " + orjson.dumps(writer.role()) + b"\n\n"
        async for chunk in every_chunk(first, chunks):
            data = writer.chunk(chunk)
            if data is not None:
                yield b"data: " + orjson.dumps(data) + b"\n\n"
        response = final()
        if exchange.include_usage and response is not None:
            yield b"data: " + orjson.dumps(writer.usage(response.usage)) + b"\n\n"
        yield b"data: [DONE]\n\n"

    def error_body(self, exc: PodiumError) -> dict[str, Any]:
        return exc.to_openai()

    def stream_error(self, exchange: Exchange, exc: PodiumError) -> bytes:
        return b"data: " + orjson.dumps(exc.to_openai()) + b"\n\n"


CHAT_COMPLETIONS = ChatCompletions()

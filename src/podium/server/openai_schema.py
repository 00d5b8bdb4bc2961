"""OpenAI Chat Completions JSON ⇄ Podium types, for the gateway (platform.openai.com/docs/api-reference/chat).

Podium's own request metadata (task type, sensitivity, tags, preset) rides in OpenAI's ``metadata``
object (string values) or in ``X-Podium-*`` headers, so unmodified OpenAI clients can send it.
Parameters OpenAI defines that Podium does not use are accepted and ignored; anything else is a 400
naming the parameter, as OpenAI itself answers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from podium.errors import BadRequestError
from podium.types import ChatRequest, ChatResponse, StreamChunk, Usage, describe_validation_error

IGNORED = frozenset({"frequency_penalty", "presence_penalty", "logit_bias", "logprobs", "top_logprobs",
                     "parallel_tool_calls", "store", "service_tier", "modalities", "audio", "prediction",
                     "reasoning_effort", "verbosity", "web_search_options", "prompt_cache_key", "safety_identifier",
                     "functions", "function_call"})
ROUTED = frozenset({"", "auto", "podium", "default"})
_HEADERS = {"x-podium-task-type": "task_type", "x-podium-sensitivity": "sensitivity", "x-podium-tags": "tags",
            "x-podium-preset": "preset"}


MAX_DEPTH = 64  # JSON nesting a request may have (tool schemas need ~20); deeper is refused, not recursed into
_INTS = ("n", "max_tokens", "max_completion_tokens", "seed", "top_logprobs")
_NUMBERS = ("temperature", "top_p", "frequency_penalty", "presence_penalty")


def json_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """The nesting depth of ``value``, counted without recursion and stopping past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return depth
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


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
    options = body.get("stream_options")
    if options is not None and (not isinstance(options, dict) or not isinstance(options.get("include_usage", False),
                                                                                  bool)):
        raise BadRequestError("'stream_options' must be an object like {\"include_usage\": true}",
                              code="invalid_type")
    if body.get("user") is not None and not isinstance(body["user"], str):
        raise BadRequestError("'user' must be a string", code="invalid_type")
    # Only the free-form fields can nest without bound (the rest have fixed shapes that validation checks)
    for name in ("tools", "tool_choice", "response_format"):
        value = body.get(name)
        if isinstance(value, dict | list) and json_depth(value) > MAX_DEPTH:
            raise BadRequestError(f"'{name}' nests JSON deeper than {MAX_DEPTH} levels", code="too_deep")


def parse_request(body: Any, headers: Mapping[str, str]) -> tuple[ChatRequest, bool]:
    """The ChatRequest, and whether the client asked for usage in the stream."""
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    unknown = set(body) - IGNORED - {"messages", "model", "temperature", "top_p", "max_tokens",
                                     "max_completion_tokens", "stop", "seed", "n", "tools", "tool_choice",
                                     "response_format", "stream", "stream_options", "user", "metadata"}
    if unknown:
        raise BadRequestError(f"Unrecognized request argument supplied: {', '.join(sorted(unknown))[:200]}",
                              code="unknown_parameter")
    _check_types(body)
    meta: dict[str, Any] = {}
    raw_meta = body.get("metadata") or {}
    if not isinstance(raw_meta, dict) or not all(isinstance(v, str) for v in raw_meta.values()):
        raise BadRequestError("metadata must be an object of strings", code="invalid_type")
    for key in ("task_type", "sensitivity", "preset"):
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
    fields = {k: body[k] for k in ("messages", "temperature", "top_p", "stop", "seed", "n", "tools",
                                   "tool_choice", "response_format") if body.get(k) is not None}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
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


def completion_json(response: ChatResponse) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.text, "refusal": None}
    if response.tool_calls:
        message["tool_calls"] = [call.model_dump() for call in response.tool_calls]
        message["content"] = response.text or None
    return {
        "id": f"chatcmpl-{response.id}", "object": "chat.completion", "created": int(response.created),
        "model": response.model, "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": "stop" if response.finish_reason == "error" else response.finish_reason}],
        "usage": usage_json(response.usage),
        "podium": {"provider": response.provider, "cost": response.cost,
                   "route": response.trace.decision.rationale if response.trace and response.trace.decision else None,
                   "notes": response.trace.notes if response.trace else []},
    }


class ChunkWriter:
    """Renders a stream's chunks in OpenAI's ``chat.completion.chunk`` shape."""

    def __init__(self, request_id: str, model: str) -> None:
        self.head = {"id": f"chatcmpl-{request_id}", "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": model, "system_fingerprint": None}

    def role(self) -> dict[str, Any]:
        return {**self.head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                          "logprobs": None, "finish_reason": None}]}

    def chunk(self, chunk: StreamChunk) -> dict[str, Any] | None:
        delta: dict[str, Any] = {}
        if chunk.text:
            delta["content"] = chunk.text
        if chunk.tool_calls:
            delta["tool_calls"] = [
                {"index": d.index, **({"id": d.id, "type": "function"} if d.id else {}),
                 "function": {**({"name": d.name} if d.name else {}), "arguments": d.arguments}}
                for d in chunk.tool_calls]
        if not delta and chunk.finish_reason is None:
            return None
        reason = chunk.finish_reason if chunk.finish_reason != "error" else "stop"
        return {**self.head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}]}

    def usage(self, usage: Usage) -> dict[str, Any]:
        return {**self.head, "choices": [], "usage": usage_json(usage)}

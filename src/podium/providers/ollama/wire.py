"""Ollama /api/chat as pure translation (github.com/ollama/ollama/blob/main/docs/api.md).

Streaming is newline-delimited JSON, one object per line, the last with ``"done": true`` and the
counts: ``prompt_eval_count`` (input) and ``eval_count`` (output). Options use llama.cpp names
(``num_predict`` for max tokens; ``seed``, ``presence_penalty`` and ``frequency_penalty`` as they are).
Images are bare base64 strings in ``images``; tool calls arrive whole (arguments as an object), never
as fragments. ``developer`` messages go as ``system``, the only instruction role Ollama has.

Ollama has no ``tool_choice``: ``none`` is kept by sending no tools; the other choices cannot be.
``response_format`` is ``format``: ``"json"``, or the JSON schema itself. ``reasoning_effort`` is
``think``: a level (``low`` / ``medium`` / ``high``) for gpt-oss, which takes only levels and always
thinks, else ``false`` for ``none`` and ``true`` for any effort. The thinking itself arrives in
``message.thinking`` and never in the answer text.
"""

from __future__ import annotations

import json
from typing import Any

from podium.json_depth import arguments_object
from podium.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    FunctionCall,
    ImagePart,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    Usage,
    split_data_url,
)

# Plain constructors: in pydantic 2.14 validating a chunk (2.4 µs) is cheaper than model_construct (5.5 µs).
_chunk = StreamChunk
_delta = ToolCallDelta

_LEVELS = {"none": "low", "minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}


def _arguments(text: str) -> dict[str, Any]:
    """A history tool call's arguments as the object Ollama takes; badly written ones kept under ``_raw``."""
    return arguments_object(text)


def think(effort: str, model_id: str) -> bool | str:
    """Ollama's ``think`` for an OpenAI ``reasoning_effort``."""
    if "gpt-oss" in model_id:
        return _LEVELS[effort]
    return effort != "none"


def request_body(request: ChatRequest, model_id: str, *, stream: bool) -> dict[str, Any]:
    messages = []
    for m in request.messages:
        out: dict[str, Any] = {"role": "system" if m.is_system else m.role, "content": m.text}
        if isinstance(m.content, list):
            images = [inline[1] for p in m.content if isinstance(p, ImagePart)
                      if (inline := split_data_url(p.image_url.url))]
            if images:
                out["images"] = images
        if m.tool_calls:
            out["tool_calls"] = [{"function": {"name": c.function.name, "arguments": _arguments(c.function.arguments)}}
                                 for c in m.tool_calls]
        if m.role == "tool" and m.name:
            out["tool_name"] = m.name
        messages.append(out)
    body: dict[str, Any] = {"model": model_id, "messages": messages, "stream": stream}
    options: dict[str, Any] = {}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "top_p"), ("max_tokens", "num_predict"),
                         ("stop", "stop"), ("seed", "seed"), ("presence_penalty", "presence_penalty"),
                         ("frequency_penalty", "frequency_penalty")):
        value = getattr(request, ours)
        if value is not None:
            options[theirs] = value
    if options:
        body["options"] = options
    fmt = request.response_format or {}
    if fmt.get("type") == "json_object":
        body["format"] = "json"
    elif fmt.get("type") == "json_schema":
        body["format"] = (fmt.get("json_schema") or {}).get("schema", "json")
    if request.reasoning_effort is not None:
        body["think"] = think(request.reasoning_effort, model_id)
    if request.tools and request.tool_choice != "none":  # Ollama has no tool_choice: "none" sends no tools
        body["tools"] = [t.model_dump(exclude_none=True) for t in request.tools]
    return body


def _usage(data: dict[str, Any]) -> Usage:
    return Usage(input_tokens=int(data.get("prompt_eval_count") or 0), output_tokens=int(data.get("eval_count") or 0))


def _finish(data: dict[str, Any], has_calls: bool) -> FinishReason:
    if has_calls:
        return "tool_calls"
    return "length" if data.get("done_reason") == "length" else "stop"


def _calls(message: dict[str, Any], start: int) -> list[ToolCall]:
    calls = []
    for i, call in enumerate(message.get("tool_calls") or []):
        function = call["function"]
        arguments = json.dumps(function.get("arguments", {}))
        call_id = f"call_{start + i}"
        calls.append(ToolCall(id=call_id, function=FunctionCall(name=function["name"], arguments=arguments)))
    return calls


def parse_response(data: dict[str, Any], *, model: str, provider: str) -> ChatResponse:
    message = data.get("message") or {}
    calls = _calls(message, 0)
    return ChatResponse(text=message.get("content") or "", tool_calls=calls or None, model=model, provider=provider,
                        usage=_usage(data), finish_reason=_finish(data, bool(calls)))


class LineDecoder:
    """The stream's lines as chunks; done at the line with ``"done": true``, which carries the counts."""

    def __init__(self, model: str, provider: str) -> None:
        self.model, self.provider = model, provider
        self.calls = 0
        self.done = False

    def feed(self, event: str, data: dict[str, Any]) -> tuple[StreamChunk, ...]:
        chunk = self.chunk(data)
        return (chunk,) if chunk is not None else ()

    def chunk(self, data: dict[str, Any]) -> StreamChunk | None:
        message = data.get("message") or {}
        calls = _calls(message, self.calls)
        self.calls += len(calls)
        deltas = [_delta(index=int(c.id.removeprefix("call_")), id=c.id, name=c.function.name,
                                arguments=c.function.arguments) for c in calls]
        text = message.get("content") or ""
        if data.get("done"):
            self.done = True
            return _chunk(text=text, tool_calls=deltas or None, usage=_usage(data),
                               finish_reason=_finish(data, self.calls > 0), model=self.model, provider=self.provider)
        if not text and not deltas:
            return None
        return _chunk(text=text, tool_calls=deltas or None, model=self.model, provider=self.provider)


# --- embeddings (/api/embed: several inputs in one call, L2-normalised vectors) ----------------------
def embedding_body(request: EmbeddingRequest, model_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model_id, "input": request.input}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    return body


def parse_embeddings(data: dict[str, Any], *, model: str, provider: str) -> EmbeddingResponse:
    return EmbeddingResponse(vectors=data.get("embeddings") or [], model=model, provider=provider,
                             usage=Usage(input_tokens=int(data.get("prompt_eval_count") or 0)))

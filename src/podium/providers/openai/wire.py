"""OpenAI Chat Completions, as pure translation: ChatRequest → JSON body, JSON → ChatResponse/StreamChunk.

No I/O here (the endpoint, key and client live in ``provider``), so the same code serves OpenAI,
Mistral, DeepSeek, OpenRouter, Groq, vLLM, llama.cpp's server and any other compatible host, and
it is measured without a network. Reference: platform.openai.com/docs/api-reference/chat.

Details that are easy to get wrong and are kept here:
- streams ask for ``stream_options.include_usage``; the usage then arrives in a last chunk whose
  ``choices`` is empty;
- tool-call arguments arrive as string fragments keyed by ``index``; they are passed on as they
  come (never parsed and re-serialised) so the caller can join them byte for byte;
- reasoning models (o-series, gpt-5) take ``max_completion_tokens`` instead of ``max_tokens``;
- cached and reasoning tokens come in ``prompt_tokens_details`` / ``completion_tokens_details``.
"""

from __future__ import annotations

from typing import Any

from podium.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    FunctionCall,
    Message,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    Usage,
)

# Plain constructors: in pydantic 2.14 validating a chunk (2.4 µs) is cheaper than model_construct (5.5 µs).
_chunk = StreamChunk
_delta = ToolCallDelta

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                                    "function_call": "tool_calls", "content_filter": "content_filter"}
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role}
    if isinstance(message.content, list):
        out["content"] = [part.model_dump(exclude_none=True) for part in message.content]
    else:
        out["content"] = message.content
    if message.name:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [call.model_dump() for call in message.tool_calls]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def request_body(request: ChatRequest, model_id: str, *, stream: bool,
                 max_tokens_field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model_id, "messages": [_message(m) for m in request.messages]}
    if request.max_tokens is not None:
        field = max_tokens_field or ("max_completion_tokens" if model_id.startswith(_REASONING_PREFIXES)
                                     else "max_tokens")
        body[field] = request.max_tokens
    for name in ("temperature", "top_p", "seed", "stop", "response_format", "tool_choice"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.n != 1:
        body["n"] = request.n
    if request.tools:
        body["tools"] = [tool.model_dump(exclude_none=True) for tool in request.tools]
    if request.metadata.user:
        body["user"] = request.metadata.user
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def parse_usage(data: dict[str, Any] | None) -> Usage:
    if not data:
        return Usage()
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    return Usage(input_tokens=int(data.get("prompt_tokens") or 0),
                 output_tokens=int(data.get("completion_tokens") or 0),
                 cached_input_tokens=int(prompt_details.get("cached_tokens") or 0),
                 reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0))


def finish_reason(value: str | None) -> FinishReason:
    return _FINISH.get(value or "stop", "stop")


def parse_response(data: dict[str, Any], *, model: str, provider: str) -> ChatResponse:
    choice = data["choices"][0]
    message = choice.get("message") or {}
    calls = [ToolCall(id=c["id"], function=FunctionCall(name=c["function"]["name"],
                                                        arguments=c["function"].get("arguments") or ""))
             for c in message.get("tool_calls") or []]
    return ChatResponse(text=message.get("content") or "", tool_calls=calls or None, model=model, provider=provider,
                        usage=parse_usage(data.get("usage")), finish_reason=finish_reason(choice.get("finish_reason")))


def parse_chunk(data: dict[str, Any], *, model: str, provider: str) -> StreamChunk | None:
    """One SSE ``data:`` object → a chunk, or None when it carries nothing (e.g. a bare role delta)."""
    usage = parse_usage(data["usage"]) if data.get("usage") else None
    choices = data.get("choices") or []
    if not choices:
        return _chunk(usage=usage, model=model, provider=provider) if usage else None
    choice = choices[0]
    delta = choice.get("delta") or {}
    tool_deltas = [_delta(index=int(c.get("index", i)), id=c.get("id"),
                                 name=(c.get("function") or {}).get("name"),
                                 arguments=(c.get("function") or {}).get("arguments") or "")
                   for i, c in enumerate(delta.get("tool_calls") or [])]
    text = delta.get("content") or ""
    reason = choice.get("finish_reason")
    if not text and not tool_deltas and reason is None and usage is None:
        return None
    return _chunk(text=text, tool_calls=tool_deltas or None, usage=usage,
                       finish_reason=finish_reason(reason) if reason else None, model=model, provider=provider)


# --- embeddings (platform.openai.com/docs/api-reference/embeddings) --------------------------------
def embedding_body(request: EmbeddingRequest, model_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model_id, "input": request.input, "encoding_format": "float"}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    return body


def parse_embeddings(data: dict[str, Any], *, model: str, provider: str) -> EmbeddingResponse:
    rows = sorted(data.get("data") or [], key=lambda row: int(row.get("index", 0)))
    usage = data.get("usage") or {}
    return EmbeddingResponse(vectors=[row["embedding"] for row in rows], model=model, provider=provider,
                             usage=Usage(input_tokens=int(usage.get("prompt_tokens") or 0)))

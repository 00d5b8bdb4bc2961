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
- cached and reasoning tokens come in ``prompt_tokens_details`` / ``completion_tokens_details``;
- ``developer`` messages go as they are only to OpenAI itself; other compatible hosts get ``system``;
- with ``n > 1`` every choice is parsed (``more_choices``) and every stream piece keeps its index;
- fields Podium does not interpret (``ChatRequest.extra``) are sent unchanged, and what the answer
  carries beyond text and tool calls (logprobs, refusal, audio, annotations) comes back unchanged.
"""

from __future__ import annotations

from typing import Any

from podium.types import (
    ChatRequest,
    ChatResponse,
    Choice,
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


_MESSAGE_EXTRAS = ("refusal", "audio", "function_call")  # what an assistant message sent back may carry
_ANSWER_EXTRAS = ("refusal", "audio", "annotations", "function_call")
_SENT = ("temperature", "top_p", "seed", "stop", "response_format", "tool_choice", "frequency_penalty",
         "presence_penalty", "parallel_tool_calls", "reasoning_effort", "logprobs", "top_logprobs")


def _message(message: Message, developer_role: bool) -> dict[str, Any]:
    role = "system" if message.role == "developer" and not developer_role else message.role
    out: dict[str, Any] = {"role": role}
    if isinstance(message.content, list):
        out["content"] = [part.model_dump(exclude_none=True) for part in message.content]
    else:
        out["content"] = message.content
    if message.name:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [call.openai_json() for call in message.tool_calls]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.role == "assistant":
        for name in _MESSAGE_EXTRAS:
            value = getattr(message, name)
            if value is not None:
                out[name] = value
    return out


def request_body(request: ChatRequest, model_id: str, *, stream: bool,
                 max_tokens_field: str | None = None, developer_role: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model_id, "messages": [_message(m, developer_role) for m in request.messages]}
    if request.max_tokens is not None:
        field = max_tokens_field or ("max_completion_tokens" if model_id.startswith(_REASONING_PREFIXES)
                                     else "max_tokens")
        body[field] = request.max_tokens
    for name in _SENT:
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.extra:
        body.update(request.extra)
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


def _parse_choice(choice: dict[str, Any], position: int) -> Choice:
    message = choice.get("message") or {}
    calls = [ToolCall.model_validate(c) if c.get("type") == "custom" else
             ToolCall(id=c["id"], function=FunctionCall(name=c["function"]["name"],
                                                        arguments=c["function"].get("arguments") or ""))
             for c in message.get("tool_calls") or []]
    extras = {name: message[name] for name in _ANSWER_EXTRAS if message.get(name)}
    return Choice(index=int(choice.get("index", position)), text=message.get("content") or "",
                  tool_calls=calls or None, finish_reason=finish_reason(choice.get("finish_reason")),
                  logprobs=choice.get("logprobs"), message_extras=extras)


def parse_response(data: dict[str, Any], *, model: str, provider: str) -> ChatResponse:
    choices = sorted((_parse_choice(c, i) for i, c in enumerate(data["choices"])), key=lambda c: c.index)
    first = choices[0]
    return ChatResponse(text=first.text, tool_calls=first.tool_calls, model=model, provider=provider,
                        usage=parse_usage(data.get("usage")), finish_reason=first.finish_reason,
                        logprobs=first.logprobs, message_extras=first.message_extras, more_choices=choices[1:])


def _custom_delta(call: dict[str, Any], position: int) -> ToolCallDelta:
    custom = call.get("custom") or {}
    return _delta(index=int(call.get("index", position)), id=call.get("id"), type="custom", name=custom.get("name"),
                  arguments=custom.get("input") or "")


def parse_chunk(data: dict[str, Any], *, model: str, provider: str) -> StreamChunk | None:
    """One SSE ``data:`` object → a chunk, or None when it carries nothing (e.g. a bare role delta)."""
    usage = parse_usage(data["usage"]) if data.get("usage") else None
    choices = data.get("choices") or []
    if not choices:
        return _chunk(usage=usage, model=model, provider=provider) if usage else None
    choice = choices[0]
    delta = choice.get("delta") or {}
    tool_deltas = [_custom_delta(c, i) if c.get("type") == "custom" or "custom" in c else
                   _delta(index=int(c.get("index", i)), id=c.get("id"), name=(c.get("function") or {}).get("name"),
                          arguments=(c.get("function") or {}).get("arguments") or "")
                   for i, c in enumerate(delta.get("tool_calls") or [])]
    text = delta.get("content") or ""
    reason = choice.get("finish_reason")
    logprobs = choice.get("logprobs")
    if not text and not tool_deltas and reason is None and usage is None and not logprobs:
        return None
    return _chunk(index=int(choice.get("index") or 0), text=text, tool_calls=tool_deltas or None, usage=usage,
                  finish_reason=finish_reason(reason) if reason else None, model=model, provider=provider,
                  logprobs=logprobs or None)


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

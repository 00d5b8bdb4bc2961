"""Anthropic Messages API as pure translation (docs.anthropic.com/en/api/messages).

Differences from the OpenAI shape that this module absorbs:
- system prompts are a top-level ``system`` field, not messages;
- ``max_tokens`` is required;
- content is a list of typed blocks: text, image (base64 or url), tool_use, tool_result;
- tool results travel in a *user* message; consecutive same-role messages are merged, as the API
  requires alternation;
- ``usage.input_tokens`` excludes cache reads and writes, so Podium's input count adds them back
  (and reports the reads as cached input);
- the stream is typed events: message_start (input usage), content_block_start/delta/stop
  (text_delta, input_json_delta), message_delta (stop_reason, output usage), message_stop, ping,
  error.
"""

from __future__ import annotations

import json
from typing import Any

from podium.types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    FunctionCall,
    ImagePart,
    Message,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
    split_data_url,
)

# Plain constructors: in pydantic 2.14 validating a chunk (2.4 µs) is cheaper than model_construct (5.5 µs).
_chunk = StreamChunk
_delta = ToolCallDelta

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024
_STOP: dict[str, FinishReason] = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                                  "tool_use": "tool_calls", "pause_turn": "stop", "refusal": "content_filter"}


def _image(part: ImagePart) -> dict[str, Any]:
    inline = split_data_url(part.image_url.url)
    if inline:
        return {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
    return {"type": "image", "source": {"type": "url", "url": part.image_url.url}}


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.text}]
    blocks: list[dict[str, Any]] = []
    if isinstance(message.content, str) and message.content:
        blocks.append({"type": "text", "text": message.content})
    elif isinstance(message.content, list):
        for part in message.content:
            blocks.append({"type": "text", "text": part.text} if isinstance(part, TextPart) else _image(part))
    for call in message.tool_calls or []:
        try:
            arguments = json.loads(call.function.arguments or "{}")
        except ValueError:
            arguments = {"_raw": call.function.arguments}
        blocks.append({"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments})
    return blocks


def _tool_choice(choice: object) -> dict[str, Any] | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"]["name"]}
    return None


def request_body(request: ChatRequest, model_id: str, *, stream: bool, default_max_tokens: int) -> dict[str, Any]:
    system = "\n\n".join(m.text for m in request.messages if m.role == "system")
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    body: dict[str, Any] = {"model": model_id, "max_tokens": request.max_tokens or default_max_tokens,
                            "messages": messages}
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = request.stop
    if request.tools:
        body["tools"] = [{"name": t.function.name, "description": t.function.description or "",
                          "input_schema": t.function.parameters or {"type": "object", "properties": {}}}
                         for t in request.tools]
    choice = _tool_choice(request.tool_choice)
    if choice is not None and request.tools:
        body["tool_choice"] = choice
    if request.metadata.user:
        body["metadata"] = {"user_id": request.metadata.user}
    if stream:
        body["stream"] = True
    return body


def parse_usage(data: dict[str, Any] | None) -> Usage:
    data = data or {}
    reads = int(data.get("cache_read_input_tokens") or 0)
    writes = int(data.get("cache_creation_input_tokens") or 0)
    return Usage(input_tokens=int(data.get("input_tokens") or 0) + reads + writes,
                 output_tokens=int(data.get("output_tokens") or 0), cached_input_tokens=reads)


def stop_reason(value: str | None) -> FinishReason:
    return _STOP.get(value or "end_turn", "stop")


def parse_response(data: dict[str, Any], *, model: str, provider: str) -> ChatResponse:
    text = "".join(block.get("text", "") for block in data.get("content", []) if block.get("type") == "text")
    calls = [ToolCall(id=b["id"], function=FunctionCall(name=b["name"], arguments=json.dumps(b.get("input", {}))))
             for b in data.get("content", []) if b.get("type") == "tool_use"]
    return ChatResponse(text=text, tool_calls=calls or None, model=model, provider=provider,
                        usage=parse_usage(data.get("usage")), finish_reason=stop_reason(data.get("stop_reason")))


class StreamDecoder:
    """Turns the typed event stream into chunks; remembers input usage and tool-block indexes."""

    def __init__(self, model: str, provider: str) -> None:
        self.model, self.provider = model, provider
        self.input_usage = Usage()
        self.tool_index: dict[int, int] = {}  # content block index -> tool call index
        self.finished = False

    def feed(self, event: str, data: dict[str, Any]) -> StreamChunk | None:
        kind = data.get("type", event)
        if kind == "message_start":
            self.input_usage = parse_usage(data.get("message", {}).get("usage"))
            return None
        if kind == "content_block_start":
            block = data.get("content_block", {})
            if block.get("type") == "tool_use":
                index = self.tool_index.setdefault(int(data["index"]), len(self.tool_index))
                return self._chunk(tool_calls=[_delta(index=index, id=block.get("id"), name=block.get("name"))])
            if block.get("text"):
                return self._chunk(text=block["text"])
            return None
        if kind == "content_block_delta":
            delta = data.get("delta", {})
            if delta.get("type") == "text_delta":
                return self._chunk(text=delta.get("text", ""))
            if delta.get("type") == "input_json_delta":
                index = self.tool_index.get(int(data["index"]), 0)
                return self._chunk(tool_calls=[_delta(index=index, arguments=delta.get("partial_json", ""))])
            return None
        if kind == "message_delta":
            output = parse_usage(data.get("usage"))
            usage = Usage(input_tokens=self.input_usage.input_tokens + output.input_tokens,
                          cached_input_tokens=self.input_usage.cached_input_tokens + output.cached_input_tokens,
                          output_tokens=output.output_tokens)
            return self._chunk(usage=usage, finish_reason=stop_reason(data.get("delta", {}).get("stop_reason")))
        if kind == "message_stop":
            self.finished = True
        return None  # ping, content_block_stop, message_stop

    def _chunk(self, **fields: Any) -> StreamChunk:
        return _chunk(model=self.model, provider=self.provider, **fields)

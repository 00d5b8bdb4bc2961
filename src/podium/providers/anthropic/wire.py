"""Anthropic Messages API as pure translation (docs.anthropic.com/en/api/messages).

Differences from the OpenAI shape that this module absorbs:
- system prompts (``system`` and ``developer`` messages) are a top-level ``system`` field, not messages;
- ``max_tokens`` is required: without one in the request the provider sends the model's most output
  tokens from the catalogue (``default_max_tokens``), never a smaller invented number that cuts answers;
- ``response_format`` becomes structured output: ``output_config.format`` (a JSON schema, constrained
  decoding) on models that have it (catalogue capability ``json``), otherwise — and for ``json_object``,
  which names no schema — a forced tool whose input is the answer: its JSON is returned as the answer
  text, never as a tool call (``json_tool``);
- ``tool_choice`` maps onto ``auto`` / ``any`` / ``tool`` / ``none``, and ``parallel_tool_calls`` onto
  ``disable_parallel_tool_use``;
- ``reasoning_effort`` becomes extended thinking with a token budget (``THINKING_BUDGETS``: the budgets
  Google documents for the same OpenAI field on Gemini, ai.google.dev/gemini-api/docs/openai, raised to
  Anthropic's minimum of 1,024; ``none`` disables thinking). The budget must stay below ``max_tokens``
  (thinking counts toward it, as reasoning counts toward OpenAI's ``max_completion_tokens``): it is cut
  to fit, and a ``max_tokens`` too small for the minimum budget sends no thinking. Thinking excludes
  ``temperature`` (not sent), a ``top_p`` under 0.95 (raised to it) and forced tools (a forced JSON tool
  sends no thinking). Thinking blocks never reach the answer text;
- the models from Opus 4.1 and the 4.5 generation on refuse ``temperature`` with ``top_p``: when a request
  sets both, they get ``temperature`` alone;
- content is a list of typed blocks: text, image (base64 or url), tool_use, tool_result (a tool result
  with images is a list of text and image blocks);
- tool results travel in a *user* message; consecutive same-role messages are merged, as the API
  requires alternation;
- ``usage.input_tokens`` excludes cache reads and writes, so Podium's input count adds them back
  (and reports the reads as cached input);
- the stream is typed events: message_start (input usage), content_block_start/delta/stop
  (text_delta, input_json_delta, thinking_delta and signature_delta, which are skipped), message_delta
  (stop_reason and the usage so far: its counts are cumulative and replace message_start's, never add
  to them), message_stop, ping, error;
- ``stop_reason: refusal`` (the streaming classifiers stopped the answer) is ``content_filter``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from podium.json_depth import arguments_object
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
# Sent only when the request sets no max_tokens and the catalogue row names no max_output_tokens: the
# smallest most-output of any Claude model (Claude 3 Haiku's 4,096), which every model accepts.
FALLBACK_MAX_TOKENS = 4096
THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 32768}
MIN_THINKING_BUDGET = 1024
JSON_TOOL = "json_answer"
_TOOL_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
# Claude Opus 4.1, the 4.5 generation and later refuse temperature and top_p together (a 400)
_ONE_SAMPLER = re.compile(r"claude-(opus-4-1|(opus|sonnet|haiku)-4-[5-9]|(opus|sonnet|haiku)-[5-9])(?!\d)")
_STOP: dict[str, FinishReason] = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length",
                                  "tool_use": "tool_calls", "pause_turn": "stop", "refusal": "content_filter"}


def _image(part: ImagePart) -> dict[str, Any]:
    inline = split_data_url(part.image_url.url)
    if inline:
        return {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}
    return {"type": "image", "source": {"type": "url", "url": part.image_url.url}}


def _content(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if isinstance(message.content, str) and message.content:
        blocks.append({"type": "text", "text": message.content})
    elif isinstance(message.content, list):
        for part in message.content:  # audio and file parts are refused before a request reaches this wire
            if isinstance(part, TextPart):
                blocks.append({"type": "text", "text": part.text})
            elif isinstance(part, ImagePart):
                blocks.append(_image(part))
    return blocks


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":  # a result with images is a list of text and image blocks
        images = isinstance(message.content, list) and any(isinstance(p, ImagePart) for p in message.content)
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id,
                 "content": _content(message) if images else message.text}]
    blocks = _content(message)
    for call in message.tool_calls or []:
        arguments = arguments_object(call.function.arguments)  # badly written: kept whole, not a failure
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


def json_tool(request: ChatRequest, structured_output: bool) -> str | None:
    """The name of the forced tool that carries a JSON answer, or None when none is needed (no
    ``response_format`` asking for JSON, or a schema the model's own structured output takes)."""
    fmt = request.response_format or {}
    kind = fmt.get("type")
    schema = (fmt.get("json_schema") or {}).get("schema") if kind == "json_schema" else None
    if kind not in ("json_object", "json_schema") or (schema and structured_output):
        return None
    name = str((fmt.get("json_schema") or {}).get("name") or "")
    taken = {t.function.name for t in request.tools or []}
    return name if _TOOL_NAME.fullmatch(name) and name not in taken else JSON_TOOL


def _json_tool_definition(request: ChatRequest, name: str) -> dict[str, Any]:
    fmt = request.response_format or {}
    spec = fmt.get("json_schema") or {}
    schema = spec.get("schema") or {"type": "object"}
    description = spec.get("description") or "Give the answer as this tool's input: it is returned as JSON."
    return {"name": name, "description": description, "input_schema": schema}


def _thinking(request: ChatRequest, max_tokens: int, forced_tool: bool) -> dict[str, Any] | None:
    effort = request.reasoning_effort
    if effort is None:
        return None
    if effort == "none":
        return {"type": "disabled"}
    if forced_tool:
        return None  # Anthropic refuses forced tool use with thinking; the structured answer comes first
    budget = min(THINKING_BUDGETS[effort], max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        return None
    return {"type": "enabled", "budget_tokens": budget}


def request_body(request: ChatRequest, model_id: str, *, stream: bool, default_max_tokens: int,
                 structured_output: bool = False) -> dict[str, Any]:
    """The Messages API body. ``default_max_tokens`` is sent when the request sets none;
    ``structured_output`` says whether the model takes ``output_config.format`` (else a JSON answer
    goes through a forced tool, ``json_tool``)."""
    system = "\n\n".join(m.text for m in request.messages if m.is_system)
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.is_system:
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    max_tokens = request.max_tokens or default_max_tokens
    body: dict[str, Any] = {"model": model_id, "max_tokens": max_tokens, "messages": messages}
    if system:
        body["system"] = system
    tools = [{"name": t.function.name, "description": t.function.description or "",
              "input_schema": t.function.parameters or {"type": "object", "properties": {}}}
             for t in request.tools or []]
    choice = _tool_choice(request.tool_choice) if tools else None
    answer_tool = json_tool(request, structured_output)
    if answer_tool is not None:
        if not tools or (choice or {}).get("type") == "none":
            choice = {"type": "tool", "name": answer_tool}  # the answer tool alone
        elif choice is None or choice["type"] == "auto":
            choice = {"type": "any"}  # one of the caller's tools, or the answer
        tools.append(_json_tool_definition(request, answer_tool))
    elif (fmt := request.response_format or {}).get("type") == "json_schema":
        body["output_config"] = {"format": {"type": "json_schema", "schema": fmt["json_schema"]["schema"]}}
    if tools:
        body["tools"] = tools
        if request.parallel_tool_calls is not None and (choice is None or choice["type"] != "none"):
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": not request.parallel_tool_calls}
        if choice is not None:
            body["tool_choice"] = choice
    thinking = _thinking(request, max_tokens, forced_tool=(choice or {}).get("type") in ("any", "tool"))
    if thinking is not None:
        body["thinking"] = thinking
    on = thinking is not None and thinking["type"] == "enabled"
    if request.temperature is not None and not on:
        body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
    if request.top_p is not None and not ("temperature" in body and _ONE_SAMPLER.match(model_id)):
        body["top_p"] = max(request.top_p, 0.95) if on else request.top_p
    if request.stop:
        body["stop_sequences"] = request.stop
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


def parse_response(data: dict[str, Any], *, model: str, provider: str, json_tool: str | None = None) -> ChatResponse:
    """A message as a response; a call of ``json_tool`` (the forced JSON answer) is the answer text."""
    content = data.get("content") or []
    text = "".join(block.get("text", "") for block in content if block.get("type") == "text")
    calls = []
    answer: str | None = None
    for block in content:
        if block.get("type") != "tool_use":
            continue
        if json_tool is not None and block.get("name") == json_tool and answer is None:
            answer = json.dumps(block.get("input", {}))
        else:
            calls.append(ToolCall(id=block["id"], function=FunctionCall(name=block["name"],
                                                                       arguments=json.dumps(block.get("input", {})))))
    reason = stop_reason(data.get("stop_reason"))
    if answer is not None:
        text = answer
        reason = "tool_calls" if calls else ("stop" if reason == "tool_calls" else reason)
    return ChatResponse(text=text, tool_calls=calls or None, model=model, provider=provider,
                        usage=parse_usage(data.get("usage")), finish_reason=reason)


class StreamDecoder:
    """Turns the typed event stream into chunks; remembers message_start's usage and the tool blocks.

    The usage in ``message_delta`` is cumulative (input and cache counts included where the API sends
    them): each of its counts replaces message_start's, so nothing is counted twice.
    """

    def __init__(self, model: str, provider: str, json_tool: str | None = None) -> None:
        self.model, self.provider, self.json_tool = model, provider, json_tool
        self.start_usage: dict[str, Any] = {}
        self.tool_index: dict[int, int] = {}  # content block index -> tool call index
        self.answer_block: int | None = None  # the content block of the forced JSON answer
        self.done = False

    def feed(self, event: str, data: dict[str, Any]) -> tuple[StreamChunk, ...]:
        kind = data.get("type", event)
        if kind == "content_block_delta":
            delta = data.get("delta", {})
            kind = delta.get("type")
            if kind == "text_delta":
                return (self._chunk(text=delta.get("text", "")),)
            if kind == "input_json_delta":
                block = int(data["index"])
                if block == self.answer_block:
                    return (self._chunk(text=delta.get("partial_json", "")),)
                index = self.tool_index.get(block, 0)
                return (self._chunk(tool_calls=[_delta(index=index, arguments=delta.get("partial_json", ""))]),)
            return ()  # thinking_delta, signature_delta: never part of the answer
        if kind == "content_block_start":
            block = data.get("content_block", {})
            if block.get("type") == "tool_use":
                if self.json_tool is not None and block.get("name") == self.json_tool and self.answer_block is None:
                    self.answer_block = int(data["index"])
                    return ()
                index = self.tool_index.setdefault(int(data["index"]), len(self.tool_index))
                return (self._chunk(tool_calls=[_delta(index=index, id=block.get("id"), name=block.get("name"))]),)
            if block.get("type") == "text" and block.get("text"):
                return (self._chunk(text=block["text"]),)
            return ()
        if kind == "message_start":
            self.start_usage = dict(data.get("message", {}).get("usage") or {})
            return ()
        if kind == "message_delta":
            counts = {name: value for name, value in (data.get("usage") or {}).items() if value is not None}
            reason = stop_reason(data.get("delta", {}).get("stop_reason"))
            if reason == "tool_calls" and self.answer_block is not None and not self.tool_index:
                reason = "stop"
            return (self._chunk(usage=parse_usage({**self.start_usage, **counts}), finish_reason=reason),)
        if kind == "message_stop":
            self.done = True
        return ()  # ping, content_block_stop, message_stop

    def _chunk(self, **fields: Any) -> StreamChunk:
        return _chunk(model=self.model, provider=self.provider, **fields)

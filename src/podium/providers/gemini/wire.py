"""Gemini generateContent as pure translation (ai.google.dev/api/generate-content).

- roles are ``user`` and ``model``; system text (``system`` and ``developer`` messages) goes to
  ``systemInstruction``;
- parameters live in ``generationConfig`` (maxOutputTokens, stopSequences, seed, presencePenalty,
  frequencyPenalty, responseMimeType …); ``n`` is ``candidateCount``, and every candidate comes back as
  its own choice (``more_choices``; stream chunks carry the candidate's ``index``), never spliced;
- ``reasoning_effort`` is ``thinkingConfig`` as Google documents the same OpenAI field for Gemini
  (ai.google.dev/gemini-api/docs/openai): a ``thinkingLevel`` on Gemini 3 and later (``minimal`` …
  ``high``; Pro models start at ``low``), a ``thinkingBudget`` on Gemini 2.5 (low 1,024, medium 8,192,
  high 24,576; ``none`` is 0, or 2.5 Pro's minimum of 128 since it always thinks); older models have no
  thinking and get none;
- a tool's parameters go in ``parametersJsonSchema`` (JSON Schema, as OpenAI clients write them), not in
  ``parameters``, which is Gemini's own Schema type (an OpenAPI subset that refuses ``additionalProperties``,
  ``$ref`` and the like); ``tool_choice`` is ``toolConfig.functionCallingConfig`` (AUTO / ANY / NONE, or
  ANY with the one name);
- function calls have no ids on the wire: Podium gives them stable ids (``call_<n>``), and a
  tool result is sent back as a ``functionResponse`` naming the function, its images in the response's
  ``parts``; a history call whose arguments are not a JSON object is sent with them under ``_raw``;
- usage is ``usageMetadata``: thinking tokens (``thoughtsTokenCount``) are billed as output but not
  included in ``candidatesTokenCount``, so they are added to output and reported as reasoning;
- a blocked prompt (``promptFeedback.blockReason``) is a ``ContentFilteredError``; a candidate stopped
  for SAFETY and similar reasons finishes with ``content_filter`` (the call skeleton refuses an answer
  whose every choice was filtered);
- the stream (``?alt=sse``) is a sequence of whole GenerateContentResponse objects with no end
  marker: it is complete when every candidate has carried a ``finishReason``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from podium.errors import ContentFilteredError
from podium.json_depth import arguments_object
from podium.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    FunctionCall,
    ImagePart,
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

_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
             "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION")
_FINISH: dict[str, FinishReason] = {"STOP": "stop", "MAX_TOKENS": "length",
                                    **dict.fromkeys(_FILTERED, "content_filter")}
THINKING_BUDGETS = {"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576, "xhigh": 24576}
THINKING_LEVELS = {"none": "minimal", "minimal": "minimal", "low": "low", "medium": "medium", "high": "high",
                   "xhigh": "high"}
_VERSION = re.compile(r"gemini-(\d+(?:\.\d+)?)")


def _image(part: ImagePart) -> dict[str, Any]:
    inline = split_data_url(part.image_url.url)
    return {"inlineData": {"mimeType": inline[0], "data": inline[1]}} if inline else \
        {"fileData": {"fileUri": part.image_url.url}}


def arguments(text: str) -> dict[str, Any]:
    """A history tool call's arguments as the object ``functionCall.args`` must be; arguments a model wrote
    badly (not a JSON object) are kept whole under ``_raw`` rather than failing the request."""
    return arguments_object(text)


def _parts(request: ChatRequest, index: int) -> list[dict[str, Any]]:
    message = request.messages[index]
    images = [_image(p) for p in message.content if isinstance(p, ImagePart)] \
        if isinstance(message.content, list) else []
    if message.role == "tool":
        name = next((c.function.name for m in request.messages for c in (m.tool_calls or [])
                     if c.id == message.tool_call_id), message.name or "tool")
        response: dict[str, Any] = {"name": name, "response": {"content": message.text}}
        if images:  # a tool's images go inside its functionResponse (multimodal function responses)
            response["parts"] = images
        return [{"functionResponse": response}]
    parts: list[dict[str, Any]] = []
    if isinstance(message.content, str) and message.content:
        parts.append({"text": message.content})
    elif isinstance(message.content, list):
        for part in message.content:
            if isinstance(part, TextPart):
                parts.append({"text": part.text})
            elif isinstance(part, ImagePart):
                parts.append(_image(part))
    for call in message.tool_calls or []:
        parts.append({"functionCall": {"name": call.function.name, "args": arguments(call.function.arguments)}})
    return parts


def thinking_config(effort: str, model_id: str) -> dict[str, Any] | None:
    """``thinkingConfig`` for an OpenAI ``reasoning_effort`` on this model (None: the model has no thinking)."""
    match = _VERSION.search(model_id)
    version = float(match[1]) if match else 3.0  # an unknown name (a tuned model): assume a current one
    if version >= 3:
        level = THINKING_LEVELS[effort]
        if "pro" in model_id and level == "minimal":
            level = "low"  # the Pro models' lowest level
        return {"thinkingLevel": level}
    if version >= 2.5:
        budget = THINKING_BUDGETS[effort]
        if budget == 0 and "pro" in model_id:
            budget = 128  # 2.5 Pro cannot stop thinking; 128 is its smallest budget
        return {"thinkingBudget": budget}
    return None


def request_body(request: ChatRequest, model_id: str = "") -> dict[str, Any]:
    contents: list[dict[str, Any]] = []
    for index, message in enumerate(request.messages):
        if message.is_system:
            continue
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(request, index)
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    body: dict[str, Any] = {"contents": contents}
    system = "\n\n".join(m.text for m in request.messages if m.is_system)
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    config: dict[str, Any] = {}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP"), ("max_tokens", "maxOutputTokens"),
                         ("stop", "stopSequences"), ("seed", "seed"), ("presence_penalty", "presencePenalty"),
                         ("frequency_penalty", "frequencyPenalty")):
        value = getattr(request, ours)
        if value is not None:
            config[theirs] = value
    if request.n != 1:
        config["candidateCount"] = request.n
    fmt = request.response_format or {}
    if fmt.get("type") in {"json_object", "json_schema"}:
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            config["responseJsonSchema"] = schema
    if request.reasoning_effort is not None:
        thinking = thinking_config(request.reasoning_effort, model_id)
        if thinking is not None:
            config["thinkingConfig"] = thinking
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = [{"functionDeclarations": [  # JSON Schema, as OpenAI's tools have it, not Gemini's Schema
            {k: v for k, v in {"name": t.function.name, "description": t.function.description,
                               "parametersJsonSchema": t.function.parameters}.items() if v is not None}
            for t in request.tools]}]
        mode = {"auto": "AUTO", "required": "ANY", "none": "NONE"}.get(str(request.tool_choice))
        if isinstance(request.tool_choice, dict):
            name = (request.tool_choice.get("function") or {}).get("name")
            body["toolConfig"] = {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
        elif mode:
            body["toolConfig"] = {"functionCallingConfig": {"mode": mode}}
    return body


def parse_usage(data: dict[str, Any] | None) -> Usage:
    data = data or {}
    thoughts = int(data.get("thoughtsTokenCount") or 0)
    return Usage(input_tokens=int(data.get("promptTokenCount") or 0),
                 output_tokens=int(data.get("candidatesTokenCount") or 0) + thoughts,
                 cached_input_tokens=int(data.get("cachedContentTokenCount") or 0), reasoning_tokens=thoughts)


def check_blocked(data: dict[str, Any], *, model: str, provider: str) -> None:
    """A prompt Gemini blocked (``promptFeedback.blockReason``): no candidate was made at all."""
    feedback = data.get("promptFeedback") or {}
    if feedback.get("blockReason"):
        raise ContentFilteredError(f"{provider} blocked the prompt: {feedback['blockReason']}", provider=provider,
                                   model=model)


class CallIds:
    """Gemini function calls carry no ids; these are stable per candidate: call_0, call_1, …"""

    def __init__(self) -> None:
        self.count = 0

    def next(self) -> str:
        self.count += 1
        return f"call_{self.count - 1}"


def _candidate_parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = (candidate.get("content") or {}).get("parts") or []
    return parts


def _text(parts: list[dict[str, Any]]) -> str:
    return "".join(p.get("text", "") for p in parts if not p.get("thought"))  # thought summaries are not the answer


def finish_reason(value: str | None) -> FinishReason | None:
    return None if value is None else _FINISH.get(value, "stop")


def _choice(candidate: dict[str, Any], position: int) -> Choice:
    ids = CallIds()
    parts = _candidate_parts(candidate)
    calls = [ToolCall(id=ids.next(), function=FunctionCall(name=p["functionCall"]["name"],
                                                           arguments=json.dumps(p["functionCall"].get("args", {}))))
             for p in parts if "functionCall" in p]
    reason = finish_reason(candidate.get("finishReason")) or "stop"
    if calls and reason != "content_filter":
        reason = "tool_calls"
    return Choice(index=int(candidate.get("index", position)), text=_text(parts), tool_calls=calls or None,
                  finish_reason=reason)


def parse_response(data: dict[str, Any], *, model: str, provider: str) -> ChatResponse:
    """Every candidate as a choice: the first is the response, the others ``more_choices``."""
    check_blocked(data, model=model, provider=provider)
    choices = sorted((_choice(c, i) for i, c in enumerate(data.get("candidates") or [])), key=lambda c: c.index)
    first = choices[0] if choices else Choice(index=0, text="")
    return ChatResponse(text=first.text, tool_calls=first.tool_calls, model=model, provider=provider,
                        usage=parse_usage(data.get("usageMetadata")), finish_reason=first.finish_reason,
                        more_choices=choices[1:])


class StreamDecoder:
    """The ``alt=sse`` events as chunks, each tagged with its candidate's index; the stream is done when
    all ``candidates`` candidates have finished, and the last chunk then carries the usage."""

    def __init__(self, model: str, provider: str, candidates: int = 1) -> None:
        self.model, self.provider, self.candidates = model, provider, candidates
        self.ids: dict[int, CallIds] = {}
        self.finished: set[int] = set()
        self.done = False

    def feed(self, event: str, data: dict[str, Any]) -> list[StreamChunk]:
        check_blocked(data, model=self.model, provider=self.provider)
        chunks = []
        for position, candidate in enumerate(data.get("candidates") or []):
            index = int(candidate.get("index", position))
            ids = self.ids.setdefault(index, CallIds())
            parts = _candidate_parts(candidate)
            deltas = [_delta(index=ids.count, id=ids.next(), name=p["functionCall"]["name"],
                             arguments=json.dumps(p["functionCall"].get("args", {})))
                      for p in parts if "functionCall" in p]
            text = _text(parts)
            reason = finish_reason(candidate.get("finishReason"))
            if reason is not None:
                self.finished.add(index)
                if ids.count and reason != "content_filter":
                    reason = "tool_calls"
            if text or deltas or reason is not None:
                chunks.append(_chunk(index=index, text=text, tool_calls=deltas or None, finish_reason=reason,
                                     model=self.model, provider=self.provider))
        if chunks and len(self.finished) >= self.candidates:
            self.done = True
            if data.get("usageMetadata"):
                chunks[-1] = chunks[-1].model_copy(update={"usage": parse_usage(data["usageMetadata"])})
        return chunks


# --- embeddings (ai.google.dev/api/embeddings#method:-models.batchembedcontents) -------------------
def embedding_body(request: EmbeddingRequest, model_path: str) -> dict[str, Any]:
    """One ``EmbedContentRequest`` per input; each names the model again, as the API requires."""
    rows: list[dict[str, Any]] = []
    for text in request.input:
        row: dict[str, Any] = {"model": model_path, "content": {"parts": [{"text": text}]}}
        if request.dimensions is not None:
            row["outputDimensionality"] = request.dimensions
        rows.append(row)
    return {"requests": rows}


def parse_embeddings(data: dict[str, Any], *, model: str, provider: str, estimated_tokens: int) -> EmbeddingResponse:
    """Gemini reports no token counts for embeddings: ``estimated_tokens`` stands in for them."""
    vectors = [row.get("values") or [] for row in data.get("embeddings") or []]
    return EmbeddingResponse(vectors=vectors, model=model, provider=provider,
                             usage=Usage(input_tokens=estimated_tokens))

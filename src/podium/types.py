"""The two types every layer speaks: ``ChatRequest`` down, ``ChatResponse`` (or ``StreamChunk``s) up.

Field names follow the OpenAI Chat Completions shape where one exists, so the gateway maps JSON
to these types almost one to one and vendors' formats live only in their provider modules.
Validation happens here, once, before any model is called: an empty prompt or a temperature of
7 is refused with a message that names the field.
"""

from __future__ import annotations

import os
import random
import re
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

Role = Literal["system", "developer", "user", "assistant", "tool"]
SYSTEM_ROLES = frozenset({"system", "developer"})  # "developer" is OpenAI's newer name for the system voice
Sensitivity = Literal["public", "internal", "confidential"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Strict):
    type: Literal["text"] = "text"
    text: str
    prompt_cache_breakpoint: dict[str, Any] | None = None  # OpenAI's explicit cache breakpoint; others ignore it


class ImageURL(_Strict):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImagePart(_Strict):
    type: Literal["image_url"] = "image_url"
    image_url: ImageURL


class InputAudio(_Strict):
    data: str
    format: str


class AudioPart(_Strict):
    """Audio input: OpenAI's wire only (``request_fields`` refuses it elsewhere)."""

    type: Literal["input_audio"] = "input_audio"
    input_audio: InputAudio


class FileRef(_Strict):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class FilePart(_Strict):
    """A file (e.g. a PDF) as input: OpenAI's wire only (``request_fields`` refuses it elsewhere)."""

    type: Literal["file"] = "file"
    file: FileRef


class RefusalPart(_Strict):
    """An earlier assistant answer's refusal, sent back in the history: OpenAI's wire keeps it, others drop it."""

    type: Literal["refusal"] = "refusal"
    refusal: str


ContentPart = Annotated[TextPart | ImagePart | AudioPart | FilePart | RefusalPart, Field(discriminator="type")]


class FunctionCall(_Strict):
    name: str
    arguments: str = Field(description="JSON text exactly as the model wrote it; never re-serialised.")


class ToolCall(_Strict):
    """A call the model made. OpenAI's ``custom`` tools (free-form input) are carried the same way: the
    name and the input in ``function``, ``type`` saying which; ``openai_json`` gives each its own shape."""

    id: str
    type: Literal["function", "custom"] = "function"
    function: FunctionCall

    @model_validator(mode="before")
    @classmethod
    def _custom_call(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("type") == "custom" and isinstance(data.get("custom"), dict):
            custom = data["custom"]
            return {"id": data.get("id"), "type": "custom",
                    "function": {"name": custom.get("name"), "arguments": custom.get("input", "")}}
        return data

    def openai_json(self) -> dict[str, Any]:
        """The call in OpenAI's shape (``function`` or ``custom``)."""
        if self.type == "custom":
            return {"id": self.id, "type": "custom",
                    "custom": {"name": self.function.name, "input": self.function.arguments}}
        return {"id": self.id, "type": "function",
                "function": {"name": self.function.name, "arguments": self.function.arguments}}


class FunctionDefinition(_Strict):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Strict):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class Message(_Strict):
    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    # What an assistant message of an earlier answer carries when a client sends it back whole (the SDKs'
    # ``message.model_dump()``): kept so the OpenAI wire can return it, ignored by the other wires.
    refusal: str | None = None
    audio: dict[str, Any] | None = None
    function_call: dict[str, Any] | None = None
    annotations: list[Any] | None = None

    @property
    def is_system(self) -> bool:
        """A system or developer message: the caller's own instructions."""
        return self.role in SYSTEM_ROLES

    @model_validator(mode="after")
    def _tool_result_needs_id(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a message with role 'tool' needs the tool_call_id of the call it answers")
        return self

    @property
    def text(self) -> str:
        """The text parts joined; images are left out (they have no text)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=text)

    @classmethod
    def system(cls, text: str) -> Message:
        return cls(role="system", content=text)


class RequestMetadata(_Strict):
    """What Podium needs to route and account, beyond what the model sees."""

    task_type: str | None = None
    sensitivity: Sensitivity = "public"
    user: str | None = None
    tags: list[str] = Field(default_factory=list)
    preset: str | None = None
    router_knob: float | None = Field(default=None, ge=0.0, le=1.0, description=(
        "The learned router's knob for this request (0 cheapest … 1 best); default: routing.learned.knob"))


class ChatRequest(_Strict):
    messages: list[Message]
    model: str | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, gt=0, le=2**31 - 1)
    stop: list[str] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), lt=2**63)
    n: int = Field(default=1, ge=1, le=16)
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    presence_penalty: float | None = Field(default=None, ge=-2.0, le=2.0)
    parallel_tool_calls: bool | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    extra: dict[str, Any] = Field(default_factory=dict, description=(
        "Chat Completions fields Podium does not interpret (``store``, ``service_tier``, ``prompt_cache_key``, …): "
        "sent unchanged on the OpenAI wire; each other wire drops or refuses them as ``podium.request_fields`` says."))
    stream: bool = False
    metadata: RequestMetadata = Field(default_factory=RequestMetadata)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _has_prompt(self) -> ChatRequest:
        if not self.messages:
            raise ValueError("messages is empty: give at least one message with the prompt")
        if not any(m.text.strip() or (isinstance(m.content, list) and m.content) or m.tool_calls
                   for m in self.messages):
            raise ValueError("the prompt is empty: every message has empty content")
        return self

    @classmethod
    def from_prompt(cls, prompt: str, **fields: Any) -> ChatRequest:
        return cls(messages=[Message.user(prompt)], **fields)

    @property
    def prompt_text(self) -> str:
        """All message text, for token estimates and complexity heuristics."""
        return "\n".join(m.text for m in self.messages)


class Usage(_Strict):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = Field(default=0, description="Part of input_tokens served from cache.")
    reasoning_tokens: int = Field(default=0, description="Part of output_tokens spent on hidden reasoning.")

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_input_tokens=self.cached_input_tokens + other.cached_input_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
        )


class RouteDecision(_Strict):
    """Why a model was chosen; every routed response carries one."""

    model: str
    provider: str
    rationale: str
    estimated_cost: float = 0.0
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    experiment: str | None = Field(default=None, description="The A/B experiment the request took part in.")
    arm: str | None = Field(default=None, description="The experiment's arm that served it.")


class CallTrace(_Strict):
    """One model call as it happened."""

    model: str
    provider: str
    status: Literal["ok", "error", "cancelled"] = "ok"
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    cost: float = 0.0
    latency_ms: float = 0.0
    step: str | None = Field(default=None, description="The strategy step this call served, if any.")
    usage_estimated: bool = Field(default=False, description="The provider reported no usage; counts are estimates.")


class Trace(_Strict):
    """How a response was made: the route, then every call in order."""

    request_id: str
    strategy: str = "single"
    decision: RouteDecision | None = None
    calls: list[CallTrace] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    deployment: str | None = Field(default=None, description="The deployment that answered (model@provider).")
    retries: int = 0
    fallbacks: int = 0

    @property
    def cost(self) -> float:
        return sum(call.cost for call in self.calls)


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem, naming the field: ``max_tokens: Input should be greater than 0 (got 0)``."""
    lines = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "request"
        value = err.get("input")
        got = "" if isinstance(value, dict | list) else f" (got {value!r})" if len(repr(value)) <= 100 else \
            f" (got {repr(value)[:100]}…)"  # a 90 KB value is not echoed whole
        lines.append(f"{field}: {err['msg'].removeprefix('Value error, ')}{got}")
    return "invalid request: " + "; ".join(lines)


_IDS = random.Random(os.urandom(16))  # request ids must be unique, not secret: seeded once, not per id
os.register_at_fork(after_in_child=lambda: _IDS.seed(os.urandom(16)))


def new_request_id() -> str:
    """``req_`` + 24 hex digits: milliseconds since the epoch (ids sort by time, which B-tree indexes like),
    then 52 random bits. uuid4 read os.urandom for every id: 67 µs on this VM, three times a request."""
    return f"req_{time.time_ns() // 1_000_000:011x}{_IDS.getrandbits(52):013x}"


class Choice(_Strict):
    """One of several answers to a request with ``n > 1`` (the response itself is choice 0)."""

    index: int
    text: str
    tool_calls: list[ToolCall] | None = None
    finish_reason: FinishReason = "stop"
    logprobs: dict[str, Any] | None = None
    message_extras: dict[str, Any] = Field(default_factory=dict)


class ChatResponse(_Strict):
    id: str = Field(default_factory=new_request_id)
    text: str
    tool_calls: list[ToolCall] | None = None
    more_choices: list[Choice] = Field(default_factory=list, description="Choices 1..n-1 when the request asked n > 1.")
    logprobs: dict[str, Any] | None = Field(default=None, description="The upstream's choice logprobs, as sent.")
    message_extras: dict[str, Any] = Field(default_factory=dict, description=(
        "Fields of the upstream's answer message Podium does not interpret (refusal, audio, annotations), as sent."))
    model: str
    provider: str
    usage: Usage = Field(default_factory=Usage)
    cost: float = 0.0
    latency_ms: float = 0.0
    finish_reason: FinishReason = "stop"
    created: float = Field(default_factory=time.time)
    trace: Trace | None = None
    # A strategy's answer names the strategy as its model; this is the member whose answer it returned
    # (never sent: feedback and learned routing credit it, see strategies.simple.answer).
    _served_by: str | None = PrivateAttr(default=None)

    @property
    def served_by(self) -> str:
        """The model whose answer this is: a strategy's chosen member, else ``model``."""
        return self._served_by or self.model

    def served(self, model: str) -> ChatResponse:
        """This response, marked as the answer of ``model`` (a strategy returning a member's answer)."""
        self._served_by = model
        return self


class ToolCallDelta(_Strict):
    """A piece of a streamed tool call; ``index`` ties the pieces together, as in OpenAI's stream. For a
    ``custom`` tool's call, ``arguments`` carries pieces of its free-form input."""

    index: int
    type: Literal["function", "custom"] = "function"
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class StreamChunk(_Strict):
    index: int = Field(default=0, description="The choice this piece belongs to (n > 1); never spliced.")
    text: str = ""
    logprobs: dict[str, Any] | None = None
    tool_calls: list[ToolCallDelta] | None = None
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    model: str | None = None
    provider: str | None = None


class EmbeddingRequest(_Strict):
    input: list[str] = Field(min_length=1, max_length=2048)
    model: str | None = None
    dimensions: int | None = Field(default=None, gt=0, le=1_000_000, description="Shorter vectors, where the model can")


class EmbeddingResponse(_Strict):
    """One vector per input, in input order; ``usage.input_tokens`` is what the provider billed."""

    vectors: list[list[float]]
    model: str
    provider: str
    usage: Usage = Field(default_factory=Usage)
    id: str = ""
    cost: float = 0.0
    latency_ms: float = 0.0


_DATA_URL = re.compile(r"data:(?P<mime>[\w/+.-]+);base64,(?P<data>.*)", re.S)


def split_data_url(url: str) -> tuple[str, str] | None:
    """``(mime type, base64 data)`` of a ``data:`` URL, or None for an ordinary URL.

    OpenAI accepts images as data URLs; Anthropic, Gemini and Ollama want the two parts apart.
    """
    match = _DATA_URL.match(url)
    return (match["mime"], match["data"]) if match else None

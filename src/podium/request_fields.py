"""What each wire does with each Chat Completions request field: one table, read by the code and the README.

A client written for OpenAI sends fields only some vendors have (``seed``, ``logprobs``,
``service_tier``, …). Podium never drops one silently: for every field and outbound wire the table
says whether it is

- ``sent``: passed on unchanged (same name, same value);
- ``translated``: expressed in the wire's own terms (``stop`` → Anthropic's ``stop_sequences``);
- ``podium``: done by Podium itself (``n`` on a wire without it becomes parallel calls; ``stream``);
- ``dropped``: a hint the wire has no equivalent for; the request goes on and the trace says so;
- ``refused``: a field whose answer the client would rely on (``logprobs``, ``audio``) and the wire
  cannot give: a 400 that names the field and the wire, before anything is sent.

A field is only looked at when the client set it to something that asks for anything
(``logprobs: false`` or ``modalities: ["text"]`` ask for nothing). ``tests/test_request_fields.py``
checks each wire's request translation against this table and the README's table against it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from podium.errors import BadRequestError

if TYPE_CHECKING:
    from podium.types import ChatRequest

Handling = Literal["sent", "translated", "podium", "dropped", "refused"]
WIRES = ("openai", "anthropic", "gemini", "ollama", "local")

_S: Handling = "sent"
_T: Handling = "translated"
_P: Handling = "podium"
_D: Handling = "dropped"
_R: Handling = "refused"

# field: handling on (openai, anthropic, gemini, ollama, local)
FIELDS: dict[str, tuple[Handling, Handling, Handling, Handling, Handling]] = {
    "messages": (_S, _T, _T, _T, _T),
    "model": (_P, _P, _P, _P, _P),
    "temperature": (_S, _T, _T, _T, _T),
    "top_p": (_S, _S, _T, _T, _T),
    "max_tokens": (_T, _T, _T, _T, _T),
    "max_completion_tokens": (_T, _T, _T, _T, _T),
    "stop": (_S, _T, _T, _T, _T),
    "seed": (_S, _D, _T, _T, _T),
    "n": (_S, _P, _T, _P, _P),
    "tools": (_S, _T, _T, _T, _R),
    "tool_choice": (_S, _T, _T, _D, _R),
    "response_format": (_S, _T, _T, _T, _T),
    "frequency_penalty": (_S, _D, _T, _T, _D),
    "presence_penalty": (_S, _D, _T, _T, _D),
    "parallel_tool_calls": (_S, _T, _D, _D, _D),
    "reasoning_effort": (_S, _T, _T, _T, _D),
    "logprobs": (_S, _R, _R, _R, _R),
    "top_logprobs": (_S, _R, _R, _R, _R),
    "user": (_S, _T, _D, _D, _D),
    "metadata": (_T, _P, _P, _P, _P),
    "stream": (_P, _P, _P, _P, _P),
    "stream_options": (_P, _P, _P, _P, _P),
    # kept in ChatRequest.extra: meaningful to OpenAI only
    "store": (_S, _D, _D, _D, _D),
    "service_tier": (_S, _D, _D, _D, _D),
    "prompt_cache_key": (_S, _D, _D, _D, _D),
    "prompt_cache_retention": (_S, _D, _D, _D, _D),
    "safety_identifier": (_S, _D, _D, _D, _D),
    "prediction": (_S, _D, _D, _D, _D),
    "verbosity": (_S, _D, _D, _D, _D),
    "logit_bias": (_S, _R, _R, _R, _R),
    "modalities": (_S, _R, _R, _R, _R),
    "audio": (_S, _R, _R, _R, _R),
    "web_search_options": (_S, _R, _R, _R, _R),
    "functions": (_S, _R, _R, _R, _R),
    "function_call": (_S, _R, _R, _R, _R),
    "moderation": (_S, _R, _R, _R, _R),
    "prompt_cache_options": (_S, _D, _D, _D, _D),
    # content parts other than text and images
    "input_audio": (_S, _R, _R, _R, _R),
    "file": (_S, _R, _R, _R, _R),
    "refusal": (_S, _T, _T, _T, _T),
    # tools other than functions (OpenAI's `custom` tools, free-form input)
    "tools.custom": (_S, _R, _R, _R, _R),
}

# The fields ChatRequest keeps untyped in ``extra`` (Podium itself never reads them).
EXTRA_FIELDS = frozenset({"store", "service_tier", "prompt_cache_key", "prompt_cache_retention", "safety_identifier",
                          "prediction", "verbosity", "logit_bias", "modalities", "audio", "web_search_options",
                          "functions", "function_call", "moderation", "prompt_cache_options"})
PARTS = frozenset({"input_audio", "file", "refusal"})  # rows that are message content parts, not top-level fields

NOTES = {
    "metadata": "read by Podium (task_type, sensitivity, tags, preset); on the OpenAI wire sent only with `store`",
    "n": "parallel calls on wires without it; every choice keeps its index",
    "max_tokens": "`max_completion_tokens` for OpenAI's reasoning models; Anthropic, which requires it, gets the "
                  "model's most output tokens from the catalogue when unset; never invented elsewhere",
    "developer": "messages with role `developer` go as `system` on wires without that role",
}


def handling(field: str, wire: str) -> Handling | None:
    """How ``wire`` treats ``field``; None for a wire Podium does not know (a plugin's: it gets the request as is)."""
    row = FIELDS.get(field)
    if row is None or wire not in WIRES:
        return None
    return row[WIRES.index(wire)]


_DEFAULTS: dict[str, Any] = {"parallel_tool_calls": True, "top_logprobs": 0, "modalities": ["text"], "n": 1}


def asks_for_something(field: str, value: Any) -> bool:
    """Whether a set value asks the wire for anything: a default (``parallel_tool_calls: true``,
    ``modalities: ["text"]``), ``false`` and empty values do not."""
    if value is None or value == [] or value == {}:
        return False
    if field in _DEFAULTS:
        return bool(value != _DEFAULTS[field])
    return value is not False


# per wire: the (field, handling) pairs that need a look — only dropped and refused ones do
_CHECKED = {wire: [(field, row[i]) for field, row in FIELDS.items() if row[i] in (_D, _R)]
            for i, wire in enumerate(WIRES)}


def check(request: ChatRequest, wire: str) -> list[str]:
    """The notes for the fields ``wire`` drops; a 400 naming the first field it refuses."""
    checks = _CHECKED.get(wire)
    if not checks:
        return []
    notes = []
    parts: set[str] | None = None
    for field, how in checks:
        if field in PARTS:
            if parts is None:
                parts = {part.type for m in request.messages if isinstance(m.content, list) for part in m.content}
            value: Any = field in parts
        elif field in EXTRA_FIELDS:
            value = request.extra.get(field)
        elif field == "tools.custom":  # kept whole in extra["tools"]: the OpenAI wire sends that list unchanged
            value = "tools" in request.extra
        elif field == "user":
            value = request.metadata.user
        else:
            value = getattr(request, field, None)
        if not asks_for_something(field, value):
            continue
        if how == "refused":
            if field in PARTS:
                raise BadRequestError(f"'{field}' content parts are not supported on the {wire} wire, which this "
                                      f"request's model uses; choose a model on the OpenAI wire",
                                      code="unsupported_parameter")
            raise BadRequestError(f"'{field}' is not supported on the {wire} wire, which this request's model "
                                  f"uses; remove it or choose a model on a wire that has it (see the README's "
                                  f"field table)", code="unsupported_parameter")
        notes.append(f"'{field}' dropped: the {wire} wire has no equivalent")
    return notes


def refusals_as_text(request: ChatRequest) -> ChatRequest:
    """An earlier answer's refusal parts as text parts, for the wires that have no such part (an assistant turn
    left empty would be refused by Anthropic, and the model would lose what it said)."""
    from podium.types import RefusalPart, TextPart

    if not any(isinstance(m.content, list) and any(isinstance(p, RefusalPart) for p in m.content)
               for m in request.messages):
        return request
    messages = [m.model_copy(update={"content": [TextPart(text=p.refusal) if isinstance(p, RefusalPart) else p
                                                 for p in m.content]}) if isinstance(m.content, list) else m
                for m in request.messages]
    return request.model_copy(update={"messages": messages})


def native_n(wire: str | None) -> bool:
    """Whether the wire returns several choices itself (else Podium makes ``n`` parallel calls)."""
    return wire is not None and handling("n", wire) in ("sent", "translated")

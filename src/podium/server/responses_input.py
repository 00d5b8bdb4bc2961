"""A Responses API request (platform.openai.com/docs/api-reference/responses/create) as a ``ChatRequest``.

The Responses API says the same things as Chat Completions in other shapes: ``input`` items instead of
``messages`` (a ``function_call`` item is an assistant tool call, a ``function_call_output`` item a
tool message), ``instructions`` for the first developer message, flat function tools, ``text.format``
for ``response_format``, ``reasoning.effort`` for ``reasoning_effort``. The items become messages in
``responses_items``; this module reads the other fields into the one ``ChatRequest``, with Podium's
metadata (``metadata`` strings, ``X-Podium-*`` headers) and routed model names read as on Chat
Completions, and each outbound wire then treats the fields as ``podium.request_fields`` says. The
request is built directly, not through the Chat Completions parser: a second pass over the same fields
cost a third more CPU than Chat Completions' own parsing.

The gateway keeps no state between requests, so what needs OpenAI's stored objects is refused with a
400 that names the field and says what to send instead: ``previous_response_id`` and
``conversation`` (send the whole conversation as ``input``), ``item_reference`` items, stored
``prompt`` templates, ``background`` runs. Built-in tools (web search, file search, code
interpreter, computer use, MCP, …) run inside OpenAI's servers and have no equivalent on the other
wires: refused by name. What has no effect here is accepted and noted in the answer's ``podium.notes``:
``store: true`` (nothing is stored), ``truncation: auto`` (nothing is cut), ``max_tool_calls``,
``reasoning.summary``, ``include`` values other than logprobs, and a few OpenAI-only options.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from pydantic import ValidationError

from podium.errors import BadRequestError
from podium.json_depth import MAX_DEPTH, json_depth
from podium.server.openai_schema import ROUTED
from podium.server.responses_items import (
    InvalidParameter,
    invalid,
    messages,
    response_format,
    string,
    tool_choice,
    tools,
)
from podium.types import ChatRequest, describe_validation_error

# Request fields and what happens to them (anything else is a 400, as OpenAI answers).
MAPPED = frozenset({"model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "tools",
                    "tool_choice", "parallel_tool_calls", "text", "reasoning", "metadata", "user", "stream",
                    "include", "top_logprobs", "service_tier", "prompt_cache_key", "prompt_cache_retention",
                    "safety_identifier"})
IGNORED = frozenset({"store", "truncation", "max_tool_calls", "stream_options", "prompt_cache_options", "image"})
STATEFUL = {
    "previous_response_id": "the gateway is stateless and keeps no earlier responses: send the whole conversation "
                            "as 'input' (earlier output items included) instead",
    "conversation": "the gateway is stateless and keeps no conversations: send the whole conversation as 'input'",
    "prompt": "stored prompt templates live on OpenAI's platform, which the gateway cannot read: send the "
              "prompt's text as 'instructions' and 'input'",
    "background": "background responses must be polled later, which needs stored responses; the gateway is "
                  "stateless: leave 'background' unset and stream instead",
    "background_options": "background responses need stored responses; the gateway is stateless",
    "context_management": "server-side compaction needs stored conversation state; the gateway is stateless",
    "moderation": "moderation results are OpenAI's own service; the gateway's guardrails apply to every request "
                  "instead (see the README)",
    "access_programs": "OpenAI access programs apply to OpenAI's own accounts, not to the gateway's models",
}
KNOWN = MAPPED | IGNORED | STATEFUL.keys()
_STATEFUL = frozenset(STATEFUL)
_IGNORED = IGNORED
_EXTRA = frozenset({"service_tier", "prompt_cache_key", "prompt_cache_retention", "safety_identifier"})
_HEADERS = {"x-podium-task-type": "task_type", "x-podium-sensitivity": "sensitivity", "x-podium-tags": "tags",
            "x-podium-preset": "preset", "x-podium-router-knob": "router_knob"}
_INCLUDABLE = frozenset({"file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
                         "message.input_image.image_url", "computer_call_output.output.image_url",
                         "code_interpreter_call.outputs", "reasoning.encrypted_content",
                         "message.output_text.logprobs"})
LOGPROBS = "message.output_text.logprobs"
_EFFORTS = frozenset(e for arg in get_args(ChatRequest.model_fields["reasoning_effort"].annotation)
                     for e in (get_args(arg) or (arg,)) if isinstance(e, str))


def _check_refused(body: Mapping[str, Any]) -> None:
    unknown = body.keys() - KNOWN
    if unknown:
        raise BadRequestError(f"Unrecognized request argument supplied: {', '.join(sorted(unknown))[:200]}",
                              code="unknown_parameter")
    for name in _STATEFUL.intersection(body):
        value = body[name]
        if value is not None and value is not False and value != []:
            raise InvalidParameter(name, f"'{name}' is not supported: {STATEFUL[name]}", "unsupported_parameter")


def _ignored(body: Mapping[str, Any]) -> list[str]:
    """The fields accepted without effect, checked for their shape, each set one noted for the answer."""
    if _IGNORED.isdisjoint(body):
        return []
    notes = []
    if body.get("store") is not None and not isinstance(body["store"], bool):
        raise invalid("store", "must be a boolean", "invalid_type")
    if body.get("store"):
        notes.append("'store' accepted: the gateway is stateless and stores nothing")
    truncation = body.get("truncation")
    if truncation not in (None, "auto", "disabled"):
        raise invalid("truncation", "must be auto or disabled")
    if truncation == "auto":
        notes.append("'truncation: auto': nothing is cut; an input too long for the model is an error, as with "
                     "'disabled'")
    count = body.get("max_tool_calls")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise invalid("max_tool_calls", "must be a positive integer")
        notes.append("'max_tool_calls' has no effect: it counts built-in tool calls, which the gateway does not run")
    for name in ("stream_options", "prompt_cache_options", "image"):
        value = body.get(name)
        if value is not None and not isinstance(value, dict):
            raise invalid(name, "must be an object", "invalid_type")
        if value:
            notes.append(f"'{name}' dropped: an OpenAI-only option with no equivalent on the other wires")
    return notes


def _number(body: Mapping[str, Any], name: str) -> Any:
    value = body.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise invalid(name, "must be a number", "invalid_type")
    return value


def _metadata(body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """Podium's request metadata, from ``metadata`` (strings) and the ``X-Podium-*`` headers, as on Chat
    Completions."""
    meta: dict[str, Any] = {}
    raw = body.get("metadata")
    if raw is not None:
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise invalid("metadata", "must be an object of strings", "invalid_type")
        for key in ("task_type", "sensitivity", "preset", "router_knob"):
            if raw.get(key):
                meta[key] = raw[key]
        if raw.get("tags"):
            meta["tags"] = [t.strip() for t in raw["tags"].split(",") if t.strip()]
    for header, name in _HEADERS.items():
        value = headers.get(header)
        if value:
            meta[name] = [t.strip() for t in value.split(",") if t.strip()] if name == "tags" else value
    user = body.get("user")
    if user:
        meta["user"] = string(user, "user")
    return meta


def _deep(value: Any, param: str) -> None:
    if json_depth(value) > MAX_DEPTH:
        raise invalid(param, f"nests JSON deeper than {MAX_DEPTH} levels", "too_deep")


def _sampling(body: Mapping[str, Any], fields: dict[str, Any]) -> None:
    """The scalar fields: sampling, limits, flags and the OpenAI-only strings."""
    for name in ("temperature", "top_p"):
        value = _number(body, name)
        if value is not None:
            fields[name] = value
    limit = body.get("max_output_tokens")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise invalid("max_output_tokens", "must be a positive integer")
        fields["max_tokens"] = limit
    for name in ("stream", "parallel_tool_calls"):
        value = body.get(name)
        if value is not None and not isinstance(value, bool):
            raise invalid(name, "must be a boolean (true or false)", "invalid_type")
    if body.get("parallel_tool_calls") is not None:
        fields["parallel_tool_calls"] = body["parallel_tool_calls"]
    top = body.get("top_logprobs")
    if top is not None:
        if isinstance(top, bool) or not isinstance(top, int):
            raise invalid("top_logprobs", "must be an integer", "invalid_type")
        fields["top_logprobs"] = top
        if top:
            fields["logprobs"] = True
    extra = {}
    for name in _EXTRA.intersection(body):
        if body[name] is not None:
            extra[name] = string(body[name], name)
    if extra:
        fields["extra"] = extra


def _options(body: Mapping[str, Any], fields: dict[str, Any], notes: list[str]) -> None:
    """``text``, ``reasoning`` and ``include``."""
    text = body.get("text")
    if text is not None:
        fmt = response_format(text)
        if fmt is not None:
            _deep(fmt, "text.format")
            fields["response_format"] = fmt
        if text.get("verbosity") is not None:
            fields.setdefault("extra", {})["verbosity"] = string(text["verbosity"], "text.verbosity")
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise invalid("reasoning", "must be an object like {\"effort\": \"low\"}", "invalid_type")
        effort = reasoning.get("effort")
        if effort is not None:
            if effort not in _EFFORTS:
                raise invalid("reasoning.effort", f"must be one of {', '.join(sorted(_EFFORTS))} (got "
                                                  f"{str(effort)[:40]!r})")
            fields["reasoning_effort"] = effort
        if reasoning.get("summary") or reasoning.get("generate_summary"):
            notes.append("'reasoning.summary' dropped: answers carry no reasoning items")
    include = body.get("include")
    if include is not None:
        if not isinstance(include, list) or not all(isinstance(v, str) for v in include):
            raise invalid("include", "must be a list of strings", "invalid_type")
        unknown = set(include) - _INCLUDABLE
        if unknown:
            raise invalid("include", f"unknown value {sorted(unknown)[0][:60]!r}")
        if LOGPROBS in include:
            fields["logprobs"] = True
        notes += [f"'include' of {value!r}: nothing to include, the gateway returns no such items"
                  for value in include if value != LOGPROBS]


def parse(body: Any, headers: Mapping[str, str]) -> tuple[ChatRequest, list[str]]:
    """The ChatRequest a Responses request asks for, and notes on what it asked for without effect; a 400
    naming the parameter otherwise."""
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    _check_refused(body)
    notes = _ignored(body)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid("model", "must be a string", "invalid_type")
    fields: dict[str, Any] = {"messages": messages(body), "model": None if model in ROUTED else model,
                              "stream": body.get("stream") is True, "metadata": _metadata(body, headers)}
    _sampling(body, fields)
    chat_tools = tools(body["tools"]) if body.get("tools") else None
    choice, chat_tools = tool_choice(body.get("tool_choice"), chat_tools)
    if chat_tools:
        _deep(chat_tools, "tools")
        fields["tools"] = chat_tools
    if choice is not None:
        if not chat_tools and choice != "none":  # as OpenAI answers: a choice among no tools is a mistake
            raise invalid("tool_choice", "is only allowed when 'tools' are given", "invalid_value")
        fields["tool_choice"] = choice
    _options(body, fields, notes)
    try:
        return ChatRequest.model_validate(fields), notes
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error(exc).replace("max_tokens", "max_output_tokens")) from None

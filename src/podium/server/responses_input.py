"""A Responses API request (platform.openai.com/docs/api-reference/responses/create) as a ``ChatRequest``.

The Responses API says the same things as Chat Completions in other shapes: ``input`` items instead of
``messages`` (a ``function_call`` item is an assistant tool call, a ``function_call_output`` item a
tool message), ``instructions`` for the first developer message, flat function tools, ``text.format``
for ``response_format``, ``reasoning.effort`` for ``reasoning_effort``. This module rewrites a request
into the Chat Completions body and hands it to ``openai_schema.parse_request``, so metadata, the
``X-Podium-*`` headers, routed model names, extras and validation are exactly those of
``/v1/chat/completions`` and every outbound wire treats the fields as its table says.

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

from podium.errors import BadRequestError
from podium.server.openai_schema import parse_request
from podium.types import ChatRequest

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
_PASSED = frozenset({"temperature", "top_p", "parallel_tool_calls", "metadata", "user", "top_logprobs", "service_tier",
                    "prompt_cache_key", "prompt_cache_retention", "safety_identifier", "model", "stream"})
_INCLUDABLE = frozenset({"file_search_call.results", "web_search_call.results", "web_search_call.action.sources",
                         "message.input_image.image_url", "computer_call_output.output.image_url",
                         "code_interpreter_call.outputs", "reasoning.encrypted_content",
                         "message.output_text.logprobs"})
LOGPROBS = "message.output_text.logprobs"
_ROLES = frozenset({"user", "assistant", "system", "developer"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
_DETAILS = frozenset({"auto", "low", "high"})
_EFFORTS = frozenset(e for arg in get_args(ChatRequest.model_fields["reasoning_effort"].annotation)
                     for e in (get_args(arg) or (arg,)) if isinstance(e, str))


class InvalidParameter(BadRequestError):
    """A 400 that names the parameter, in OpenAI's ``param`` field too."""

    def __init__(self, param: str, message: str, code: str = "invalid_value") -> None:
        super().__init__(message, code=code)
        self.param = param


def _fail(param: str, message: str, code: str = "invalid_value") -> InvalidParameter:
    return InvalidParameter(param, f"'{param}': {message}", code)


def _text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _fail(param, "must be a string", "invalid_type")
    return value


def _part(part: Any, param: str) -> dict[str, Any] | str:
    """One content part as a Chat Completions part (a str for a refusal, which has no part there)."""
    if not isinstance(part, dict):
        raise _fail(param, "must be an object like {\"type\": \"input_text\", \"text\": \"…\"}", "invalid_type")
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": _text(part.get("text"), f"{param}.text")}
    if kind == "input_image":
        if part.get("file_id"):
            raise _fail(f"{param}.file_id", "files stored at OpenAI cannot be read through the gateway: give the "
                                            "image as 'image_url' (an https or data: URL)", "unsupported_value")
        image = {"url": _text(part.get("image_url"), f"{param}.image_url")}
        if part.get("detail") in _DETAILS:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "refusal":
        return _text(part.get("refusal"), f"{param}.refusal")
    if kind in ("input_file", "input_audio"):
        raise _fail(f"{param}.type", f"'{kind}' content is not supported by the gateway (text and images are)",
                    "unsupported_value")
    raise _fail(f"{param}.type", f"unknown content type {str(kind)[:40]!r} (expected input_text, input_image or "
                                 "output_text)")


def _content(value: Any, param: str) -> tuple[str | list[dict[str, Any]], str | None]:
    """Content as Chat Completions content (a string when it is one piece of text), and a refusal."""
    if isinstance(value, str):
        return value, None
    if not isinstance(value, list):
        raise _fail(param, "must be a string or a list of content parts", "invalid_type")
    parts: list[dict[str, Any]] = []
    refusal = None
    for i, raw in enumerate(value):
        part = _part(raw, f"{param}[{i}]")
        if isinstance(part, str):
            refusal = part
        else:
            parts.append(part)
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"], refusal
    return parts, refusal


def messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``instructions`` and ``input`` as Chat Completions messages."""
    out: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        out.append({"role": "developer", "content": _text(instructions, "instructions")})
    items = body.get("input")
    if isinstance(items, str):
        out.append({"role": "user", "content": items})
        return out
    if items is None:
        raise InvalidParameter("input", "'input' is required: the prompt as a string or a list of input items",
                               "missing_required_parameter")
    if not isinstance(items, list):
        raise _fail("input", "must be a string or a list of input items", "invalid_type")
    if not items:
        raise _fail("input", "is empty: give at least one message with the prompt")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _fail(f"input[{i}]", "must be an object (a message, function_call or function_call_output item)",
                        "invalid_type")
        kind = item.get("type", "message")
        role, content = item.get("role"), item.get("content")
        if kind == "message" and role in _ROLES and isinstance(content, str):  # the common case, quickly
            out.append({"role": role, "content": content})
            continue
        param = f"input[{i}]"
        if kind == "message":
            if role not in _ROLES:
                raise _fail(f"{param}.role", f"must be one of user, assistant, system, developer (got "
                                             f"{str(role)[:40]!r})")
            content, refusal = _content(item.get("content"), f"{param}.content")
            message: dict[str, Any] = {"role": role, "content": content}
            if refusal is not None and role == "assistant":
                message["refusal"] = refusal
            out.append(message)
        elif kind == "function_call":
            call = {"id": _text(item.get("call_id"), f"{param}.call_id"), "type": "function",
                    "function": {"name": _text(item.get("name"), f"{param}.name"),
                                 "arguments": _text(item.get("arguments"), f"{param}.arguments")}}
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant":  # one turn: its text and its calls
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            content = output if isinstance(output, str) else _content(output, f"{param}.output")[0]
            out.append({"role": "tool", "tool_call_id": _text(item.get("call_id"), f"{param}.call_id"),
                        "content": content})
        elif kind == "reasoning":
            continue  # an earlier answer's hidden reasoning: only OpenAI could read it, no other wire has it
        elif kind == "item_reference":
            raise _fail(f"{param}.type", "'item_reference' points to a stored item; the gateway is stateless: send "
                                         "the item itself", "unsupported_value")
        else:
            raise _fail(f"{param}.type", f"items of type {str(kind)[:60]!r} are not supported: the gateway takes "
                                         "message, function_call and function_call_output items (built-in tools "
                                         "run only on OpenAI's servers)", "unsupported_value")
    return out


def _function(tool: Mapping[str, Any], param: str) -> dict[str, Any]:
    function: dict[str, Any] = {"name": _text(tool.get("name"), f"{param}.name")}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def tools(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise _fail("tools", "must be a list of tools", "invalid_type")
    out = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise _fail(f"tools[{i}]", "must be an object", "invalid_type")
        kind = tool.get("type")
        if kind != "function":
            raise _fail(f"tools[{i}].type", f"the built-in tool {str(kind)[:60]!r} is not supported: built-in tools "
                                            "run on OpenAI's servers and no other wire has them; the gateway takes "
                                            "function tools ({\"type\": \"function\", \"name\": …, \"parameters\": "
                                            "…})", "unsupported_value")
        out.append(_function(tool, f"tools[{i}]"))
    return out


def tool_choice(value: Any, chat_tools: list[dict[str, Any]] | None) -> tuple[Any, list[dict[str, Any]] | None]:
    """``tool_choice`` in Chat Completions' shape, and the tools (``allowed_tools`` narrows them)."""
    if value is None or value in ("none", "auto", "required"):
        return value, chat_tools
    if not isinstance(value, dict):
        raise _fail("tool_choice", "must be none, auto, required or an object naming a function")
    kind = value.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": _text(value.get("name"), "tool_choice.name")}}, chat_tools
    if kind == "allowed_tools":
        mode = value.get("mode")
        if mode not in ("auto", "required"):
            raise _fail("tool_choice.mode", "must be auto or required")
        allowed = value.get("tools")
        if not isinstance(allowed, list):
            raise _fail("tool_choice.tools", "must be a list of tools", "invalid_type")
        names: set[str] = set()
        for i, tool in enumerate(allowed):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise _fail(f"tool_choice.tools[{i}]", "only function tools ({\"type\": \"function\", \"name\": …}) "
                                                       "can be allowed", "unsupported_value")
            names.add(_text(tool.get("name"), f"tool_choice.tools[{i}].name"))
        kept = [t for t in chat_tools or [] if t["function"]["name"] in names]
        missing = names - {t["function"]["name"] for t in kept}
        if missing:
            raise _fail("tool_choice.tools", f"names tools that are not in 'tools': {', '.join(sorted(missing))[:200]}")
        return mode, kept
    raise _fail("tool_choice.type", f"{str(kind)[:60]!r} is not supported: built-in tools run only on OpenAI's "
                                    "servers (use none, auto, required, a function or allowed_tools)",
                "unsupported_value")


def response_format(text: Any) -> dict[str, Any] | None:
    """``text.format`` as Chat Completions' ``response_format``."""
    if not isinstance(text, dict):
        raise _fail("text", "must be an object like {\"format\": {\"type\": \"text\"}}", "invalid_type")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise _fail("text.format", "must be an object", "invalid_type")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise _fail("text.format.schema", "must be a JSON schema object", "invalid_type")
        schema = {"name": _text(fmt.get("name"), "text.format.name"), "schema": fmt["schema"]}
        for name in ("strict", "description"):
            if fmt.get(name) is not None:
                schema[name] = fmt[name]
        return {"type": "json_schema", "json_schema": schema}
    raise _fail("text.format.type", f"must be text, json_object or json_schema (got {str(kind)[:40]!r})")


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
        raise _fail("store", "must be a boolean", "invalid_type")
    if body.get("store"):
        notes.append("'store' accepted: the gateway is stateless and stores nothing")
    truncation = body.get("truncation")
    if truncation not in (None, "auto", "disabled"):
        raise _fail("truncation", "must be auto or disabled")
    if truncation == "auto":
        notes.append("'truncation: auto': nothing is cut; an input too long for the model is an error, as with "
                     "'disabled'")
    count = body.get("max_tool_calls")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _fail("max_tool_calls", "must be a positive integer")
        notes.append("'max_tool_calls' has no effect: it counts built-in tool calls, which the gateway does not run")
    for name in ("stream_options", "prompt_cache_options", "image"):
        value = body.get(name)
        if value is not None and not isinstance(value, dict):
            raise _fail(name, "must be an object", "invalid_type")
        if value:
            notes.append(f"'{name}' dropped: an OpenAI-only option with no equivalent on the other wires")
    return notes


def parse(body: Any, headers: Mapping[str, str]) -> tuple[ChatRequest, list[str]]:
    """The ChatRequest a Responses request asks for, and notes on what it asked for without effect; a 400
    naming the parameter otherwise."""
    if not isinstance(body, dict):
        raise BadRequestError("the request body must be a JSON object")
    _check_refused(body)
    notes = _ignored(body)
    chat: dict[str, Any] = {"messages": messages(body)}
    for name in _PASSED.intersection(body):
        chat[name] = body[name]
    limit = body.get("max_output_tokens")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise _fail("max_output_tokens", "must be a positive integer")
        chat["max_completion_tokens"] = limit
    chat_tools = tools(body["tools"]) if body.get("tools") else None
    choice, chat_tools = tool_choice(body.get("tool_choice"), chat_tools)
    if chat_tools:
        chat["tools"] = chat_tools
    if choice is not None:
        chat["tool_choice"] = choice
    text = body.get("text")
    if text is not None:
        fmt = response_format(text)
        if fmt is not None:
            chat["response_format"] = fmt
        if text.get("verbosity") is not None:
            chat["verbosity"] = text["verbosity"]
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise _fail("reasoning", "must be an object like {\"effort\": \"low\"}", "invalid_type")
        effort = reasoning.get("effort")
        if effort is not None:
            if effort not in _EFFORTS:
                raise _fail("reasoning.effort", f"must be one of {', '.join(sorted(_EFFORTS))} (got "
                                                f"{str(effort)[:40]!r})")
            chat["reasoning_effort"] = effort
        if reasoning.get("summary") or reasoning.get("generate_summary"):
            notes.append("'reasoning.summary' dropped: answers carry no reasoning items")
    include = body.get("include")
    if include is not None:
        if not isinstance(include, list) or not all(isinstance(v, str) for v in include):
            raise _fail("include", "must be a list of strings", "invalid_type")
        unknown = set(include) - _INCLUDABLE
        if unknown:
            raise _fail("include", f"unknown value {sorted(unknown)[0][:60]!r}")
        if LOGPROBS in include:
            chat["logprobs"] = True
        notes += [f"'include' of {value!r}: nothing to include, the gateway returns no such items"
                  for value in include if value != LOGPROBS]
    if body.get("top_logprobs"):
        chat["logprobs"] = True
    request, _ = parse_request(chat, headers)
    return request, notes

"""Responses API input items and tools as Chat Completions messages and tools (the shapes ``ChatRequest``
validates), each problem a 400 whose ``param`` is the path to it (``input[2].content[0].type``).

``input`` items: messages (roles user, assistant, system, developer; ``input_text``, ``output_text``,
``input_image`` by URL, ``refusal``) become messages; ``function_call`` items join the assistant turn
before them as its tool calls (a turn's text and its calls are one message in Chat Completions);
``function_call_output`` items become tool messages; ``reasoning`` items of an earlier answer are
skipped (only OpenAI could read them). Tools are the flat function shape; built-in tools and the items
they leave run on OpenAI's servers only, and are refused by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from podium.errors import BadRequestError

_ROLES = frozenset({"user", "assistant", "system", "developer"})
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})
_DETAILS = frozenset({"auto", "low", "high"})


class InvalidParameter(BadRequestError):
    """A 400 that names the parameter, in OpenAI's ``param`` field too."""

    def __init__(self, param: str, message: str, code: str = "invalid_value") -> None:
        super().__init__(message, code=code)
        self.param = param


def invalid(param: str, message: str, code: str = "invalid_value") -> InvalidParameter:
    return InvalidParameter(param, f"'{param}': {message}", code)


def string(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(param, "must be a string", "invalid_type")
    return value


def _part(part: Any, param: str) -> dict[str, Any] | str:
    """One content part as a Chat Completions part (a str for a refusal, which has no part there)."""
    if not isinstance(part, dict):
        raise invalid(param, "must be an object like {\"type\": \"input_text\", \"text\": \"…\"}", "invalid_type")
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return {"type": "text", "text": string(part.get("text"), f"{param}.text")}
    if kind == "input_image":
        if part.get("file_id"):
            raise invalid(f"{param}.file_id", "files stored at OpenAI cannot be read through the gateway: give the "
                                              "image as 'image_url' (an https or data: URL)", "unsupported_value")
        image = {"url": string(part.get("image_url"), f"{param}.image_url")}
        if part.get("detail") in _DETAILS:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "refusal":
        return string(part.get("refusal"), f"{param}.refusal")
    if kind in ("input_file", "input_audio"):
        raise invalid(f"{param}.type", f"'{kind}' content is not supported by the gateway (text and images are)",
                      "unsupported_value")
    raise invalid(f"{param}.type", f"unknown content type {str(kind)[:40]!r} (expected input_text, input_image or "
                                   "output_text)")


def _content(value: Any, param: str) -> tuple[str | list[dict[str, Any]], str | None]:
    """Content as Chat Completions content (a string when it is one piece of text), and a refusal."""
    if isinstance(value, str):
        return value, None
    if not isinstance(value, list):
        raise invalid(param, "must be a string or a list of content parts", "invalid_type")
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
        out.append({"role": "developer", "content": string(instructions, "instructions")})
    items = body.get("input")
    if isinstance(items, str):
        out.append({"role": "user", "content": items})
        return out
    if items is None:
        raise InvalidParameter("input", "'input' is required: the prompt as a string or a list of input items",
                               "missing_required_parameter")
    if not isinstance(items, list):
        raise invalid("input", "must be a string or a list of input items", "invalid_type")
    if not items:
        raise invalid("input", "is empty: give at least one message with the prompt")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid(f"input[{i}]", "must be an object (a message, function_call or function_call_output item)",
                          "invalid_type")
        kind = item.get("type", "message")
        role, content = item.get("role"), item.get("content")
        if kind == "message" and role in _ROLES and isinstance(content, str):  # the common case, quickly
            out.append({"role": role, "content": content})
            continue
        param = f"input[{i}]"
        if kind == "message":
            if role not in _ROLES:
                raise invalid(f"{param}.role", f"must be one of user, assistant, system, developer (got "
                                               f"{str(role)[:40]!r})")
            content, refusal = _content(item.get("content"), f"{param}.content")
            message: dict[str, Any] = {"role": role, "content": content}
            if refusal is not None and role == "assistant":
                message["refusal"] = refusal
            out.append(message)
        elif kind == "function_call":
            call = {"id": string(item.get("call_id"), f"{param}.call_id"), "type": "function",
                    "function": {"name": string(item.get("name"), f"{param}.name"),
                                 "arguments": string(item.get("arguments"), f"{param}.arguments")}}
            last = out[-1] if out else None
            if last is not None and last["role"] == "assistant":  # one turn: its text and its calls
                last.setdefault("tool_calls", []).append(call)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            content = output if isinstance(output, str) else _content(output, f"{param}.output")[0]
            out.append({"role": "tool", "tool_call_id": string(item.get("call_id"), f"{param}.call_id"),
                        "content": content})
        elif kind == "reasoning":
            continue  # an earlier answer's hidden reasoning: only OpenAI could read it, no other wire has it
        elif kind == "item_reference":
            raise invalid(f"{param}.type", "'item_reference' points to a stored item; the gateway is stateless: send "
                                           "the item itself", "unsupported_value")
        else:
            raise invalid(f"{param}.type", f"items of type {str(kind)[:60]!r} are not supported: the gateway takes "
                                           "message, function_call and function_call_output items (built-in tools "
                                           "run only on OpenAI's servers)", "unsupported_value")
    return out


def _function(tool: Mapping[str, Any], param: str) -> dict[str, Any]:
    function: dict[str, Any] = {"name": string(tool.get("name"), f"{param}.name")}
    for name in ("description", "parameters", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def tools(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid("tools", "must be a list of tools", "invalid_type")
    out = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise invalid(f"tools[{i}]", "must be an object", "invalid_type")
        kind = tool.get("type")
        if kind != "function":
            raise invalid(f"tools[{i}].type", f"the built-in tool {str(kind)[:60]!r} is not supported: built-in tools "
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
        raise invalid("tool_choice", "must be none, auto, required or an object naming a function")
    kind = value.get("type")
    if kind == "function":
        return {"type": "function", "function": {"name": string(value.get("name"), "tool_choice.name")}}, chat_tools
    if kind == "allowed_tools":
        mode = value.get("mode")
        if mode not in ("auto", "required"):
            raise invalid("tool_choice.mode", "must be auto or required")
        allowed = value.get("tools")
        if not isinstance(allowed, list):
            raise invalid("tool_choice.tools", "must be a list of tools", "invalid_type")
        names: set[str] = set()
        for i, tool in enumerate(allowed):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise invalid(f"tool_choice.tools[{i}]", "only function tools ({\"type\": \"function\", \"name\": …}) "
                                                         "can be allowed", "unsupported_value")
            names.add(string(tool.get("name"), f"tool_choice.tools[{i}].name"))
        kept = [t for t in chat_tools or [] if t["function"]["name"] in names]
        missing = names - {t["function"]["name"] for t in kept}
        if missing:
            shown = ", ".join(sorted(missing))[:200]
            raise invalid("tool_choice.tools", f"names tools that are not in 'tools': {shown}")
        return mode, kept
    raise invalid("tool_choice.type", f"{str(kind)[:60]!r} is not supported: built-in tools run only on OpenAI's "
                                      "servers (use none, auto, required, a function or allowed_tools)",
                  "unsupported_value")


def response_format(text: Any) -> dict[str, Any] | None:
    """``text.format`` as Chat Completions' ``response_format``."""
    if not isinstance(text, dict):
        raise invalid("text", "must be an object like {\"format\": {\"type\": \"text\"}}", "invalid_type")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise invalid("text.format", "must be an object", "invalid_type")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise invalid("text.format.schema", "must be a JSON schema object", "invalid_type")
        schema = {"name": string(fmt.get("name"), "text.format.name"), "schema": fmt["schema"]}
        for name in ("strict", "description"):
            if fmt.get(name) is not None:
                schema[name] = fmt[name]
        return {"type": "json_schema", "json_schema": schema}
    raise invalid("text.format.type", f"must be text, json_object or json_schema (got {str(kind)[:40]!r})")

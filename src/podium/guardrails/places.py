"""Every string of a chat request that leaves for a provider or lands in the ledger, and how to write it back.

Why one walker for both reading and writing: the guardrails first read every place, then (rarely)
write redactions back into some of them. If reading and writing walked the request separately,
the two walks could disagree on what is where; here both are the same function, called with a
``visit`` that returns ``None`` (leave the place as it is) or the new strings.

A place is a group of strings scanned as one text:

* a message's text parts, joined with nothing between them: a key split across two parts is
  one key (that is also how the model reads them);
* the strings of one kind elsewhere (tool definitions, tool calls, stop sequences…), joined with
  a newline, which no detector matches across.

Nested schemas (tool parameters, ``response_format``) are walked to a bounded depth: deeper than
that, the request is refused rather than sent unread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from podium.errors import ContentFilteredError
from podium.types import ChatRequest, FunctionCall, Message, RefusalPart, TextPart, Tool

# (what, the index of its message or -1): ("message", 2) → "message 3", ("tool result", 4) → "the tool result
# in message 5", ("tool definitions", -1) → "tool definitions"; unique per place
Where = tuple[str, int]
Visit = Callable[[Where, list[str], str, bool], list[str] | None]  # (where, strings, joiner, injection) → new strings

MAX_DEPTH = 32
BLOCKED = "guardrail_blocked"  # the code of every refusal the guardrails raise (the gateway's metrics count it)


def label(where: Where) -> str:
    kind, index = where
    if kind == "message":
        return f"message {index + 1}"
    if index >= 0:
        return f"the {kind} in message {index + 1}"
    return kind


def rewrite(request: ChatRequest, visit: Visit) -> ChatRequest:
    """``request`` with each place replaced by what ``visit`` returns for it (the same object if nothing is)."""
    update: dict[str, Any] = {}
    messages: list[Message] | None = None
    for i, message in enumerate(request.messages):
        new = _message(i, message, visit)
        if new is not message:
            messages = messages if messages is not None else list(request.messages)
            messages[i] = new
    if messages is not None:
        update["messages"] = messages
    if request.tools:
        tools = _tools(request.tools, visit)
        if tools is not None:
            update["tools"] = tools
    if request.response_format:
        strings = list(_strings(request.response_format))
        out = visit(("the response format", -1), strings, "\n", False)
        if out is not None:
            update["response_format"] = _replace(request.response_format, iter(out))
    if request.stop:
        out = visit(("stop sequences", -1), list(request.stop), "\n", False)
        if out is not None:
            update["stop"] = out
    metadata = request.metadata
    meta: dict[str, Any] = {}
    for field in ("user", "task_type"):  # both land in the ledger
        value = getattr(metadata, field)
        if value:
            out = visit((f"metadata.{field}", -1), [value], "", False)
            if out is not None:
                meta[field] = out[0]
    if metadata.tags:
        out = visit(("metadata.tags", -1), list(metadata.tags), "\n", False)
        if out is not None:
            meta["tags"] = out
    if meta:
        update["metadata"] = metadata.model_copy(update=meta)
    return request.model_copy(update=update) if update else request


def _message(i: int, message: Message, visit: Visit) -> Message:
    update: dict[str, Any] = {}
    where: Where = ("tool result", i) if message.role == "tool" else ("message", i)
    injection = not message.is_system  # the system (or developer) prompt is the caller's own voice
    content = message.content
    if isinstance(content, str):
        if content:
            out = visit(where, [content], "", injection)
            if out is not None:
                update["content"] = out[0]
    elif content:
        texts = [part.text for part in content if isinstance(part, TextPart)]
        if texts:
            out = visit(where, texts, "", injection)
            if out is not None:
                replaced = iter(out)
                update["content"] = [part.model_copy(update={"text": next(replaced)})
                                     if isinstance(part, TextPart) else part for part in content]
        refusals = [part.refusal for part in content if isinstance(part, RefusalPart)]
        if refusals:
            out = visit(("refusal", i), refusals, "\n", False)
            if out is not None:
                replaced = iter(out)
                update["content"] = [part.model_copy(update={"refusal": next(replaced)})
                                     if isinstance(part, RefusalPart) else part
                                     for part in update.get("content", content)]
    if message.refusal:
        out = visit(("refusal", i), [message.refusal], "", False)
        if out is not None:
            update["refusal"] = out[0]
    if message.function_call:
        out = visit(("function call", i), [str(message.function_call.get("name", "")),
                                           str(message.function_call.get("arguments", ""))], "\n", False)
        if out is not None:
            update["function_call"] = {**message.function_call, "name": out[0], "arguments": out[1]}
    if message.name:
        out = visit(("name", i), [message.name], "", False)
        if out is not None:
            update["name"] = out[0]
    if message.tool_calls:
        strings = [s for call in message.tool_calls for s in (call.function.name, call.function.arguments)]
        out = visit(("tool calls", i), strings, "\n", False)
        if out is not None:
            replaced = iter(out)
            update["tool_calls"] = [call.model_copy(update={"function": FunctionCall(
                name=next(replaced), arguments=next(replaced))}) for call in message.tool_calls]
    return message.model_copy(update=update) if update else message


def _tools(tools: list[Tool], visit: Visit) -> list[Tool] | None:
    strings: list[str] = []
    for tool in tools:
        f = tool.function
        strings.append(f.name)
        if f.description:
            strings.append(f.description)
        if f.parameters:
            strings += _strings(f.parameters)
    out = visit(("tool definitions", -1), strings, "\n", False)
    if out is None:
        return None
    replaced = iter(out)
    new: list[Tool] = []
    for tool in tools:
        f = tool.function
        update: dict[str, Any] = {"name": next(replaced)}
        if f.description:
            update["description"] = next(replaced)
        if f.parameters:
            update["parameters"] = _replace(f.parameters, replaced)
        new.append(tool.model_copy(update={"function": f.model_copy(update=update)}))
    return new


def _strings(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string inside a JSON value, keys included, in a fixed order (``_replace`` follows it)."""
    if depth > MAX_DEPTH:
        raise ContentFilteredError(f"a schema in the request nests deeper than {MAX_DEPTH} levels; the guardrails "
                                   "can not read it (flatten it)", code=BLOCKED)
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                yield key
            yield from _strings(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item, depth + 1)


def _replace(value: Any, replaced: Iterator[str]) -> Any:
    """``value`` rebuilt with its strings, in ``_strings`` order, taken from ``replaced``."""
    if isinstance(value, str):
        return next(replaced)
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = next(replaced) if isinstance(key, str) else key
            out[new_key] = _replace(item, replaced)
        return out
    if isinstance(value, list | tuple):
        return [_replace(item, replaced) for item in value]
    return value


def text_size(request: ChatRequest) -> int:
    """Characters the guardrails will read, roughly: to decide whether a scan is worth a worker thread."""
    size = 0
    for message in request.messages:
        content = message.content
        if isinstance(content, str):
            size += len(content)
        elif content:
            size += sum(len(part.text) for part in content if isinstance(part, TextPart))
        if message.tool_calls:
            size += sum(len(call.function.arguments) for call in message.tool_calls)
    if request.tools or request.response_format:
        size += sum(len(s) for s in _strings([[t.function.description or "", t.function.parameters or {}]
                                                for t in request.tools or []]))
        size += sum(len(s) for s in _strings(request.response_format or {}))
    return size

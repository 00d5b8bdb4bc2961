"""An Anthropic Messages request (docs.anthropic.com/en/api/messages) as one ``ChatRequest``.

Checked as Anthropic checks it, with Anthropic's wording (``max_tokens: Field required``,
``foo: Extra inputs are not permitted``), so a client sees the 400 it would get from the API itself.
What Podium cannot carry is decided per field, never silently:

- translated: ``system`` (string or text blocks), messages with text, image (base64 or url),
  tool_use and tool_result blocks (``is_error`` as an ``Error:`` prefix; images a tool returned
  follow as a user message), ``stop_sequences``, tools (name, description, input_schema, strict),
  ``tool_choice`` (auto/any/tool/none, ``disable_parallel_tool_use``), ``metadata.user_id``,
  ``thinking`` and ``output_config.effort`` as ``reasoning_effort``, ``output_config.format`` as a
  ``json_schema`` response format;
- dropped with a note (hints a provider may ignore anyway): ``top_k`` (no field on ``ChatRequest``
  and no equivalent on the OpenAI wire), ``service_tier``, ``speed``, ``cache_control``,
  ``diagnostics``, ``user_profile_id``, ``workspace_id``, thinking blocks of earlier turns;
- refused with a 400 that names it: server tools (web search, code execution, bash, text editor,
  computer, memory …), ``container``, ``inference_geo`` (a residency promise Podium's own region
  policy makes instead: ``X-Podium-Sensitivity``, presets), PDF and file documents, ``max_tokens: 0``.

Podium's routing metadata comes from the ``X-Podium-*`` headers, as on Chat Completions; ``model``
may be any model name, alias, strategy or ``auto``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from podium.errors import BadRequestError
from podium.json_depth import MAX_DEPTH, json_depth
from podium.server.openai_schema import ROUTED
from podium.types import ChatRequest, describe_validation_error

# Every top-level field of MessageCreateParams (anthropic 2.10.0), plus the sampling fields older
# clients still send.
_CREATE = frozenset({
    "model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k", "stop_sequences", "stream",
    "tools", "tool_choice", "metadata", "thinking", "output_config", "service_tier", "speed", "cache_control",
    "diagnostics", "user_profile_id", "workspace_id", "inference_geo", "container"})
# MessageCountTokensParams: no max_tokens, sampling, stop sequences or stream
COUNT = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config", "speed",
                   "cache_control", "user_profile_id", "workspace_id"})
_DROPPED = ("top_k", "service_tier", "speed", "cache_control", "diagnostics", "user_profile_id", "workspace_id")
_REFUSED = {
    "container": "Podium runs no Anthropic code-execution containers",
    "inference_geo": "Podium keeps data in a region with its own policy instead (the X-Podium-Sensitivity "
                     "header, presets, or a model in that region)",
}
_HEADERS = {"x-podium-task-type": "task_type", "x-podium-sensitivity": "sensitivity", "x-podium-tags": "tags",
            "x-podium-preset": "preset", "x-podium-router-knob": "router_knob"}
_EFFORT = {"low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "xhigh"}
_CHOICE = {"auto": "auto", "any": "required", "none": "none"}
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def invalid(message: str) -> BadRequestError:
    return BadRequestError(message, code="invalid_request_error")


def _number(body: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{name}: Input should be a valid number")
    if not low <= value <= high:
        raise invalid(f"{name}: Input should be between {low:g} and {high:g} (got {value!r})")
    return float(value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise invalid(f"{where}: Input should be a valid string")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"{where}: Input should be a valid dictionary or object")
    return value


def _deep(value: Any, where: str) -> None:
    if isinstance(value, dict | list) and json_depth(value) > MAX_DEPTH:
        raise invalid(f"{where}: nests JSON deeper than {MAX_DEPTH} levels")


def _system(value: Any, where: str, notes: set[str]) -> str:
    """A system prompt: a string or a list of text blocks (joined by blank lines)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise invalid(f"{where}: Input should be a valid string or a list of text blocks")
    texts = []
    for i, block in enumerate(value):
        block = _object(block, f"{where}.{i}")
        if block.get("type") != "text":
            raise invalid(f"{where}.{i}.type: only text blocks are allowed in a system prompt")
        if "cache_control" in block:
            notes.add("cache_control")
        texts.append(_text(block.get("text"), f"{where}.{i}.text"))
    return "\n\n".join(texts)


def _image(source: Any, where: str) -> dict[str, Any]:
    source = _object(source, f"{where}.source")
    kind = source.get("type")
    if kind == "base64":
        media = source.get("media_type")
        if media not in _IMAGE_TYPES:
            raise invalid(f"{where}.source.media_type: Input should be one of {', '.join(_IMAGE_TYPES)}")
        data = _text(source.get("data"), f"{where}.source.data")
        return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if kind == "url":
        return {"type": "image_url", "image_url": {"url": _text(source.get("url"), f"{where}.source.url")}}
    raise invalid(f"{where}.source.type: '{str(kind)[:50]}' images are not supported by Podium (send base64 "
                  f"data or a url; the Files API is Anthropic's own)")


def _document(block: dict[str, Any], where: str) -> dict[str, Any]:
    """A plain-text document becomes text; PDFs and files are refused (no wire but Anthropic's reads them)."""
    source = _object(block.get("source"), f"{where}.source")
    if source.get("type") == "text":
        return {"type": "text", "text": _text(source.get("data"), f"{where}.source.data")}
    if source.get("type") == "content" and isinstance(source.get("content"), str):
        return {"type": "text", "text": source["content"]}
    raise invalid(f"{where}: '{str(source.get('type'))[:50]}' documents (PDFs, files) are not supported by Podium; "
                  "send their text")


class _Turns:
    """Anthropic's messages as Chat Completions messages, and the notes for what was left out."""

    def __init__(self) -> None:
        self.out: list[dict[str, Any]] = []
        self.notes: set[str] = set()

    def add(self, index: int, message: Any) -> None:
        where = f"messages.{index}"
        message = _object(message, where)
        role = message.get("role")
        content = message.get("content")
        if role not in ("user", "assistant", "system"):
            raise invalid(f"{where}.role: Input should be 'user' or 'assistant'")
        if role == "system":
            self.out.append({"role": "system", "content": _system(content, f"{where}.content", self.notes)})
        elif isinstance(content, str):
            self.out.append({"role": role, "content": content})
        elif not isinstance(content, list):
            raise invalid(f"{where}.content: Input should be a valid string or a list of content blocks")
        elif role == "user":
            self._user(content, f"{where}.content")
        else:
            self._assistant(content, f"{where}.content")

    def _blocks(self, blocks: list[Any], where: str) -> Iterator[tuple[str, dict[str, Any], Any]]:
        """Each content block with its place and type (a block must be an object); cache hints noted."""
        for j, block in enumerate(blocks):
            at = f"{where}.{j}"
            block = _object(block, at)
            if "cache_control" in block:
                self.notes.add("cache_control")
            yield at, block, block.get("type")

    def _user(self, blocks: list[Any], where: str) -> None:
        parts: list[dict[str, Any]] = []
        for at, block, kind in self._blocks(blocks, where):
            if kind == "text":
                parts.append({"type": "text", "text": _text(block.get("text"), f"{at}.text")})
            elif kind == "image":
                parts.append(_image(block.get("source"), at))
            elif kind == "document":
                parts.append(_document(block, at))
            elif kind == "tool_result":
                parts.extend(self._tool_result(block, at))
            elif kind == "tool_use":
                raise invalid(f"{at}: tool_use blocks belong in assistant messages")
            else:
                raise _unsupported_block(kind, at)
        if parts:
            self.out.append({"role": "user", "content": parts})

    def _tool_result(self, block: dict[str, Any], where: str) -> list[dict[str, Any]]:
        """The result as a ``tool`` message; images it carries are returned to follow as user content."""
        tool_use_id = _text(block.get("tool_use_id"), f"{where}.tool_use_id")
        content = block.get("content", "")
        images: list[dict[str, Any]] = []
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            texts = []
            for k, item in enumerate(content):
                item = _object(item, f"{where}.content.{k}")
                if item.get("type") == "text":
                    texts.append(_text(item.get("text"), f"{where}.content.{k}.text"))
                elif item.get("type") == "image":
                    images.append(_image(item.get("source"), f"{where}.content.{k}"))
                elif item.get("type") == "document":
                    texts.append(_document(item, f"{where}.content.{k}")["text"])
                else:
                    raise _unsupported_block(item.get("type"), f"{where}.content.{k}")
            text = "\n".join(texts)
        else:
            raise invalid(f"{where}.content: Input should be a valid string or a list of content blocks")
        if block.get("is_error") is True:
            text = f"Error: {text}"
        self.out.append({"role": "tool", "tool_call_id": tool_use_id, "content": text})
        return images

    def _assistant(self, blocks: list[Any], where: str) -> None:
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for at, block, kind in self._blocks(blocks, where):
            if kind == "text":
                texts.append(_text(block.get("text"), f"{at}.text"))
            elif kind == "tool_use":
                arguments = block.get("input", {})
                _object(arguments, f"{at}.input")
                _deep(arguments, f"{at}.input")
                calls.append({"id": _text(block.get("id"), f"{at}.id"), "type": "function",
                              "function": {"name": _text(block.get("name"), f"{at}.name"),
                                           "arguments": orjson.dumps(arguments).decode()}})
            elif kind in ("thinking", "redacted_thinking"):
                self.notes.add("thinking blocks")
            elif kind in ("image", "document", "tool_result"):
                raise invalid(f"{at}: {kind} blocks belong in user messages")
            else:
                raise _unsupported_block(kind, at)
        if texts or calls:
            message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
            if calls:
                message["tool_calls"] = calls
            self.out.append(message)


def _unsupported_block(kind: Any, where: str) -> BadRequestError:
    return invalid(f"{where}.type: '{str(kind)[:60]}' blocks are not supported by Podium (it carries text, image, "
                   "document text, tool_use and tool_result blocks)")


def _tools(value: Any, notes: set[str]) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise invalid("tools: Input should be a valid list")
    _deep(value, "tools")
    tools = []
    for i, tool in enumerate(value):
        tool = _object(tool, f"tools.{i}")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise invalid(f"tools.{i}.type: '{str(kind)[:60]}' is one of Anthropic's server or built-in tools, which "
                          "Podium cannot run on other providers; define it as a client tool (name, description, "
                          "input_schema)")
        if "cache_control" in tool:
            notes.add("cache_control")
        function: dict[str, Any] = {"name": _text(tool.get("name"), f"tools.{i}.name"),
                                    "parameters": _object(tool.get("input_schema"), f"tools.{i}.input_schema")}
        if tool.get("description") is not None:
            function["description"] = _text(tool["description"], f"tools.{i}.description")
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        tools.append({"type": "function", "function": function})
    return tools


def _tool_choice(value: Any, fields: dict[str, Any]) -> None:
    choice = _object(value, "tool_choice")
    kind = choice.get("type")
    if kind == "tool":
        fields["tool_choice"] = {"type": "function",
                                 "function": {"name": _text(choice.get("name"), "tool_choice.name")}}
    elif isinstance(kind, str) and kind in _CHOICE:
        fields["tool_choice"] = _CHOICE[kind]
    else:
        raise invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    if choice.get("disable_parallel_tool_use") is True and kind != "none":
        fields["parallel_tool_calls"] = False


def _effort(thinking: Any, output: Any, max_tokens: int | None) -> str | None:
    """``output_config.effort``, else an enabled thinking budget, as a reasoning effort (None: the model's default)."""
    if isinstance(output, dict) and output.get("effort") is not None:
        effort = _EFFORT.get(output["effort"]) if isinstance(output["effort"], str) else None
        if effort is None:
            raise invalid("output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'")
        return effort
    if thinking is None:
        return None
    thinking = _object(thinking, "thinking")
    kind = thinking.get("type")
    if kind in ("disabled", "adaptive", "between_tools"):
        return None
    if kind != "enabled":
        raise invalid("thinking.type: Input should be 'enabled', 'disabled', 'adaptive' or 'between_tools'")
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
        raise invalid("thinking.enabled.budget_tokens: Input should be an integer of at least 1024")
    if max_tokens is not None and budget >= max_tokens:
        raise invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def _output_format(output: Any) -> dict[str, Any] | None:
    if output is None:
        return None
    output = _object(output, "output_config")
    extra = output.keys() - {"effort", "format"}
    if extra:
        raise invalid(f"output_config.{sorted(extra)[0]}: Extra inputs are not permitted")
    fmt = output.get("format")
    if fmt is None:
        return None
    fmt = _object(fmt, "output_config.format")
    if fmt.get("type") != "json_schema":
        raise invalid("output_config.format.type: Input should be 'json_schema'")
    schema = _object(fmt.get("schema"), "output_config.format.schema")
    _deep(schema, "output_config.format.schema")
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": True}}


def _metadata(body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    raw = body.get("metadata")
    if raw is not None:
        raw = _object(raw, "metadata")
        extra = raw.keys() - {"user_id"}
        if extra:
            raise invalid(f"metadata.{sorted(extra)[0][:60]}: Extra inputs are not permitted")
        if raw.get("user_id") is not None:
            meta["user"] = _text(raw["user_id"], "metadata.user_id")
    for header, field in _HEADERS.items():
        value = headers.get(header)
        if value:
            meta[field] = [t.strip() for t in value.split(",") if t.strip()] if field == "tags" else value
    return meta


def _max_tokens(body: Mapping[str, Any], required: bool) -> int | None:
    value = body.get("max_tokens")
    if value is None:
        if required:
            raise invalid("max_tokens: Field required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid("max_tokens: Input should be a valid integer")
    if value == 0:
        raise invalid("max_tokens: 0 (warming the prompt cache without an answer) is not supported by Podium; "
                      "ask for at least 1 token")
    if value < 0:
        raise invalid("max_tokens: Input should be greater than or equal to 1")
    return value


def parse_messages(body: Any, headers: Mapping[str, str], *, counting: bool = False) -> tuple[ChatRequest, list[str]]:
    """The request (``counting``: a count_tokens body, which has no ``max_tokens``), and the notes on what
    was dropped."""
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    known = COUNT if counting else _CREATE
    unknown = body.keys() - known
    if unknown:
        raise invalid(f"{sorted(unknown)[0][:100]}: Extra inputs are not permitted")
    for name, why in _REFUSED.items():
        if body.get(name) is not None:
            raise invalid(f"{name}: not supported by Podium's gateway: {why}")
    model = body.get("model")
    if model is None:
        raise invalid("model: Field required")
    model = _text(model, "model")
    raw_messages = body.get("messages")
    if raw_messages is None:
        raise invalid("messages: Field required")
    if not isinstance(raw_messages, list):
        raise invalid("messages: Input should be a valid list")
    max_tokens = None if counting else _max_tokens(body, required=True)
    turns = _Turns()
    if body.get("system") is not None:
        system = _system(body["system"], "system", turns.notes)
        if system:
            turns.out.append({"role": "system", "content": system})
    if not raw_messages:
        raise invalid("messages: at least one message is required")
    for i, message in enumerate(raw_messages):
        turns.add(i, message)
    fields: dict[str, Any] = {"messages": turns.out, "model": None if model in ROUTED else model,
                              "metadata": _metadata(body, headers)}
    if max_tokens is not None:
        fields["max_tokens"] = max_tokens
    for name in ("temperature", "top_p"):
        value = _number(body, name, 0.0, 1.0)
        if value is not None:
            fields[name] = value
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise invalid("stop_sequences: Input should be a valid list of strings")
        if stops:
            fields["stop"] = stops
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid("stream: Input should be a valid boolean")
    fields["stream"] = bool(stream)
    if body.get("tools") is not None:
        tools = _tools(body["tools"], turns.notes)
        if tools:
            fields["tools"] = tools
            if body.get("tool_choice") is not None:
                _tool_choice(body["tool_choice"], fields)
    format_ = _output_format(body.get("output_config"))
    if format_ is not None:
        fields["response_format"] = format_
    effort = _effort(body.get("thinking"), body.get("output_config"), max_tokens)
    if effort is not None:
        fields["reasoning_effort"] = effort
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise invalid("top_k: Input should be a non-negative integer")
    try:
        request = ChatRequest.model_validate(fields)
    except ValidationError as exc:
        raise invalid(describe_validation_error(exc)) from None
    dropped = [name for name in _DROPPED if body.get(name) is not None]
    if "cache_control" in turns.notes and "cache_control" not in dropped:
        dropped.append("cache_control")
    notes = [f"'{name}' dropped: Podium has no equivalent" for name in dropped]
    if "thinking blocks" in turns.notes:
        notes.append("thinking blocks of earlier turns dropped: no other provider reads them")
    return request, notes

"""The per-wire field table (``podium.request_fields``) against the code that builds each wire's request,
and against the README's copy of it.

For every field a client can set and every wire: *sent* means the wire's body carries it unchanged;
*translated* that the body changes when it is set; *dropped* that the body does not change and the
trace gets a note; *refused* that the invoker's check is a 400 naming the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from podium import request_fields
from podium.catalogue import ModelInfo
from podium.errors import BadRequestError
from podium.providers.anthropic import wire as anthropic_wire
from podium.providers.gemini import wire as gemini_wire
from podium.providers.local.provider import LocalProvider
from podium.providers.ollama import wire as ollama_wire
from podium.providers.openai import wire as openai_wire
from podium.request_fields import EXTRA_FIELDS, FIELDS, PARTS, WIRES
from podium.types import ChatRequest, Message, RequestMetadata

README = Path(__file__).resolve().parents[1] / "README.md"

_TOOL = {"type": "function", "function": {"name": "lookup", "description": "find a thing",
                                          "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}
# a value for each field that asks the wire for something
VALUES: dict[str, Any] = {
    "temperature": 0.5, "top_p": 0.9, "max_tokens": 77, "stop": ["END"], "seed": 7, "n": 2,
    "tools": [_TOOL], "tool_choice": "required", "response_format": {"type": "json_object"},
    "frequency_penalty": 0.5, "presence_penalty": 0.25, "parallel_tool_calls": False, "reasoning_effort": "high",
    "logprobs": True, "top_logprobs": 3, "user": "user-1",
    "store": True, "service_tier": "flex", "prompt_cache_key": "k1", "prompt_cache_retention": "24h",
    "safety_identifier": "s1", "prediction": {"type": "content", "content": "x"}, "verbosity": "low",
    "logit_bias": {"50256": -100}, "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"},
    "web_search_options": {"search_context_size": "low"}, "functions": [_TOOL["function"]], "function_call": "auto",
    "moderation": {"model": "omni-moderation-latest"}, "prompt_cache_options": {"mode": "explicit", "ttl": "30m"},
    "input_audio": {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
    "file": {"type": "file", "file": {"file_id": "file-1"}},
    "refusal": {"type": "refusal", "refusal": "I can't help with that."},
    "tools.custom": [{"type": "custom", "custom": {"name": "code_exec", "description": "Runs Python code."}}],
}
NOT_PER_REQUEST = {"messages", "model", "metadata", "stream", "stream_options", "max_completion_tokens"}


def _request(field: str | None, *, tools: bool = False) -> ChatRequest:
    fields: dict[str, Any] = {"messages": [Message.system("be brief"), Message.user("hello")]}
    if tools or field in ("tool_choice", "parallel_tool_calls"):
        fields["tools"] = [_TOOL]  # these mean something only with tools, on every wire
    if field is None:
        return ChatRequest(**fields)
    value = VALUES[field]
    if field in PARTS:
        role = "assistant" if field == "refusal" else "user"
        fields["messages"].append(Message.model_validate({"role": role, "content": [value]}))
    elif field == "tools.custom":
        fields["extra"] = {"tools": value}  # as the gateway keeps them (server/openai_schema.py)
    elif field == "user":
        fields["metadata"] = RequestMetadata(user=value)
    elif field in EXTRA_FIELDS:
        fields["extra"] = {field: value}
    else:
        fields[field] = value
    return ChatRequest(**fields)


def _model(wire: str) -> ModelInfo:
    return ModelInfo(name="m", display_name="m", provider=wire, model_id="m-1", tier="fast", region="local",
                     context_window=8192, max_output_tokens=4096, input_price=0.0, output_price=0.0,
                     prompt_format="chat")


def _body(wire: str, request: ChatRequest) -> dict[str, Any]:
    if wire == "openai":
        return openai_wire.request_body(request, "m-1", stream=False)
    if wire == "anthropic":
        return anthropic_wire.request_body(request, "m-1", stream=False, default_max_tokens=4096)
    if wire == "gemini":
        return gemini_wire.request_body(request)
    if wire == "ollama":
        return ollama_wire.request_body(request, "m-1", stream=False)
    return LocalProvider()._generation_args(request, _model("local"))


CASES = [(field, wire) for field in FIELDS if field not in NOT_PER_REQUEST for wire in WIRES]


@pytest.mark.parametrize(("field", "wire"), CASES, ids=[f"{f}-{w}" for f, w in CASES])
def test_each_wire_does_what_the_table_says(field: str, wire: str) -> None:
    how = request_fields.handling(field, wire)
    if field in ("tool_choice", "parallel_tool_calls") and request_fields.handling("tools", wire) == "refused":
        pytest.skip(f"tools are refused on the {wire} wire, so {field} never reaches it")
    request, plain = _request(field), _request(None, tools=field in ("tool_choice", "parallel_tool_calls"))
    if how == "refused":
        with pytest.raises(BadRequestError) as refused:
            request_fields.check(request, wire)
        assert f"'{field}'" in refused.value.message and wire in refused.value.message
        assert refused.value.status == 400
        return
    notes = request_fields.check(request, wire)
    if how == "dropped":
        assert any(f"'{field}'" in note for note in notes), notes
        assert _body(wire, request) == _body(wire, plain), f"{field} should not reach the {wire} wire"
        return
    assert not any(f"'{field}'" in note for note in notes)
    if how == "podium":  # n on wires without it: parallel calls (tests/test_request_fields_gateway.py)
        return
    if field == "refusal":  # the invoker turns it into text for the wires without refusal parts
        request = request_fields.refusals_as_text(request) if wire != "openai" else request
    body = _body(wire, request)
    if how == "translated" and field == "refusal":  # (the local wire formats messages at run time)
        assert VALUES["refusal"]["refusal"] in str(body if wire != "local" else request.messages)
    elif how == "sent" and field in PARTS:
        assert VALUES[field] in body["messages"][-1]["content"]
    elif how == "sent" and field == "tools.custom":
        assert body["tools"] == VALUES[field]
    elif how == "sent":
        assert body.get(field) == VALUES[field], f"{field} should reach the {wire} wire unchanged"
    else:
        assert body != _body(wire, plain), f"{field} should change the {wire} wire's request"


def test_unasked_values_are_not_looked_at() -> None:
    request = ChatRequest(messages=[Message.user("hi")], logprobs=False, parallel_tool_calls=True,
                          extra={"modalities": ["text"], "store": False})
    for wire in WIRES:
        assert request_fields.check(request, wire) == []


def test_every_openai_field_is_in_the_table() -> None:
    """The table covers the Chat Completions API's request fields (the official SDK's own list)."""
    from openai.types.chat import completion_create_params

    documented = set(completion_create_params.CompletionCreateParamsBase.__annotations__)
    assert documented <= set(FIELDS), sorted(documented - set(FIELDS))
    from openai.types.chat import chat_completion_content_part_param as parts

    kinds = {"text", "image_url", *PARTS}
    for name in ("File", "ChatCompletionContentPartInputAudioParam", "ChatCompletionContentPartImageParam"):
        part = getattr(parts, name, None)
        if part is not None:
            literal = part.__annotations__["type"]
            assert any(kind in str(literal) for kind in kinds), literal


def test_the_readme_table_is_the_table() -> None:
    text = README.read_text(encoding="utf-8")
    header = "| field | " + " | ".join(WIRES) + " |"
    assert header in text
    block = text[text.index(header):].split("\n\n", 1)[0].splitlines()[2:]
    rows = {}
    for line in block:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[re.sub(r"`", "", cells[0])] = tuple(cells[1:])
    assert rows == FIELDS


def test_developer_messages_become_system_where_the_wire_has_no_such_role() -> None:
    request = ChatRequest(messages=[Message(role="developer", content="be brief"), Message.user("hi")])
    assert openai_wire.request_body(request, "m", stream=False)["messages"][0]["role"] == "developer"
    assert openai_wire.request_body(request, "m", stream=False, developer_role=False)["messages"][0]["role"] == "system"
    assert anthropic_wire.request_body(request, "m", stream=False, default_max_tokens=10)["system"] == "be brief"
    assert ollama_wire.request_body(request, "m", stream=False)["messages"][0]["role"] == "system"

import pytest
from pydantic import ValidationError

from podium.types import ChatRequest, ImagePart, Message, TextPart, Usage


def test_prompt_must_not_be_empty():
    with pytest.raises(ValidationError, match="prompt is empty"):
        ChatRequest.from_prompt("   ")
    with pytest.raises(ValidationError, match="messages is empty"):
        ChatRequest(messages=[])


@pytest.mark.parametrize(("field", "value"), [("max_tokens", 0), ("max_tokens", -5), ("temperature", 2.5),
                                              ("temperature", -0.1), ("top_p", 1.5), ("n", 0)])
def test_out_of_range_parameters_are_refused(field, value):
    with pytest.raises(ValidationError) as info:
        ChatRequest.from_prompt("hi", **{field: value})
    assert info.value.errors()[0]["loc"] == (field,)


def test_unknown_request_fields_are_refused():
    with pytest.raises(ValidationError, match="temprature"):
        ChatRequest.model_validate({"messages": [{"role": "user", "content": "hi"}], "temprature": 1})


def test_multimodal_content_and_tool_messages_round_trip():
    request = ChatRequest.model_validate({
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "What is in "},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                                         {"type": "text", "text": "this image?"}]},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                                                  "function": {"name": "look", "arguments": "{\"x\": 1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
        ],
        "stop": "END",
    })
    first = request.messages[0]
    assert isinstance(first.content, list)
    assert isinstance(first.content[1], ImagePart)
    assert isinstance(first.content[0], TextPart)
    assert first.text == "What is in this image?"
    assert request.messages[1].tool_calls[0].function.arguments == "{\"x\": 1}"
    assert request.stop == ["END"]


def test_tool_message_needs_call_id():
    with pytest.raises(ValidationError, match="tool_call_id"):
        Message(role="tool", content="result")


def test_usage_adds_up():
    total = Usage(input_tokens=3, output_tokens=4, cached_input_tokens=1) + Usage(input_tokens=1, reasoning_tokens=2)
    assert (total.input_tokens, total.output_tokens, total.cached_input_tokens, total.reasoning_tokens) == (4, 4, 1, 2)
    assert total.total_tokens == 8
